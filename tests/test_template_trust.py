"""Issue 10: every template expression renders text or ends in a clean `error: row N` line,
within seconds and bounded memory, wherever it stands; template text is literal; text that
cannot be written as UTF-8 (lone surrogates) is refused where it is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_clean_error, read_jsonl, run_cli, write

Capsys = pytest.CaptureFixture[str]
PEOPLE = "Name,Age\nann,31\nbob,42\n"


def body(content: str, extra: str = "") -> str:
    """A template with `content` as the message text (JSON-escaped) and raw `extra` fields."""
    return (
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": '
        + json.dumps(content, ensure_ascii=False)
        + "}]"
        + extra
        + "}"
    )


def make(tmp_path: Path, capsys: Capsys, template: str, data: str = PEOPLE, *args: str):
    t = write(tmp_path / "t.json", template)
    d = (
        write(tmp_path / "d.csv", data)
        if not data.startswith("{")
        else write(tmp_path / "d.jsonl", data)
    )
    out = tmp_path / "o.jsonl"
    code, stdout, err = run_cli(capsys, "make-batch-file", t, d, "-o", out, "-q", *args)
    return code, stdout, err, out


# -- expression errors are clean wherever the placeholder stands ------------------------------

ERRORS = {
    "<<row.nokey>>": "has no attribute 'nokey'",
    "<<Age.__class__>>": "refused by the template sandbox",
    "<<self>>": "TemplateReference",
    "<<cycler>>": "not text",
    "<<namespace>>": "not text",
    "<<range(3)>>": "range",
    "<<row.keys()>>": "dict_keys",
    "<<[Name.__class__]>>": "undefined value",
    "<<[row.nokey]>>": "undefined value",
}


@pytest.mark.parametrize("expr", list(ERRORS))
@pytest.mark.parametrize("where", ["bare", "string"])
def test_expression_errors_name_the_row(tmp_path: Path, capsys: Capsys, expr: str, where: str):
    """A bare value (`"temperature": <<row.nokey>>`) was a traceback; objects reached the
    prompt as their repr (`<TemplateReference None>`, `[Undefined]`)."""
    template = body("hi", f', "temperature": {expr}') if where == "bare" else body(f"x {expr} y")
    code, _, err, out = make(tmp_path, capsys, template)
    assert_clean_error(code, err, "row 1", expr, ERRORS[expr])
    assert code == 1 and not out.exists()


def test_lipsum_and_friends_are_not_columns(tmp_path: Path, capsys: Capsys) -> None:
    code, _, err, _ = make(tmp_path, capsys, body("<<lipsum>>"))
    assert_clean_error(code, err, "'lipsum' is not a column")


def test_plain_values_and_lists_of_them_still_render(tmp_path: Path, capsys: Capsys) -> None:
    template = body(
        "<<Name | upper>> <<Age | int + 1>> <<[Name, 1]>> <<none>>"
        "<% for c in Name %><<c>>.<% endfor %> <<'-' * 3>> <<{'a': 1}>>",
        ', "seed": <<Age | int * 2>>',
    )
    code, _, err, out = make(tmp_path, capsys, template)
    assert code == 0, err
    first = read_jsonl(out)[0]["body"]
    assert first["messages"][0]["content"] == "ANN 32 ['ann', 1] a.n.n. --- {'a': 1}"
    assert first["seed"] == 62


# -- runaway templates end within seconds ------------------------------------------------------

RUNAWAY = {
    "<<'a' * 10**9>>": "10,000,000 characters",
    "<<10**(10**10)>>": "bits",
    "<<'x' | center(10**9)>>": "10,000,000 characters",
    "<<'{:>999999999}'.format(1)>>": "10,000,000 characters",
    "<<'%0999999999d' % 1>>": "10,000,000 characters",
    "<<'a'.ljust(10**9)>>": "10,000,000 characters",
    "<<('a' * 1000) | replace('a', 'b' * 100000)>>": "10,000,000 characters",
    "<% for i in range(100000) %><% for j in range(100000) %><% endfor %><% endfor %>": "loops",
    "<% set s = 'x' * 1000000 %><<s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s>>": "characters",
    "<% for c in 'x' * 5000000 %><% for d in 'yy' %><% endfor %><% endfor %>": "loops",
    # what one row renders in all: each value under the cap, together far over it
    "<<['a' * 9999999] * 50>>": "20,000,000 characters for one row",
    "<<['a' * 9999999] * 9999999>>": "20,000,000 characters for one row",
    "<<[range(99999) | list] * 9999999>>": "20,000,000 characters for one row",
    "<% for i in range(500) %><<'a' * 9999999>><% endfor %>": "20,000,000 characters",
}


@pytest.mark.parametrize("expr", list(RUNAWAY))
def test_runaway_templates_end_in_a_clean_error(tmp_path: Path, expr: str) -> None:
    """`'a' * 10**9` took 3-4 GB; `10**(10**10)` hung at compile time (Jinja folds constants);
    nested range loops hung. In a child with a memory limit and a timeout, so a regression
    cannot take the test run down with it. The bound on one row's work is CPU seconds, not wall
    time, so a loaded machine cannot fail it: `[range(99999) | list] * 9999999` took ~18 s of
    CPU (a call per number counted) and timed out under load. The memory limit is on address
    space, which glibc's per-thread arenas grow with how threads happen to meet: one arena keeps
    it steady (the real memory stays ~300 MB; its address space came within 100 MB of 2 GB)."""
    template = write(tmp_path / "t.json", body(f"x {expr}"))
    data = write(tmp_path / "d.csv", PEOPLE)
    limit = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "resource.setrlimit(resource.RLIMIT_CPU, (5, 5)); "
        if sys.platform == "linux"
        else ""
    )
    code = limit + "from openai_batch.cli import run; run()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "make-batch-file", str(template), str(data), "-q",
         "-o", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "MALLOC_ARENA_MAX": "1"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert_clean_error(proc.returncode, proc.stderr, "row 1", RUNAWAY[expr])
    assert not (tmp_path / "o.jsonl").exists()


# -- template text is literal ------------------------------------------------------------------


@pytest.mark.parametrize("escaped", [False, True], ids=["written", "json-escaped"])
def test_marker_characters_in_the_template_are_literal_text(
    tmp_path: Path, capsys: Capsys, escaped: bool
) -> None:
    """`"A \\ue0000\\ue001 B"` was substituted as placeholder 0 (or an IndexError)."""
    literal = "A \ue0000\ue001 B \ue0020\ue003 \ue0100\ue011 C"
    template = body(literal + " <<Name>>", ', "user": ' + json.dumps(literal))
    if escaped:
        template = template.encode("ascii", "backslashreplace").decode().replace("\\x", "\\u00")
        assert "\ue000" not in template
    code, _, err, out = make(tmp_path, capsys, template)
    assert code == 0, err
    rows = read_jsonl(out)
    assert rows[0]["body"]["messages"][0]["content"] == literal + " ann"
    assert rows[1]["body"]["user"] == literal


# -- lone surrogates -----------------------------------------------------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["make", "preview"])
def test_a_lone_surrogate_in_json_lines_data_names_line_and_column(
    tmp_path: Path, capsys: Capsys, preview: bool
) -> None:
    data = '{"value": "ok"}\n{"value": "cut \\ud800 here"}\n'
    args = ("--preview", "2") if preview else ()
    code, _, err, out = make(tmp_path, capsys, body("<<value>>"), data, *args)
    assert_clean_error(code, err, "line 2", "'value'", "surrogate")
    assert not out.exists()


@pytest.mark.parametrize("preview", [False, True], ids=["make", "preview"])
@pytest.mark.parametrize("columns_only", [True, False], ids=["fast", "general"])
def test_a_lone_surrogate_in_the_template_is_refused(
    tmp_path: Path, capsys: Capsys, preview: bool, columns_only: bool
) -> None:
    content = "\\ud800 <<Name>>" if columns_only else "\\ud800 <<Name | upper>>"
    template = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "' + content + '"}]}'
    args = ("--preview", "1") if preview else ()
    code, _, err, out = make(tmp_path, capsys, template, PEOPLE, *args)
    assert_clean_error(code, err, "body.messages[0].content", "surrogate")
    assert not out.exists()


def test_an_expression_making_a_lone_surrogate_is_a_row_error(
    tmp_path: Path, capsys: Capsys
) -> None:
    template = (
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": '
        '"<<\\"\\\\ud800\\" ~ Name>>"}]}'
    )
    code, _, err, out = make(tmp_path, capsys, template)
    assert_clean_error(code, err, "row 1", "surrogate")
    assert not out.exists()


def test_validate_refuses_a_request_line_with_a_lone_surrogate(
    tmp_path: Path, capsys: Capsys
) -> None:
    line = (
        '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": '
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "x\\udc00"}]}}\n'
    )
    path = write(tmp_path / "r.jsonl", line)
    code, out, err = run_cli(capsys, "utils", "validate", path)
    assert code == 1 and "Traceback" not in err
    assert "line 1" in out and "surrogate" in out and "messages[0].content" in out
