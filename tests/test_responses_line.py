"""responsesline.responses_line (msgspec's typed decode of a successful /v1/responses line, the
hot path for that endpoint) reads a line exactly as the general path does (answers.parse_line,
then answers.extract).

responses_line may refuse any line (None: the general path reads it); a line it accepts must
give what the general path gives. Lines are generated from the Responses API's answer with
values changed, items and parts added (reasoning, refusals, function calls, odd values), and
written byte by byte with repeated keys, escaped key names and odd JSON in skipped fields.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.results import answers, responsesline
from test_answers_fast import ABSENT, changed, check_index, encode, general, value
from test_plain_line import FRAGMENTS, ODD, SPACES, STARTS, Raw, agrees, with_keys, write

READ = responsesline.responses_line


def response(n: int, text: str, status: str = "completed", tokens: int = 4) -> dict[str, Any]:
    """A successful /v1/responses line as the Batch API writes it (a reasoning item first)."""
    message = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
    }
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": "m",
        "output": [{"id": "rs_1", "type": "reasoning", "summary": []}, message],
        "usage": {
            "input_tokens": tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens + 2,
        },
    }
    return {
        "id": "batch_req_1",
        "custom_id": f"id_{n}",
        "response": {"status_code": 200, "request_id": "r", "body": body},
        "error": None,
    }


BODY = ("response", "body")
MESSAGE = (*BODY, "output", 1)
PART = (*MESSAGE, "content", 0)
PLACES = [
    ("error",),
    ("custom_id",),
    ("response", "status_code"),
    BODY,
    (*BODY, "object"),
    (*BODY, "status"),
    (*BODY, "incomplete_details"),
    (*BODY, "incomplete_details", "reason"),
    (*BODY, "choices"),
    (*BODY, "output"),
    (*BODY, "output", "+"),
    (*BODY, "output", 0),
    (*BODY, "output", 0, "type"),
    (*BODY, "output", 0, "content"),
    MESSAGE,
    (*MESSAGE, "type"),
    (*MESSAGE, "content"),
    (*MESSAGE, "content", "+"),
    PART,
    (*PART, "type"),
    (*PART, "text"),
    (*BODY, "usage"),
    (*BODY, "usage", "input_tokens"),
    (*BODY, "usage", "output_tokens"),
    (*BODY, "usage", "prompt_tokens"),
    (*BODY, "usage", "completion_tokens"),
]
# values that mean something here (fresh objects: changed() edits in place)
MEANT = st.one_of(
    st.sampled_from(["response", "chat.completion", "message", "output_text", "refusal"]),
    st.sampled_from(["reasoning", "function_call", "incomplete", "completed", "", 200, None]),
    st.builds(lambda: {"type": "output_text", "text": "more"}),
    st.builds(lambda: {"type": "output_text"}),
    st.builds(lambda: {"type": "output_text", "text": None}),
    st.builds(lambda: {"type": "refusal", "refusal": "no"}),
    st.builds(lambda: {"type": "refusal", "refusal": ""}),
    st.builds(lambda: {"type": "function_call", "name": "f", "arguments": "{}"}),
    st.builds(lambda: {"type": "message", "content": [{"type": "output_text", "text": "x"}]}),
    st.builds(lambda: {"type": "message", "content": None}),
    st.builds(lambda: {"type": "web_search_call", "content": [{"text": 5}]}),
    st.builds(lambda: {"reason": "max_output_tokens"}),
    st.builds(lambda: {"reason": ""}),
    st.builds(lambda: {"reason": 5}),
    st.builds(lambda: [{"message": {"content": "chat"}, "finish_reason": "stop"}]),
)
OTHER = st.one_of(value, st.just(ABSENT), MEANT)
TEXTS = st.one_of(
    st.text(max_size=8),
    st.sampled_from(['{"a": 1}', ' {"b": [1]}', "\ud800", "x" * 3000, "é 😀 \u2028", ""]),
)


@st.composite
def records(draw: st.DrawFn, n: int) -> Any:
    """A Responses API line with none, one or a few of its values changed."""
    record = response(n, draw(TEXTS), draw(st.sampled_from(["completed", "incomplete"])))
    for place, new in draw(st.lists(st.tuples(st.sampled_from(PLACES), OTHER), max_size=4)):
        record = changed(record, place, new)
    return record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 99).flatmap(records), st.booleans())
def test_responses_line_reads_every_generated_line_as_the_general_path(
    record: Any, ascii_only: bool
) -> None:
    agrees(encode(record, ascii_only) + b"\n", READ)


KNOWN_KEYS = [
    "custom_id", "error", "response", "status_code", "body", "object", "output", "type",
    "content", "text", "refusal", "status", "incomplete_details", "reason", "usage",
    "input_tokens", "output_tokens", "prompt_tokens", "completion_tokens", "choices",
]  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(KNOWN_KEYS),  # a repeated key: the last one wins
    st.sampled_from(KNOWN_KEYS).map(lambda k: Raw(json.dumps(k).replace("t", "\\u0074").encode())),
    st.just("x"),
)


@st.composite
def edited_lines(draw: st.DrawFn) -> bytes:
    """A Responses API line with keys added at random places: repeated known keys with other
    values, escaped key names, skipped keys holding odd JSON (as test_plain_line's)."""
    record = draw(st.integers(0, 99).flatmap(records))
    line = with_keys(draw, record, KEYS, st.one_of(FRAGMENTS, MEANT))
    return draw(STARTS) + write(line, draw(SPACES)) + b"\n"


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edited_lines())
def test_responses_line_reads_every_edited_line_as_the_general_path(raw: bytes) -> None:
    agrees(raw, READ)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(st.lists(st.one_of(edited_lines(), st.sampled_from(ODD)), min_size=1, max_size=8))
