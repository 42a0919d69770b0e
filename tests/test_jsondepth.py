"""A deeply nested line is refused before the json module recurses near the interpreter's limit:
there, a finalizer run by the garbage collector fails with a RecursionError no one can catch
(pytest reports it as a failure of whichever test is running: test_batchjob's unreadable-lines
test failed so in about one full run in five)."""

from __future__ import annotations

import gc
import sys

import pytest

from openai_batch import jsondepth
from openai_batch.jsondepth import MAX_DEPTH, too_deep
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
