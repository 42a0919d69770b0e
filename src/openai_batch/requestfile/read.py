"""Reading request files: one reader, one set of rules for what a line of a request file is.

Every command that reads request lines (validate, estimate, upload's scan, retry-failed,
chat-complete, make-batch-file's review) reads them here, so a line means the same thing
everywhere: an empty line is a warning, a byte-order mark, text that is not UTF-8, a line that
is not JSON (or was cut short by an interrupted copy) and a lone UTF-16 surrogate are errors.
What a reader does with a problem (report it, skip the line, stop) is its own choice; what the
problem *is* is decided once, here. Lines are split on "\\n" as the Batch API splits them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson as _orjson  # a dependency (pyproject.toml): reads a clean line ~3x faster

from openai_batch.requestfile.kinds import json_problem
from openai_batch.table import surrogates

EMPTY = "empty line"
BOM = "the file starts with a byte-order mark (BOM)"
SURROGATE = "holds a lone UTF-16 surrogate (\\udXXX), which the API cannot read as text"
_NO_VALUE = object()


@dataclass(frozen=True, slots=True)
class RequestLine:
    """One line of a request file: its JSON value, or the problem that stops it having one.

    A first line that starts with a byte-order mark is read after the mark (`bom`: the mark
    itself is an error the API refuses)."""

    number: int  # 1-based; 0 for a line read on its own (a sample)
    raw: bytes
    parsed: Any = _NO_VALUE
    problem: str = ""  # "" for a clean line
    where: str = ""  # the place inside the value the problem is at (a surrogate's path)
    bom: bool = False

    @property
    def has_value(self) -> bool:
        """Whether the line holds a JSON value (which may be any JSON, `null` included)."""
        return self.parsed is not _NO_VALUE

    @property
    def value(self) -> Any:
        """The line's JSON value (None when it has none: see `has_value`)."""
        return None if self.parsed is _NO_VALUE else self.parsed

    @property
    def request(self) -> dict[str, Any] | None:
        """The value when it is a JSON object (what a request line must be), else None."""
        return self.parsed if isinstance(self.parsed, dict) else None

    @property
    def empty(self) -> bool:
        return self.problem == EMPTY

    @property
    def is_warning(self) -> bool:
        """Its problem is only a warning (an empty line: the API skips it)."""
        return self.problem == EMPTY

    def custom_id(self) -> str | None:
        """The line's custom_id when it is a request with a string one."""
        request = self.request
        value = request.get("custom_id") if request is not None else None
        return value if isinstance(value, str) else None


def parse_line(raw: bytes, number: int = 0) -> RequestLine:
    """One line (with or without its newline) as a RequestLine."""
    bom = number == 1 and raw.startswith(b"\xef\xbb\xbf")
    body = raw[3:] if bom else raw
    if not body.strip():
        return RequestLine(number, raw, problem=EMPTY, bom=bom)
    if not bom:
        # orjson reads only clean lines (UTF-8, JSON, no lone surrogate, no NaN, no integer
        # over 64 bits), ~3x faster; anything it refuses is read below, so each problem is
        # worded as the json module finds it, and the values are the same either way
        try:
            return RequestLine(number, raw, _orjson.loads(body))
        except _orjson.JSONDecodeError:
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start + 1})"
        return RequestLine(number, raw, problem=problem, bom=bom)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return RequestLine(number, raw, problem=json_problem(text, exc), bom=bom)
    except RecursionError:
        return RequestLine(number, raw, problem="nested too deeply to read", bom=bom)
    if surrogates.may_hold(text) and (where := surrogates.find(value)) is not None:
        return RequestLine(number, raw, problem=SURROGATE, where=where, bom=bom)
    return RequestLine(number, raw, value, bom=bom)


def read_lines(path: Path) -> Iterator[RequestLine]:
    """Every line of a request file in order, empty ones included (their bytes count in the
    file's digest and size)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            yield parse_line(raw, number)


def first_line(path: Path) -> RequestLine | None:
    """The first line that is not empty (None: the file has none)."""
    return next((line for line in read_lines(path) if not line.empty), None)


def first_request(path: Path) -> dict[str, Any]:
    """The first non-empty line's request ({} when it is not one, or the file has none)."""
    line = first_line(path)
    return (line.request if line is not None else None) or {}
