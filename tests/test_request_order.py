"""The request files that need a retry are found by the responses file's own pass over the
request order (merge.RequestOrder), not by reading the request files once more: the same files
as the rule says (a request that failed or has no result), wherever the blocks of lookups and
the files' ends fall, empty request files and ids repeated across files included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.results import merge, requestids
from openai_batch.results.merge import RequestOrder, ResultIndex, write_responses

Outcome = str  # "ok", "error" or "missing"


def request(custom_id: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": custom_id}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": body}) + "\n"  # fmt: skip


def result(custom_id: str, ok: bool) -> str:
    if ok:
        choice = {"index": 0, "message": {"role": "assistant", "content": "a"},
                  "finish_reason": "stop"}  # fmt: skip
        body: dict[str, Any] = {"choices": [choice], "usage": {"prompt_tokens": 1}}
        response = {"status_code": 200, "body": body}
    else:
        response = {"status_code": 500, "body": {"error": {"message": "x", "code": None}}}
    return json.dumps({"custom_id": custom_id, "response": response, "error": None}) + "\n"


@st.composite
def request_files(draw: Any) -> list[list[tuple[str, Outcome]]]:
    """Up to 5 request files of up to 6 requests (some empty); ids now and then repeated."""
    files = []
    count = 0
    for _ in range(draw(st.integers(1, 5))):
        rows = []
        for _ in range(draw(st.integers(0, 6))):
            repeat = count and draw(st.integers(0, 9)) == 0
            custom_id = f"id_{draw(st.integers(0, count - 1)) if repeat else count}"
            count += 0 if repeat else 1
            rows.append((custom_id, draw(st.sampled_from(["ok", "ok", "error", "missing"]))))
        files.append(rows)
    return files


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=request_files(), block=st.integers(1, 5))
def test_the_files_to_retry_are_found_on_the_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[list[tuple[str, Outcome]]],
    block: int,
) -> None:  # fmt: skip
    monkeypatch.setattr(merge, "RESPONSES_BLOCK", block)  # blocks end anywhere in the files
    paths, outcome = [], {}
    for n, rows in enumerate(files):
        path = tmp_path / f"r-{n}.jsonl"
        path.write_text("".join(request(cid) for cid, _ in rows), encoding="utf-8")
        paths.append(path)
        outcome.update(rows)  # a repeated id: its last outcome is the one it has
    answers = tmp_path / "out.jsonl"
    answers.write_text("".join(result(cid, state == "ok") for cid, state in outcome.items()
                               if state != "missing"), encoding="utf-8")  # fmt: skip
    expected = [p for p, rows in zip(paths, files, strict=True)
                if any(outcome[cid] != "ok" for cid, _ in rows)]  # fmt: skip
    with ResultIndex() as index:
        index.add_file(answers, 0)
        summary = write_responses(index, tmp_path / "responses.jsonl", RequestOrder(paths))
    assert summary.failing == expected
    written = (tmp_path / "responses.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(written) == summary.lines
    # each result once, where its custom_id is first listed (repeats within a block too)
    listed = [cid for rows in files for cid, _ in rows]
    want = [cid for cid in dict.fromkeys(listed) if outcome[cid] != "missing"]
    assert [json.loads(line)["custom_id"] for line in written] == want


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=request_files(), read=st.integers(1, 300), size=st.integers(0, 7),
    pad=st.integers(0, 120),
)  # fmt: skip
def test_the_order_a_block_at_a_time_is_the_order_one_id_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[list[tuple[str, Outcome]]],
    read: int, size: int, pad: int,
) -> None:  # fmt: skip
    """RequestOrder.blocks (lists of `size` ids, or as read) holds the ids the files list in
    order, wherever the bytes read (`read` at a time) and the blocks end; the files' starts
    (RequestOrder.mark's) are the same either way."""
    monkeypatch.setattr(requestids, "BLOCK", read)
    paths, ids, starts = [], [], []
    for n, rows in enumerate(files):
        path = tmp_path / f"r-{n}.jsonl"
        path.write_text("".join(request(cid + " " * pad) for cid, _ in rows), encoding="utf-8")
        paths.append(path)
        starts.append(len(ids))
        ids.extend(cid + " " * pad for cid, _ in rows)
    order = RequestOrder(paths)
    blocks = list(order.blocks(size))
    assert [custom_id for block in blocks for custom_id in block] == ids
    assert all(blocks) and (not size or all(len(b) == size for b in blocks[:-1]))
    assert order._starts == starts
    assert list(order) == ids and order._starts == starts
    assert list(merge.batched(RequestOrder(paths), size or 1)) == list(
        merge.batched(iter(ids), size or 1)
    )


def test_without_request_files_no_files_are_named(tmp_path: Path) -> None:
    answers = tmp_path / "out.jsonl"
    answers.write_text(result("id_0", False), encoding="utf-8")
    with ResultIndex() as index:
        index.add_file(answers, 0)
        assert write_responses(index, tmp_path / "a.jsonl").failing is None
        assert write_responses(index, tmp_path / "b.jsonl", ["id_0", "id_1"]).failing is None
