"""requestfile/read.parse_line (msgspec: the pre-upload check's hot path) reads every line as
parse_line_general (the json module alone) does: the same value, or the same problem.

orjson, the reader before, read an integer past 64 bits as a float, so `utils validate` and
start-batch's check said "should be a valid integer" of a max_tokens the json module reads as
what it is (over the model's limit). Lines here carry what the API may be sent by hand:
JSONTestSuite's cases (vendored in tests/data with their licence), numbers past 64 bits and
past a double's range, lone surrogates, invalid UTF-8, repeated and escaped keys, a BOM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_cli
from openai_batch.requestfile import read
from test_plain_line import CASES, edited_lines

REQUEST = {
    "custom_id": "id_0",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
}
PAST_64_BITS = [2**64 + 1, 2**64, -(2**63) - 1, 10**400, int("9" * 4300), -int("9" * 4300)]


def same(raw: bytes, number: int = 2) -> read.RequestLine:
    """parse_line's reading of `raw`, asserted to be parse_line_general's (repr: an int and
    a float of one value differ, NaN equals itself)."""
    fast, general = read.parse_line(raw, number), read.parse_line_general(raw, number)
    seen = (repr(fast.value), fast.has_value, fast.problem, fast.where, fast.bom)
    assert seen == (repr(general.value), general.has_value, general.problem, general.where,
                    general.bom), raw  # fmt: skip
    return fast


def request_with(fragment: bytes) -> bytes:
    """A request line whose body holds `fragment` (raw JSON text) as max_tokens."""
    line = json.dumps({**REQUEST, "body": {**REQUEST["body"], "max_tokens": 7}}).encode()
    return line.replace(b'"max_tokens": 7', b'"max_tokens": ' + fragment) + b"\n"


@pytest.mark.parametrize("number", PAST_64_BITS, ids=lambda n: f"{len(str(n))} chars")
def test_an_integer_of_any_size_is_read_exactly(number: int) -> None:
    line = same(request_with(str(number).encode()))
    assert line.problem == "" and line.value["body"]["max_tokens"] == number
    assert type(line.value["body"]["max_tokens"]) is int


def test_an_integer_too_long_to_read_is_a_problem_not_a_crash() -> None:
    digits = sys.get_int_max_str_digits() + 1
    for text in (b"1" * digits, b"-" + b"1" * digits, b"[" + b"2" * digits + b", NaN]"):
        line = same(request_with(text))
        assert not line.has_value and line.problem == read.LONG_INTEGER


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_json_test_suite_case_is_read_as_the_json_module_reads_it(name: str) -> None:
    """Each case as a whole line, as a value inside a request, and after a BOM on line 1."""
    case = CASES[name]
    same(case)
    same(case + b"\n")
    same(request_with(case))
    same(b"\xef\xbb\xbf" + request_with(case), number=1)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edited_lines(), st.sampled_from([0, 1, 2]))
def test_every_edited_line_is_read_as_the_json_module_reads_it(raw: bytes, number: int) -> None:
    """Lines with repeated and escaped keys, odd JSON at random places (test_plain_line's)."""
    same(raw, number)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, st.booleans())
def test_every_generated_value_is_read_as_the_json_module_reads_it(
    value: Any, ascii_only: bool
) -> None:
    """Written by the json module (NaN, lone surrogates, big integers and floats included)."""
    text = json.dumps(
        {**REQUEST, "body": {**REQUEST["body"], "metadata": value}}, ensure_ascii=ascii_only
    )
    raw = text.encode("utf-8", "surrogatepass") + b"\n"  # a lone surrogate: not UTF-8
    line = same(raw)
    if line.problem == "" and ascii_only:
        assert repr(line.value["body"]["metadata"]) == repr(value)


def write_request(path: Path, max_tokens: bytes) -> Path:
    path.write_bytes(request_with(max_tokens))
    return path


def test_validate_says_an_integer_past_64_bits_is_over_the_models_limit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_request(tmp_path / "big.jsonl", b"18446744073709551617")
    code, out, err = run_cli(capsys, "utils", "validate", path)
    assert code == 1 and "Traceback" not in err
    assert "valid integer" not in out
    assert "body.max_tokens: gpt-4o-mini writes at most 16,384 output tokens, got " in out
    assert "got 18,446,744,073,709,551,617" in out


def test_validate_names_an_integer_too_long_to_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_request(tmp_path / "long.jsonl", b"1" * 5000)
    code, out, err = run_cli(capsys, "utils", "validate", path)
    assert code == 1 and "Traceback" not in err, err
    assert f"line 1: {read.LONG_INTEGER}" in out


def test_estimate_skips_a_line_holding_an_integer_too_long_to_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As it skips any line that is not a request (it was a traceback)."""
    path = write_request(tmp_path / "long.jsonl", b"-" + b"7" * 5000)
    path.write_bytes(path.read_bytes() + request_with(b"5"))
    code, out, err = run_cli(capsys, "utils", "estimate", path)
    assert code == 0 and "Traceback" not in err, err
    assert f"line 1 was skipped: {read.LONG_INTEGER}" in err and "1 request" in out


def test_make_batch_file_names_a_later_row_holding_an_integer_too_long_to_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 1 is checked before the rest render; a later row is found by the review, which said
    "a request line must be a JSON object, not a string" of it: `utils validate`'s words now."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text(f"n\n5\n{'7' * 5000}\n6\n", encoding="utf-8")
    body = {**REQUEST["body"], "max_tokens": 0}
    (tmp_path / "t.json").write_text(json.dumps(body).replace("0", "<<n>>"), encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl")
    assert code == 0 and "Traceback" not in err, err
    assert f"error in line 2: r.jsonl: {read.LONG_INTEGER}" in err
    assert "JSON object" not in err
    code, out, _err = run_cli(capsys, "utils", "validate", "r.jsonl")
    assert code == 1 and f"line 2: {read.LONG_INTEGER}" in out


def test_the_review_and_validate_say_the_same_of_every_line_with_no_value(tmp_path: Path) -> None:
    """One rule (validate.check.line_problems) for what a line without a value is."""
    from openai_batch.jsondepth import MAX_DEPTH
    from openai_batch.requestfile.review import review_files
    from openai_batch.validate.check import validate_file

    good = request_with(b"5")
    lines = [
        b"\xef\xbb\xbf" + good,  # a BOM on line 1
        good.replace(b'"id_0"', b'"id_1"'),
        request_with(b"1" * 5000).replace(b'"id_0"', b'"id_2"'),
        b"\xff" + good,  # not UTF-8
        good[:40] + b"\n",  # cut short
        b"[" * (MAX_DEPTH + 10) + b"\n",
        request_with(b'"\\ud800"').replace(b'"id_0"', b'"id_3"'),  # a lone surrogate
        b"\n",  # empty
        b'"text"\n',
    ]
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(lines))
    review = review_files([(path, len(lines))])
    said = {(p.line, p.severity, p.message) for p in review.problems}
    validated = {(p.line, p.severity, p.message) for p in validate_file(path).problems}
    assert said == {problem for problem in validated if problem[0] > 0}
    messages = {message for _line, _severity, message in said}
    assert {read.BOM, read.LONG_INTEGER, "nested too deeply to read", read.EMPTY} <= messages
    assert len(said) >= 8  # one or more for each line but the second
