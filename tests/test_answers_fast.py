"""The join's fast path reads every result line exactly as the general path does.

ResultIndex.add_file reads the common line (a successful one-choice chat answer) with
answers.plain_chat instead of answers.extract; every other line goes the general way. Here
generated result lines (odd unicode, escapes, lone surrogates, huge and empty contents, nulls,
missing and extra fields, numbers as floats and strings, several choices, errors, lines that are
not JSON) go through the index, and every row result and spilled cell must be what the general
path (answers.extract on the json module's or orjson's reading of the line) makes of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import need_seed
from openai_batch.results import answers
from openai_batch.results.answerstore import python_rows
from openai_batch.results.index import ResultIndex

ABSENT = object()  # a key left out of the record

odd_text = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "\n",
            '"',
            "\\",
            "\x00",
            "\u2028",
            "é",
            "😀",
            "\ud800",
            "\udfff",
            "x" * 70_000,
            ' {"a": 1}',
            '{"a": [1, 2], "b": null}',
            "{}",
            "{not json",
            '{"k": "\\ud800"}',
        ]
    ),
)
number = st.one_of(
    st.integers(-5, 10**6), st.sampled_from([0, 2**63 - 1, 2**64 + 1, -0.0, 7.0, 7.5, True])
)
value = st.one_of(
    st.none(),
    odd_text,
    number,
    st.lists(st.integers(), max_size=2),
    st.builds(dict),
    st.builds(lambda: [{}]),
)  # fresh objects: changed() edits in place

# Where a line can differ from the common shape: a path into the record (a last part "+"
# appends to a list), set to another value or (ABSENT) left out.
PLACES = [
    ("error",),
    ("custom_id",),
    ("response",),
    ("response", "status_code"),
    ("response", "body"),
    ("response", "body", "object"),
    ("response", "body", "choices"),
    ("response", "body", "choices", "+"),
    ("response", "body", "choices", 0),
    ("response", "body", "choices", 0, "message"),
    ("response", "body", "choices", 0, "message", "content"),
    ("response", "body", "choices", 0, "message", "refusal"),
    ("response", "body", "choices", 0, "message", "tool_calls"),
    ("response", "body", "choices", 0, "finish_reason"),
    ("response", "body", "usage"),
    ("response", "body", "usage", "prompt_tokens"),
    ("response", "body", "usage", "input_tokens"),
    ("response", "body", "usage", "completion_tokens"),
    ("response", "body", "usage", "output_tokens"),
    ("response", "body", "extra"),
]


def plain(n: int, content: str, finish: str, prompt: int, completion: int) -> dict[str, Any]:
    """A line of the common shape: a successful one-choice chat answer."""
    message = {"role": "assistant", "content": content, "refusal": None}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    return {
        "id": "batch_req_1",
        "custom_id": f"id_{n}",
        "error": None,
        "response": {"status_code": 200, "request_id": "r", "body": body},
    }


def changed(record: Any, place: tuple[Any, ...], new: Any) -> Any:
    """The record with the value at `place` replaced (where that place still exists)."""
    *parents, last = place
    at = record
    for part in parents:
        in_dict = isinstance(at, dict) and part in at
        inside = in_dict or (isinstance(at, list) and isinstance(part, int) and part < len(at))
        if not inside:
            return record
        at = at[part]
    if last == "+":
        if isinstance(at, list) and new is not ABSENT:
            at.append(new)
    elif isinstance(at, dict):
        if new is ABSENT:
            at.pop(last, None)
        else:
            at[last] = new
    elif isinstance(at, list) and isinstance(last, int) and last < len(at):
        at[last] = {} if new is ABSENT else new
    return record


json_text = st.sampled_from(
    [' {"a": 1}', '\n\t{"a": {"b": 2}, "c": null}', '{"a": 1, "b": "x"}', "{}", "[1]", '{"a": NaN}']
)
other = st.one_of(value, st.just(ABSENT), st.sampled_from(["text_completion", "response"]))


@st.composite
def records(draw: st.DrawFn, n: int) -> Any:
    """A line of the common shape with none, one or a few of its values changed."""
    record = plain(
        n,
        draw(st.one_of(odd_text, json_text)),
        draw(st.sampled_from(["stop", "length", ""])),
        draw(st.integers(0, 999)),
        draw(st.integers(0, 99)),
    )
    if draw(st.booleans()):  # the Responses API's names for the tokens
        usage = record["response"]["body"]["usage"]
        usage["input_tokens"], usage["output_tokens"] = usage.pop("prompt_tokens"), 5
        del usage["completion_tokens"]
    changes = st.tuples(st.sampled_from(PLACES), other)
    for place, new in draw(st.lists(changes, max_size=3)):
        record = changed(record, place, new)
    return record


def encode(record: Any, ascii_only: bool) -> bytes:
    """The line as a server might write it (a lone surrogate can only travel escaped)."""
    text = json.dumps(record, ensure_ascii=ascii_only)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record).encode("ascii")


raw_lines = st.one_of(
    st.builds(encode, st.integers(0, 10**6).flatmap(records), st.booleans()),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"not json",
            b"[1, 2]",
            b"null",
            b'{"custom_id": "x", "a": NaN}',
            b'{"custom_id": "deep", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            b'{"custom_id": "bad \xff utf-8", "response": null}',
        ]
    ),
)


def general(raw: bytes) -> tuple[str | None, list[Any] | None]:
    """What the general path makes of one line: its custom_id and row result cells."""
    try:
        record = answers.parse_line(raw)
    except answers.MalformedResult as exc:
        custom_id = answers.custom_id_in(raw) if raw.lstrip().startswith(b"{") else None
        return custom_id, answers.malformed(str(exc)).cells()
    custom_id = record.get("custom_id") if isinstance(record, dict) else None
    if not isinstance(custom_id, str):
        return None, None
    return custom_id, answers.extract(record).cells()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(st.lists(raw_lines, min_size=1, max_size=12))
def test_the_index_reads_every_line_as_the_general_path(tmp_path_factory: Any, lines: Any) -> None:
    check_index(tmp_path_factory, lines)


def check_index(tmp_path_factory: Any, lines: list[bytes]) -> None:
    """The lines (no line feeds) as one file through ResultIndex: every count, winner and
    spilled cell is what the general path makes of them."""
    path = Path(tmp_path_factory.mktemp("fast")) / "out.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected: dict[str, list[Any]] = {}
    unreadable = malformed = 0
    keys: dict[str, int] = {}
    for raw in lines:
        if not raw.strip():
            continue
        custom_id, cells = general(raw)
        if custom_id is None:
            unreadable += 1
            continue
        assert cells is not None
        if custom_id not in expected or cells[0] == "ok" or expected[custom_id][0] != "ok":
            expected[custom_id] = cells  # a success wins, else the later line
        if cells[-1].startswith(answers.MALFORMED):
            malformed += 1
        elif cells[0] == "ok":
            for key in answers.json_object(cells[1]) or {}:
                keys[key] = keys.get(key, 0) + 1
    with ResultIndex() as index:
        assert index.add_file(path, 0) == sum(1 for raw in lines if raw.strip())
        assert (index.unreadable, index.malformed) == (unreadable, malformed)
        assert index.json_key_counts == keys
        assert len(index) == len(expected)
        for custom_id, cells in expected.items():
            position = index.position(custom_id)
            assert position is not None
            assert index.result(custom_id).cells() == cells
            taken = index.answers_for(np.array([position]), [custom_id])
            assert python_rows(taken) == [[custom_id, *cells]]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 99).flatmap(records))
def test_plain_chat_agrees_with_extract(record: Any) -> None:
    if not isinstance(record, dict):
        return
    plain = answers.plain_chat(record)
    if plain is None:
        return
    result = answers.extract(record)
    assert result.status == "ok"
    assert result.cells() == ["ok", plain[0], plain[1], "", plain[2], plain[3], ""]
    assert not result.tool_arguments


NEAR = [
    ABSENT,
    None,
    "",
    "x",
    ' {"a": 1}',
    "text_completion",
    "response",
    0,
    200,
    200.0,
    7.5,
    True,
    2**64 + 1,
    [],
    {},
    [{}],
]


@pytest.mark.parametrize("place", PLACES, ids=lambda p: ".".join(map(str, p)))
def test_plain_chat_agrees_with_extract_on_every_near_miss(place: tuple[Any, ...]) -> None:
    """Each value of the common line changed to each odd value, one at a time."""
    for new in NEAR:
        record = changed(plain(1, "Hi", "stop", 9, 2), place, new)
        plain_cells = answers.plain_chat(record)
        if plain_cells is not None:
            cells = answers.extract(record).cells()
            assert cells == ["ok", plain_cells[0], plain_cells[1], "", *plain_cells[2:], ""], new


def test_the_common_line_takes_the_fast_path() -> None:
    """What the Batch API writes for a chat answer is the shape plain_chat reads (else the
    tests above would compare the general path with itself)."""
    line = {
        "id": "batch_req_1",
        "custom_id": "id_0",
        "error": None,
        "response": {
            "status_code": 200,
            "request_id": "r",
            "body": {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "Hi", "refusal": None},
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            },
        },
    }
    assert answers.plain_chat(line) == ("Hi", "stop", 9, 2)
    assert answers.plain_chat({**line, "error": {"code": "x"}}) is None


def test_a_real_output_file_takes_the_fast_path() -> None:
    """Every line of a real Batch output file (../shared) is read by plain_chat."""
    real = need_seed() / "batch-responses.openai.jsonl"
    for raw in real.read_bytes().splitlines():
        record = json.loads(raw)
        plain = answers.plain_chat(record)
        assert plain is not None
        assert answers.extract(record).cells() == ["ok", plain[0], plain[1], "", *plain[2:], ""]
