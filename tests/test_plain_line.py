"""answers.plain_line (msgspec's typed decode, the join's hot path) reads a line exactly as the
general path does (answers.parse_line, orjson or the json module, then plain_chat / extract).

plain_line may refuse any line (None: the general path reads it); a line it accepts must give
what the general path gives. Lines are written byte by byte here, so that they carry what a
dict cannot: duplicate keys at every level, keys spelled with escapes, whitespace, odd JSON in
fields msgspec skips (JSONTestSuite's cases, vendored in tests/data with their licence), invalid
UTF-8, nesting near the recursion limit, numbers past 64 bits, a BOM, trailing garbage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import need_seed
from openai_batch.results import answers
from test_answers_fast import check_index, encode, general, records

SUITE = json.loads((Path(__file__).parent / "data" / "jsontestsuite-parsing.json").read_text())
CASES = {name: text.encode("latin-1") for name, text in SUITE["files"].items()}


def agrees(raw: bytes, read: Callable[[bytes], Any] = answers.plain_line) -> bool:
    """Whether `read` (a typed fast reader: plain_line, responsesline.responses_line) took the
    line; asserts it read it as the general path does."""
    fast = read(raw)
    if fast is None:
        return False
    custom_id, content, finish, prompt, completion = fast
    assert general(raw) == (custom_id, ["ok", content, finish, "", prompt, completion, ""]), raw
    return True


class Pairs(list):  # type: ignore[type-arg]
    """A JSON object as (key, value) pairs: keys may repeat, a key may be raw JSON text."""


class Raw(bytes):
    """JSON text written as it is (a fragment that no dict can hold)."""


def pairs(value: Any) -> Any:
    """A parsed value with every object as Pairs (so edits can repeat keys)."""
    if isinstance(value, dict):
        return Pairs((key, pairs(item)) for key, item in value.items())
    if isinstance(value, list):
        return [pairs(item) for item in value]
    return value


def write(value: Any, space: bytes = b"") -> bytes:
    """The JSON text of a value with Pairs and Raw, `space` after each separator."""
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, Pairs):
        items = [write(key) + b":" + space + write(item, space) for key, item in value]
        return b"{" + (b"," + space).join(items) + b"}"
    if isinstance(value, list):
        return b"[" + (b"," + space).join(write(item, space) for item in value) + b"]"
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate travels escaped
        return json.dumps(value).encode("ascii")


def objects(value: Any) -> Iterator[Pairs]:
    """Every object in a value, outermost first."""
    if isinstance(value, Pairs):
        yield value
        for _, item in value:
            yield from objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from objects(item)


KNOWN_KEYS = [
    "custom_id", "error", "response", "status_code", "body", "object", "choices", "message",
    "content", "refusal", "finish_reason", "usage", "prompt_tokens", "completion_tokens",
    "input_tokens", "output_tokens",
]  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(KNOWN_KEYS),  # a repeated key: the last one wins
    st.sampled_from(KNOWN_KEYS).map(lambda k: Raw(json.dumps(k).replace("_", "\\u005f").encode())),
    st.just("x"),
)
ODD = [b"NaN", b"-Infinity", b"1e400", b"18446744073709551616", b"-9223372036854775809"]
ODD += [b"9223372036854775808", b"1.0", b"true", b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"']
ODD += [b'"\\udc00\\ud800"', b'"\x01"', b'"\x7f"', b"[" * 40 + b"]" * 40, b"\x0c1"]
FRAGMENTS = st.one_of(
    st.sampled_from(sorted(CASES)).map(lambda name: Raw(CASES[name])),
    st.sampled_from(ODD).map(Raw),
    st.sampled_from([None, 200, 200.0, "chat.completion", "stop", [], {}, 2**64 + 1]),
    st.text(max_size=4),
    st.integers(),
)
SPACES = st.sampled_from([b"", b" ", b"\n", b"\t\r\n "])
ENDS = st.sampled_from([b"\n", b"", b"\r\n", b" \n", b"\x0c\n", b" x\n", b"}\n", b"\n\n"])
STARTS = st.sampled_from([b"", b"", b" ", b"\xef\xbb\xbf", b"\x0b"])


@st.composite
def edited_lines(draw: st.DrawFn) -> bytes:
    """A result line (mostly of the common shape) with keys added at random places: repeated
    known keys with other values, escaped key names, skipped keys holding odd JSON."""
    value = with_keys(draw, draw(st.integers(0, 99).flatmap(records)), KEYS, FRAGMENTS)
    return draw(STARTS) + write(value, draw(SPACES)) + draw(ENDS)


def with_keys(
    draw: st.DrawFn, record: Any, keys: st.SearchStrategy[Any], values: st.SearchStrategy[Any]
) -> Pairs:
    """The record as Pairs with up to three of `keys` holding `values` put in its objects."""
    value = pairs(record)
    found = list(objects(value))
    for _ in range(draw(st.integers(0, 3))):
        if not found:
            break
        target = draw(st.sampled_from(found))
        where = draw(st.integers(0, len(target)))
        target.insert(where, (draw(keys), draw(values)))
    return value  # type: ignore[no-any-return]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edited_lines())
def test_plain_line_reads_every_edited_line_as_the_general_path(raw: bytes) -> None:
    agrees(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 99).flatmap(records), st.booleans())
def test_plain_line_reads_every_generated_line_as_the_general_path(
    record: Any, ascii_only: bool
) -> None:
    agrees(encode(record, ascii_only) + b"\n")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(st.lists(edited_lines(), min_size=1, max_size=8))
def test_the_index_reads_edited_lines_as_the_general_path(
    tmp_path_factory: Any, lines: list[bytes]
) -> None:
    """The same lines through ResultIndex (filereader.read_file): counts, winners, cells."""
    content = b"".join(lines)  # a line without its line feed runs into the next, as in a file
    check_index(tmp_path_factory, content.removesuffix(b"\n").split(b"\n"))


COMMON = (
    b'{"id": "batch_req_1", "custom_id": "id_7", "response": {"status_code": 200, "request_id":'
    b' "r", "body": {"id": "c", "object": "chat.completion", "created": 1, "model": "m",'
    b' "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {"role":'
    b' "assistant", "content": "Hi", "refusal": null}}], "usage": {"prompt_tokens": 9,'
    b' "completion_tokens": 2, "total_tokens": 11}}}, "error": null}'
)


def edit(old: bytes, new: bytes) -> bytes:
    assert COMMON.count(old) == 1, old
    return COMMON.replace(old, new) + b"\n"


SKIPPED = b'"model": "m"'  # a field plain_line skips
USAGE = b'{"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}'
CHOICES = b'[{"index": 0, "finish_reason": "stop", "logprobs": null, "message": {"role":'
CHOICES += b' "assistant", "content": "Hi", "refusal": null}}]'


def skipped(value: bytes) -> bytes:
    return edit(SKIPPED, b'"model": ' + value)


def prompt(value: bytes) -> bytes:
    return edit(b'"prompt_tokens": 9', b'"prompt_tokens": ' + value)


def custom_id(text: bytes) -> bytes:
    return edit(b'"custom_id": "id_7"', text)


# (name, line, whether plain_line reads it). Each line it refuses is one where msgspec's
# reading differs from the general path's (or could): refusing is what keeps them equal.
FIXED = [
    ("the common line", COMMON + b"\n", True),
    ("without a line feed", COMMON, True),
    ("with CR LF", COMMON + b"\r\n", True),
    ("non-ASCII content", edit(b'"Hi"', '"é 😀 \u2028"'.encode()), True),
    ("escaped content", edit(b'"Hi"', b'"\\u00e9\\ud83d\\ude00\\u0000\\/"'), True),
    ("a repeated custom_id: the last", custom_id(b'"custom_id": "a", "custom_id": "b"'), True),
    ("an escaped key", custom_id(b'"custom_id": "a", "custom\\u005fid": "b"'), True),
    ("a repeated usage: null last", edit(USAGE, USAGE + b', "usage": null'), True),
    ("a repeated token: null last", prompt(b'9, "prompt_tokens": null'), True),
    ("a repeated error: null last", edit(b'"error": null', b'"error": {}, "error": null'), False),
    (
        "a repeated refusal: text last",
        edit(b'"refusal": null', b'"refusal": null, "refusal": ""'),
        False,
    ),
    (
        "a repeated response, an error last",
        COMMON[:-1] + b', "response": {"status_code": 500}}',
        False,
    ),
    ("a repeated skipped key", skipped(b'[1], "model": {"a": "b"}'), True),
    ("input/output tokens", edit(USAGE, b'{"input_tokens": 9, "output_tokens": 2}'), True),
    ("prompt_tokens null beside input_tokens", prompt(b'null, "input_tokens": 4'), True),
    ("no usage", edit(b', "usage": ' + USAGE, b""), True),
    ("usage null", edit(USAGE, b"null"), True),
    ("usage a string", edit(USAGE, b'"9"'), False),
    ("a token as a bool", prompt(b"true"), False),
    ("a token as a float", prompt(b"9.0"), False),
    ("a token as 9e0", prompt(b"9e0"), False),
    ("a token as a string", prompt(b'"9"'), False),
    ("a token over 64 bits (orjson: a float)", prompt(b"18446744073709551617"), False),
    ("a token of 64 bits", prompt(b"9223372036854775807"), True),
    ("a negative token of 64 bits", prompt(b"-9223372036854775808"), True),
    ("a token below 64 bits", prompt(b"-9223372036854775809"), False),
    ("a token of -0", prompt(b"-0"), True),
    ("a skipped integer over 64 bits", skipped(b"1" + b"0" * 30), True),
    ("a skipped 1e400 (orjson refuses)", skipped(b"1e400"), True),
    ("a skipped NaN", skipped(b"NaN"), False),
    ("a skipped lone surrogate", skipped(b'"\\ud800"'), False),
    ("content a lone surrogate", edit(b'"Hi"', b'"\\udc00"'), False),
    ("invalid UTF-8 in a skipped field", skipped(b'"\xff"'), False),
    ("an encoded surrogate in a skipped field", skipped(b'"\xed\xa0\x80"'), False),
    ("an overlong encoding in a skipped field", skipped(b'"\xc0\xaf"'), False),
    ("a control character in a skipped field", skipped(b'"\x01"'), False),
    ("a raw tab in content", edit(b'"Hi"', b'"H\ti"'), False),
    ("a skipped field 500 deep", skipped(b"[" * 500 + b"]" * 500), True),
    ("a skipped field 600 deep", skipped(b"[" * 600 + b"]" * 600), False),
    ("a skipped field 3000 deep", skipped(b"[" * 3000 + b"]" * 3000), False),
    ("a BOM", b"\xef\xbb\xbf" + COMMON + b"\n", False),
    ("trailing garbage", COMMON + b" x\n", False),
    ("a trailing comma", edit(b'"error": null', b'"error": null,'), False),
    ("a form feed after", COMMON + b"\x0c\n", False),
    ("a blank line", b"\n", False),
    ("an empty line", b"", False),
    ("spaces", b"  \n", False),
    ("two lines in one", COMMON + b"\n" + COMMON + b"\n", False),
    ("error absent", edit(b', "error": null', b""), True),
    ("an error", edit(b'"error": null', b'"error": {"code": "x", "message": "y"}'), False),
    ("status 500", edit(b'"status_code": 200', b'"status_code": 500'), False),
    ("status 200.0", edit(b'"status_code": 200', b'"status_code": 200.0'), False),
    ("status true", edit(b'"status_code": 200', b'"status_code": true'), False),
    ("object text_completion", edit(b'"chat.completion"', b'"text_completion"'), False),
    ("object escaped", edit(b'"chat.completion"', b'"chat\\u002ecompletion"'), True),
    ("no object", edit(b'"object": "chat.completion", ', b""), False),
    (
        "two choices",
        edit(b"}}]", b'}}, {"message": {"content": "x"}, "finish_reason": "s"}]'),
        False,
    ),
    ("no choices", edit(CHOICES, b"[]"), False),
    ("a refusal", edit(b'"refusal": null', b'"refusal": "I cannot"'), False),
    ("refusal absent", edit(b', "refusal": null', b""), True),
    ("content null (tool calls)", edit(b'"Hi"', b'null, "tool_calls": [{"id": "c"}]'), False),
    ("content as parts", edit(b'"Hi"', b'[{"type": "text", "text": "Hi"}]'), False),
    ("finish_reason null", edit(b'"finish_reason": "stop"', b'"finish_reason": null'), False),
    ("custom_id a number", custom_id(b'"custom_id": 7'), False),
    ("custom_id absent", edit(b'"custom_id": "id_7", ', b""), False),
    ("an array", b"[" + COMMON + b"]\n", False),
]


@pytest.mark.parametrize(("name", "raw", "fast"), FIXED, ids=[case[0] for case in FIXED])
def test_plain_line_on_each_known_difference(name: str, raw: bytes, fast: bool) -> None:
    assert agrees(raw) is fast


BIG = [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 400, b"-" + b"9" * 5000]
EDGE = [b"18446744073709551615", b"-9223372036854775808", b"-0"]


def test_an_integer_past_64_bits_reads_the_same_whichever_reader() -> None:
    """orjson reads an integer past 64 bits as a float; a line it refuses for another reason
    (a NaN) is read by the json module, told to read integers the same way (it read them
    exactly: the same token count was a number in one row and a float in another)."""
    numbers = b"[" + b", ".join(BIG + EDGE) + b"]"
    plain = answers.parse_line(numbers)
    with_nan = answers.parse_line(numbers[:-1] + b", NaN]")[:-1]
    assert [type(v) for v in plain] == [float] * len(BIG) + [int] * len(EDGE)
    assert plain == with_nan
    assert plain[len(BIG) :] == [2**64 - 1, -(2**63), 0]


@pytest.mark.parametrize("token", BIG[:2])
def test_a_token_past_64_bits_is_the_same_cell_in_every_row(
    tmp_path_factory: Any, token: bytes
) -> None:
    """Through the index, with and without a NaN elsewhere in the line: the same cells, the
    spilled answer read back included (it was the exact integer, read back as a float)."""
    lines = [prompt(token).rstrip(b"\n"), prompt(token + b', "nan": NaN').rstrip(b"\n")]
    lines[1] = lines[1].replace(b'"id_7"', b'"id_8"')
    assert general(lines[0])[1] == general(lines[1])[1]
    assert general(lines[0])[1][4] == ""  # a float is no token count
    check_index(tmp_path_factory, lines)


@pytest.mark.parametrize("limit", [None, 2500], ids=["default limit", "raised limit"])
def test_lines_nested_up_to_the_recursion_limit(limit: int | None) -> None:
    """The json module (which reads what orjson refuses: here 1e400) runs into the recursion
    limit a few frames before msgspec does: a line nested just that deep is malformed to the
    general path and must not be read by the fast one. Every depth up to the limit, as the
    stack here is however deep pytest makes it."""
    old = sys.getrecursionlimit()
    top = limit or old
    try:
        sys.setrecursionlimit(top)
        for depth in range(max(0, top - 400), top + 5):
            agrees(edit(SKIPPED, b'"model": [1e400, ' + b"[" * depth + b"]" * depth + b"]"))
    finally:
        sys.setrecursionlimit(old)


@pytest.mark.parametrize("name", sorted(CASES))
def test_plain_line_with_each_json_test_suite_case(name: str) -> None:
    """Each JSONTestSuite case as a skipped field at every level and as each value read."""
    case = CASES[name]
    places = [b'"id": "batch_req_1"', b'"request_id": "r"', SKIPPED, b'"index": 0']
    places += [b'"role": "assistant"', b'"total_tokens": 11']
    keys = [b'"custom_id": ', b'"status_code": ', b'"object": ', b'"finish_reason": ']
    keys += [b'"content": ', b'"refusal": ', b'"prompt_tokens": ', b'"error": ', b'"usage": ']
    for old in places:
        agrees(edit(old, old + b', "x": ' + case))
        agrees(edit(old, b'"x": ' + case + b", " + old))
    for key in keys:  # the value read replaced by the case
        start = COMMON.index(key) + len(key)
        _, length = json.JSONDecoder().raw_decode(COMMON[start:].decode())
        agrees(COMMON[:start] + case + COMMON[start + length :] + b"\n")


def test_the_json_test_suite_is_vendored_with_its_licence() -> None:
    source = SUITE["source"]
    assert source["repository"] == "nst/JSONTestSuite" and len(source["commit"]) == 40
    licence = (Path(__file__).parent / "data" / "LICENSE-JSONTestSuite").read_text()
    assert "MIT License" in licence and "Nicolas Seriot" in licence
    assert {"i_number_huge_exp.json", "i_string_invalid_utf-8.json"} <= set(CASES)


def test_a_real_output_file_takes_the_typed_fast_path() -> None:
    """Every line of a real Batch output file (../shared) is read by plain_line (else the
    tests above would compare the general path with itself)."""
    real = need_seed() / "batch-responses.openai.jsonl"
    for raw in real.read_bytes().splitlines(keepends=True):
        assert agrees(raw)
