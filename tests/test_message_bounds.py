"""Error messages quote user data and a server's words bounded (errors.quoted): a cell, a
column name, a custom_id or a server's reply of 200 KB is shown as a readable head, an ellipsis
and its full length, escaped so that its newlines and control characters cannot break the
one-line error. Driven through the CLI wherever a user can reach it."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_clean_error, run_cli, write
from openai_batch.errors import QUOTE_WIDTH, quoted, quoted_list

# 200,011 characters with a newline and a terminal escape in the middle: what a 200 KB cell looks
# like to a message that quotes it whole (it fills the terminal, and clears it)
HUGE = "x" * 100_000 + "\n\x1b[2J\r" + "y" * 100_005
HUGE_LENGTH = f"({len(HUGE):,} characters)"
# a table's cell: the same without the "\r" (a cell over 128 KB holding one is refused before any
# message quotes it: Python's csv module reads such files, and its field limit is 131,072)
CELL = HUGE.replace("\r", "")
CELL_LENGTH = f"({len(CELL):,} characters)"
BOUND = 600  # an error line quoting one or two values stays far below this


def error_line(err: str) -> str:
    """The one `error: ...` line, checked to be bounded and free of what the value held."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[:2000]
    line = lines[0]
    assert len(line) < BOUND, line[:2000]
    assert "\x1b" not in err and "\r" not in err
    assert len(err) < 3 * BOUND, err[:3000]  # the hint is bounded too
    return line


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


# --- the reported case: a cell where a number goes -----------------------------------------


def test_a_huge_cell_where_a_number_goes_is_quoted_bounded(tmp_path, capsys):
    template = write(
        tmp_path / "t.json",
        '{"model": "gpt-4o-mini", "temperature": <<m>>, '
        '"messages": [{"role": "user", "content": "<<q>>"}]}',
    )
    data = write_csv(tmp_path / "d.csv", [["m", "q"], ["0.5", "hi"], [CELL, "there"]])
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert_clean_error(code, err, "row 2", "column 'm'", "not a number", CELL_LENGTH)
    line = error_line(err)
    assert "'xxxxxxxx" in line and "…'" in line
    assert not out.exists()


# --- other places a table's data is quoted --------------------------------------------------


def test_a_huge_duplicate_id_is_quoted_bounded(tmp_path, capsys):
    template = write(
        tmp_path / "t.json", '{"model": "m", "messages": [{"role": "user", "content": "<<q>>"}]}'
    )
    data = write_csv(tmp_path / "d.csv", [["key", "q"], [CELL, "a"], [CELL, "b"]])
    out = tmp_path / "out.jsonl"
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "-o", out, "--id-column", "key"
    )
    assert_clean_error(code, err, "same id", "column 'key'", CELL_LENGTH)
    error_line(err)


def test_huge_and_many_column_names_in_a_hint_are_bounded(tmp_path, capsys):
    """An unknown column's hint lists the data's columns: 5,000 of them, one of 100 KB (a header
    is read with Python's csv module, whose field limit is 131,072)."""
    template = write(
        tmp_path / "t.json", '{"model": "m", "messages": [{"role": "user", "content": "<<Nope>>"}]}'
    )
    name = "x" * 100_000 + "\x1b[2J"
    header = [name] + [f"c{i}" for i in range(5_000)]
    data = write_csv(tmp_path / "d.csv", [header, ["1"] * len(header)])
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "'Nope'", "(100,004 characters)", "and 4,981 more")
    error_line(err)


def test_a_huge_ragged_row_is_quoted_bounded(tmp_path, capsys):
    template = write(
        tmp_path / "t.json", '{"model": "m", "messages": [{"role": "user", "content": "<<a>>"}]}'
    )
    data = write(tmp_path / "d.csv", "a,b\n1,2\n" + CELL.replace("\n", " ") + ",2,3\n")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(
        code, err, "row 2", "3 fields where the header has 2", f"({len(CELL) + 4:,} characters)"
    )
    error_line(err)


# --- request files: validate's line problems and chat-complete's checks ---------------------


def request_line(custom_id: str, **fields: object) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps({**line, **fields})


def test_validate_quotes_a_request_lines_values_bounded(tmp_path, capsys):
    path = write(
        tmp_path / "r.jsonl",
        request_line(HUGE)
        + "\n"
        + request_line(HUGE, method=HUGE, url=HUGE)
        + "\n"
        + request_line("c", body={"model": HUGE, "messages": [], "temperature": 7})
        + "\n",
    )
    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code != 0
    problems = [line for line in out.splitlines() if ": line " in line]
    assert len(problems) >= 5, out[:3000]
    for problem in problems:
        assert len(problem) < BOUND, problem[:2000]
    assert "\x1b" not in out and "\r" not in out
    text = "\n".join(problems)
    for needle in ("line 2: method", "line 2: url", "duplicate custom_id", "model"):
        assert needle in text
    assert text.count(HUGE_LENGTH) >= 4


@pytest.mark.parametrize("field", ["method", "url"])
def test_chat_complete_quotes_a_request_lines_value_bounded(tmp_path, capsys, field):
    path = write(tmp_path / "r.jsonl", request_line("a", **{field: HUGE}) + "\n")
    code, _, err = run_cli(capsys, "utils", "chat-complete", path, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, f"{path.name}:1", HUGE_LENGTH)
    error_line(err)


# --- a server's words --------------------------------------------------------------------------


def test_a_servers_huge_error_message_is_quoted_bounded(fake_api, tmp_path, capsys):
    path = write(tmp_path / "r.jsonl", request_line("a") + "\n")
    said = "the server says " + HUGE
    body = {"error": {"message": said, "type": "invalid_request_error", "code": None}}
    fake_api.inject("POST", r"/v1/files$", 400, body=body)
    code, _, err = run_cli(capsys, "upload-batch-file", path)
    assert_clean_error(code, err, "(400)", "'the server says xxx", f"({len(said):,} characters)")
    error_line(err)


# --- the helper itself -------------------------------------------------------------------------


def test_short_values_are_their_repr_and_long_ones_say_their_length():
    assert quoted("Age") == "'Age'"
    assert quoted("it's") == '"it\'s"'
    assert quoted(7.0) == "7.0"
    assert quoted("x" * 200_000) == "'" + "x" * QUOTE_WIDTH + "…' (200,000 characters)"
    assert quoted("\x00" * 100).startswith("'\\x00\\x00")
    assert quoted_list(["a", "b"]) == "'a', 'b'"
    assert quoted_list([str(i) for i in range(25)], most=3) == "'0', '1', '2' and 22 more"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400) | st.text(alphabet="\n\r\x1b'\"\\\udcff\U0001f600", max_size=400))
def test_any_text_is_one_bounded_line_and_short_text_is_kept_whole(text):
    shown = quoted(text)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown
    assert len(shown) <= QUOTE_WIDTH + 2 + len(" (…) 400 characters")
    if len(repr(text)) <= QUOTE_WIDTH + 2:
        assert shown == repr(text)
    else:
        assert shown.endswith(f"({len(text):,} characters)")
        head = shown[: shown.rindex("…")] + shown[shown.rindex("…") + 1 : shown.rindex(" (")]
        assert text.startswith(ast.literal_eval(head))  # the value's own start, escaped
