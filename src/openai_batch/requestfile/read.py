"""Reading request files: one reader, one set of rules for what a line of a request file is.

Every command that reads request lines (validate, estimate, upload's scan, retry-failed,
chat-complete, make-batch-file's review) reads them here, so a line means the same thing
everywhere: an empty line is a warning, a byte-order mark, text that is not UTF-8, a line that
is not JSON (or was cut short by an interrupted copy), a lone UTF-16 surrogate and an integer
too long to read are errors.
What a reader does with a problem (report it, skip the line, stop) is its own choice; what the
problem *is* is decided once, here. Lines are split on "\\n" as the Batch API splits them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msgspec import DecodeError
from msgspec.json import Decoder

from openai_batch.jsondepth import too_deep
from openai_batch.requestfile.kinds import json_problem
from openai_batch.table import surrogates

EMPTY = "empty line"
BOM = "the file starts with a byte-order mark (BOM)"
SURROGATE = "holds a lone UTF-16 surrogate (\\udXXX), which the API cannot read as text"
# no API field takes an integer this long; the json module refuses it (int()'s digit limit)
LONG_INTEGER = f"holds an integer of over {sys.get_int_max_str_digits():,} digits, too long to read"
_NO_VALUE = object()
_BOM = b"\xef\xbb\xbf"
_decode = Decoder().decode  # msgspec, a dependency (pyproject.toml)
# what msgspec raises for a line it does not read (UnicodeDecodeError: not UTF-8)
_REFUSED = (DecodeError, UnicodeDecodeError, RecursionError)


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
    """One line (with or without its newline) as a RequestLine.

    msgspec reads a clean line (UTF-8, JSON, no lone surrogate, no NaN, no number past a
    double's range) as the json module does, integers of any size exactly, and a little faster
    than orjson (which reads an integer past 64 bits as a float: a max_tokens of 2**64 + 1 was
    "not a valid integer" rather than over the model's limit). Whatever it refuses is read by
    parse_line_general, so each problem is worded as the json module finds it."""
    if number != 1 or not raw.startswith(_BOM):
        try:
            return RequestLine(number, raw, _decode(raw))
        except _REFUSED:
            pass
    return parse_line_general(raw, number)


def parse_line_general(raw: bytes, number: int = 0) -> RequestLine:
    """parse_line by the json module alone: what every line means, and why one has no value
    (tests/test_request_lines.py checks that parse_line's fast reading agrees with it)."""
    bom = number == 1 and raw.startswith(_BOM)
    body = raw[3:] if bom else raw
    if not body.strip():
        return RequestLine(number, raw, problem=EMPTY, bom=bom)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start + 1})"
        return RequestLine(number, raw, problem=problem, bom=bom)
    if too_deep(text):  # never near the recursion limit (jsondepth.py says why)
        return RequestLine(number, raw, problem="nested too deeply to read", bom=bom)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return RequestLine(number, raw, problem=json_problem(text, exc), bom=bom)
    except RecursionError:
        return RequestLine(number, raw, problem="nested too deeply to read", bom=bom)
    except ValueError:  # the one other: an integer longer than int() reads (sys.int_info)
        return RequestLine(number, raw, problem=LONG_INTEGER, bom=bom)
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
