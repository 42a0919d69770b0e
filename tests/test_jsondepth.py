"""A deeply nested line is refused before the json module recurses near the interpreter's limit:
there, a finalizer run by the garbage collector fails with a RecursionError no one can catch
(pytest reports it as a failure of whichever test is running: test_batchjob's unreadable-lines
test failed so in about one full run in five)."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_cli
from openai_batch import jsondepth
from openai_batch.jsondepth import MAX_DEPTH, too_deep, too_deep_at
from openai_batch.requestfile import read
from openai_batch.results import answers


def _down(n: int) -> int:
    return 0 if n == 0 else _down(n - 1) + 1


class _Cycle:
    """Garbage only the collector frees; its finalizer needs a few frames of stack."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _down(50)


@pytest.fixture
def unraisable(monkeypatch):
    caught: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: caught.append(u.exc_type))
    return caught


def test_a_deep_line_runs_no_finalizer_near_the_recursion_limit(unraisable):
    """The collector is made to run deep inside the parse (its threshold just under the depths
    the json module reaches): without the depth check its finalizers fail unraisably."""
    old = gc.get_threshold()
    try:
        for threshold in range(800, 1000, 10):
            gc.collect()
            gc.set_threshold(threshold)
            for _ in range(5):
                _Cycle()
            with pytest.raises(answers.MalformedResult, match="nested too deeply"):
                answers.parse_line(b"[" * 100_000 + b"]" * 100_000)
            assert answers.json_object("{" + '"a":{' * 5000 + "}" * 5001) is None
            deep_request = b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            assert read.parse_line_general(deep_request, 2).problem == "nested too deeply to read"
    finally:
        gc.set_threshold(*old)
        gc.collect()
    assert unraisable == []


def test_a_line_orjson_refuses_for_another_reason_is_still_read():
    """NaN sends a line to the json module, which reads it (shallow) as before."""
    value = answers.parse_line(b'{"custom_id": "a", "x": NaN, "y": ' + b"[" * 40 + b"]" * 40 + b"}")
    assert value["custom_id"] == "a"


def test_the_depth_counts_nesting_not_brackets():
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep("{" + '"k":[' * MAX_DEPTH + "]" * MAX_DEPTH + "}")
    flat = "[" + ",".join(["[]"] * (3 * MAX_DEPTH)) + "]"  # many brackets, depth 2
    assert not too_deep(flat)
    in_strings = '["' + "[" * (3 * MAX_DEPTH) + '", "\\"' + "{" * (3 * MAX_DEPTH) + '"]'
    assert not too_deep(in_strings)
    assert too_deep(b"[" * (MAX_DEPTH + 1))
    assert not too_deep(in_strings.encode())


def test_the_limit_is_well_inside_the_interpreters():
    assert sys.getrecursionlimit() > jsondepth.MAX_DEPTH * 1.5


def test_an_unfinished_string_is_read_once_not_again_from_every_quote():
    """A line cut short inside a string (an interrupted copy; an answer cut at max_tokens)
    made the string pattern fail at the open quote and start again from every later escaped
    quote: 5.6 s for a 50 KB line, minutes for a megabyte. SIGALRM turns a hang into a failure
    (a bound a hundred times the time it takes, not a measurement)."""
    import signal

    def hang(*_):
        raise TimeoutError("too_deep scans an unfinished string again from every quote")

    text = "[" * 600 + '"' + '\\"' * 200_000
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        assert too_deep(text)
        assert not too_deep("[" * 300 + '"' + "[" * 600 + '\\"' * 200_000)
        assert too_deep(text.encode())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_too_deep_at_is_where_the_first_level_past_the_limit_opens() -> None:
    assert too_deep_at("[" * MAX_DEPTH + "]" * MAX_DEPTH) is None
    assert too_deep_at("[" * (MAX_DEPTH + 1)) == MAX_DEPTH
    text = ' {"a": "[[{", "b": ' + '{"k": [' * 300  # brackets in strings do not count
    assert too_deep_at(text) == text.index("[", text.index('{"k"') + 7 * 255)
    assert too_deep_at('"\\"[' + "[" * MAX_DEPTH) is None  # an escaped quote ends no string
    for sample in ("[]" * 2000, "[" * 600, '{"x": ' * 513, '"' + "[" * 900):
        assert (too_deep_at(sample) is not None) == too_deep(sample)


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}


def _template(path: Path, deep: str, lines_before: int = 0) -> Path:
    """A template whose "tools" parameters hold `deep` (raw JSON), on its own line."""
    head = json.dumps(CHAT)[:-1] + "," + "\n" * lines_before
    tool = '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
    path.write_text(head + "\n" + tool + '{"type": "object", "x": ' + deep + "}}}]}", "utf-8")
    return path


@pytest.mark.parametrize("levels", [MAX_DEPTH - 4, 100_000], ids=["513 in all", "100,000"])
def test_make_batch_file_names_the_place_a_template_nests_too_deeply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, levels: int
) -> None:
    """body, tools, a tool, function, parameters and `levels` lists: past MAX_DEPTH. It was the
    CLI's generic "the input is nested too deeply" (a RecursionError), naming nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("q\nhi\n", encoding="utf-8")
    _template(tmp_path / "t.json", "[" * levels + "]" * levels, lines_before=2)
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv")
    column = len('"tools": [{"type": "function", "function": {"name": "f", "parameters": ')
    column += len('{"type": "object", "x": ') + (MAX_DEPTH - 5) + 1
    assert_clean_error(code, err, f"t.json is nested too deeply at line 4, column {column}: ")
    assert f"more than {MAX_DEPTH} lists or objects" in err
    assert not (tmp_path / "batch-requests.jsonl").exists()


def test_a_template_as_deep_as_the_limit_makes_its_requests(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_DEPTH levels are read, compiled and rendered (the compiler walked a list in two
    frames a level: about 480 lists deep ran out of stack)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("q\nhi\nho\n", encoding="utf-8")
    levels = MAX_DEPTH - 5
    _template(tmp_path / "t.json", "[" * levels + "]" * levels)
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl")
    assert code == 0 and "Traceback" not in err, err
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and "[" * levels + "]" * levels in lines[1]
    code, out, err = run_cli(capsys, "utils", "validate", "r.jsonl")
    assert code == 0, out + err


def test_a_request_file_nested_thousands_deep_on_its_first_line_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What kind of file it is was read with the json module unguarded: the first line's
    RecursionError became the CLI's generic "the input is nested too deeply", naming no line."""
    monkeypatch.chdir(tmp_path)
    request = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "r.jsonl").write_text(json.dumps(request)[:-1] + f', "x": {deep}}}\n', "utf-8")
    code, out, err = run_cli(capsys, "utils", "validate", "r.jsonl")
    assert code == 1 and "Traceback" not in err
    assert "line 1: nested too deeply to read" in out


def test_a_jsonl_data_table_nested_thousands_deep_names_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(json.dumps(CHAT), encoding="utf-8")
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "d.jsonl").write_text(f'{{"q": "a"}}\n{{"q": {deep}}}\n', encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.jsonl")
    assert_clean_error(code, err, "d.jsonl, line 2: nested too deeply to read")
    assert not (tmp_path / "batch-requests.jsonl").exists()
