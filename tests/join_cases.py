"""Deterministic inputs for the join's golden outputs (tests/data/join_golden).

The expected files were written by the join as it was before the streaming rewrite; the rewrite
must reproduce them byte for byte (test_join_golden.py).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ROWS = 40


def _chat(
    custom_id: str,
    content: Any,
    *,
    finish: str = "stop",
    refusal: Any = None,
    extra_message: dict[str, Any] | None = None,
    usage: Any = None,
) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal, **(extra_message or {})}
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage if usage is not None else {"prompt_tokens": 11, "completion_tokens": 5},
    }
    return _ok(custom_id, body)


def _ok(custom_id: str, body: Any) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": "r", "body": body},
        "error": None,
    }


def _err(custom_id: str, status: int, code: str, message: str) -> dict[str, Any]:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }


CELLS = [
    "plain",
    "comma, inside",
    'a "quoted" word',
    "line\nbreak",
    "",
    "007",
    "NA",
    "null",
    "=1+1",
    "é ü 漢字 🙂",
    "sep\u2028arator",
    " padded ",
    "tab\there",
    "'apostrophe",
]


def chat_case(folder: Path) -> dict[str, Path]:
    """A data table, its request file, and shuffled output + error files with every shape."""
    rng = random.Random(7)
    rows = []
    for i in range(ROWS):
        rows.append(
            {"name": CELLS[i % len(CELLS)], "n": str(i), "note": CELLS[(i * 5) % len(CELLS)]}
        )
    import csv

    data = folder / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["name", "n", "note", "status"], lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "status": "input-status"})
    requests = folder / "requests.jsonl"
    with open(requests, "w", encoding="utf-8") as fh:
        for i in range(ROWS):
            body = {"model": "gpt-x", "messages": [{"role": "user", "content": f"row {i}"}]}
            fh.write(
                json.dumps(
                    {
                        "custom_id": f"id_{i}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": body,
                    }
                )
                + "\n"
            )
    ok, errors = [], []
    for i in range(ROWS):
        cid = f"id_{i}"
        kind = i % 10
        if i in (13, 27):
            continue  # missing
        if kind == 0:
            ok.append(
                _chat(
                    cid,
                    json.dumps(
                        {
                            "answer": CELLS[i % len(CELLS)],
                            "score": i,
                            "tags": ["a", "b"],
                            "nested": {"x": None},
                        }
                    ),
                )
            )
        elif kind == 1:
            ok.append(_chat(cid, json.dumps({"answer": "other", "extra": True})))
        elif kind == 2:
            ok.append(_chat(cid, CELLS[i % len(CELLS)] + ' answer, with "quotes"\nand lines'))
        elif kind == 3:
            ok.append(_chat(cid, None, refusal="I can't help with that."))
        elif kind == 4:
            ok.append(
                _chat(
                    cid,
                    None,
                    finish="tool_calls",
                    extra_message={
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ]
                    },
                )
            )
        elif kind == 5:
            ok.append(
                _chat(cid, [{"type": "text", "text": "part one "}, {"type": "text", "text": "two"}])
            )
        elif kind == 6:
            errors.append(_err(cid, 500, "server_error", "The server had an error"))
        elif kind == 7:
            errors.append(
                {
                    "id": f"batch_req_{cid}",
                    "custom_id": cid,
                    "response": None,
                    "error": {"code": "batch_expired", "message": "expired"},
                }
            )
        elif kind == 8:
            ok.append(_chat(cid, "x" * 300, finish="length", usage={"prompt_tokens": 3}))
        else:
            ok.append(_chat(cid, "  [1, 2, 3]  "))
    ok.append(_chat("id_999", "not in the requests"))
    rng.shuffle(ok)
    rng.shuffle(errors)
    output = folder / "output.jsonl"
    output.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ok) + "this line is not json\n",
        encoding="utf-8",
    )
    error = folder / "errors.jsonl"
    error.write_text("".join(json.dumps(r) + "\n" for r in errors), encoding="utf-8")
    return {"data": data, "requests": requests, "output": output, "errors": error}


def endpoints_case(folder: Path) -> dict[str, Path]:
    """Responses, embeddings, completions and moderation bodies; no data table."""
    lines = [
        _ok(
            "r_2",
            {
                "object": "response",
                "status": "completed",
                "output": [
                    {"type": "reasoning", "summary": []},
                    {"type": "message", "content": [{"type": "output_text", "text": '{"k": 1}'}]},
                ],
                "usage": {"input_tokens": 4, "output_tokens": 2},
            },
        ),
        _ok(
            "r_10",
            {
                "object": "response",
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "output": [
                    {"type": "message", "content": [{"type": "refusal", "refusal": "no"}]},
                    {"type": "function_call", "name": "f", "arguments": "{}"},
                ],
            },
        ),
        _ok(
            "r_1",
            {
                "object": "list",
                "data": [{"embedding": [0.1, -0.25, 3e-05]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2},
            },
        ),
        _ok("r_3", {"object": "list", "data": [{"embedding": [1]}, {"embedding": [2]}]}),
        _ok(
            "r_4",
            {"object": "text_completion", "choices": [{"text": "done", "finish_reason": "stop"}]},
        ),
        _ok("r_5", {"id": "modr", "results": [{"flagged": False, "categories": {"hate": False}}]}),
        _ok("r_6", {"something": "else"}),
        _err("r_7", 429, "rate_limit_exceeded", "Slow down"),
        {
            "id": "x",
            "custom_id": "r_8",
            "response": {"status_code": 400, "body": "plain text"},
            "error": None,
        },
    ]
    output = folder / "mixed.jsonl"
    output.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return {"output": output}