def test_the_index_reads_responses_lines_as_the_general_path(
    tmp_path_factory: Any, lines: list[bytes]
) -> None:
    """The same lines through ResultIndex (filereader.read_file): counts, winners, cells."""
    content = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    check_index(tmp_path_factory, content.removesuffix(b"\n").split(b"\n"))


def line_of(record: Any) -> bytes:
    return json.dumps(record).encode() + b"\n"


def test_the_usual_answers_take_the_typed_path() -> None:
    """Else the tests above compare the general path with itself."""
    assert responsesline.responses_line(line_of(response(1, "Hi"))) == (
        "id_1",
        "Hi",
        "completed",
        4,
        2,
    )
    truncated = response(2, '{"a": 1', "incomplete")
    truncated["response"]["body"]["incomplete_details"] = {"reason": "max_output_tokens"}
    assert responsesline.responses_line(line_of(truncated)) == (
        "id_2", '{"a": 1', "incomplete: max_output_tokens", 4, 2,
    )  # fmt: skip
    assert agrees(line_of(truncated), READ)


REFUSED = [
    ("a refusal part", (*MESSAGE, "content", "+"), {"type": "refusal", "refusal": "no"}),
    ("a function call", (*BODY, "output", "+"), {"type": "function_call", "arguments": "{}"}),
    ("choices beside output", (*BODY, "choices"), []),
    ("an error", ("error",), {"code": "x"}),
    ("status 500", ("response", "status_code"), 500),
    ("another object", (*BODY, "object"), "chat.completion"),
    ("an item without a type", (*BODY, "output", 0, "type"), ABSENT),
    ("a token as a float", (*BODY, "usage", "input_tokens"), 4.0),
]


@pytest.mark.parametrize(("name", "place", "new"), REFUSED, ids=[case[0] for case in REFUSED])
def test_what_the_typed_path_leaves_to_the_general_one(name: str, place: Any, new: Any) -> None:
    raw = line_of(changed(response(1, "Hi"), place, new))
    assert responsesline.responses_line(raw) is None
    assert general(raw)[0] == "id_1"


def test_a_join_golden_responses_line_takes_the_typed_path() -> None:
    """The endpoints fixture's Responses API line (a reasoning item, then the message)."""
    from pathlib import Path

    golden = Path(__file__).parent / "data" / "join_golden" / "endpoints-responses.jsonl"
    lines = [raw for raw in golden.read_bytes().splitlines(keepends=True) if b'"r_2"' in raw]
    assert len(lines) == 1 and agrees(lines[0], READ)


ACCEPTED = [
    ("an empty reason", (*BODY, "incomplete_details"), {"reason": ""}),
    ("no reason", (*BODY, "incomplete_details"), {}),
    ("status null", (*BODY, "status"), None),
    ("no status", (*BODY, "status"), ABSENT),
    ("text null", (*PART, "text"), None),
    ("no text", (*PART, "text"), ABSENT),
    ("another part", (*MESSAGE, "content", "+"), {"type": "summary_text", "text": "s"}),
    ("a second text", (*MESSAGE, "content", "+"), {"type": "output_text", "text": "2"}),
    ("a second message", (*BODY, "output", "+"), {"type": "message", "content": None}),
    ("another item", (*BODY, "output", "+"), {"type": "web_search_call", "content": []}),
    ("no output", (*BODY, "output"), ABSENT),
    ("no usage", (*BODY, "usage"), None),
    ("prompt_tokens null", (*BODY, "usage", "prompt_tokens"), None),
]


@pytest.mark.parametrize(("name", "place", "new"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_near_misses_the_typed_path_reads_as_the_general_one(
    name: str, place: Any, new: Any
) -> None:
    assert agrees(line_of(changed(response(1, "Hi"), place, new)), READ)


def test_plain_line_guards_the_lines_as_typed_does() -> None:
    """plain_line writes out typed()'s guards (two calls cost 6% of the hot path): the same
    lines refused, on each of test_plain_line's known differences and JSONTestSuite's cases."""
    from test_plain_line import CASES, FIXED, edit

    lines = [raw for _, raw, _ in FIXED] + [edit(b'"Hi"', case) for case in CASES.values()]
    for raw in lines:
        typed = responsesline.typed(answers._PLAIN, raw)
        assert (typed is None) == (answers.plain_line(raw) is None), raw


def test_responses_lines_after_many_others_read_as_the_general_path(
    tmp_path_factory: Any,
) -> None:
    """A file's reader stops looking for Responses answers after a run of other lines (an
    error file): the lines after are read the general way, to the same cells."""
    error = changed(response(0, "x"), ("response", "status_code"), 500)
    lines = [line_of({**error, "custom_id": f"e_{n}"}).rstrip(b"\n") for n in range(40)]
    lines += [line_of(response(n, f"answer {n}")).rstrip(b"\n") for n in range(5)]
    check_index(tmp_path_factory, lines)
