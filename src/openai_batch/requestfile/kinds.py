"""What a file given where a request file goes really is, so each mistake gets its own fix.

A newcomer passes the table (`people.csv`) or the template (`config.json`) to upload-batch-file,
start-batch or `utils validate`, or a folder, or a file cut short by an interrupted copy. Every
command that reads request files asks `check_request_path` first, and describes a broken line
with `json_problem`, so they all say the same thing: a table or a template goes to
make-batch-file, a folder is a folder, a last line without its end was cut short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, Command
from openai_batch.jsondepth import too_deep

_TABLE_SUFFIXES = frozenset(
    {".csv", ".tsv", ".tab", ".txt", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq"}
)
_REQUEST_KEYS = frozenset({"custom_id", "method", "url", "body"})
_SNIFF_BYTES = 1 << 20  # a template is small; a request file's first line fits


def check_request_path(path: Path, *, results_allowed: bool = False) -> None:
    """Refuse a missing path, a folder, a table or a template (and a results file, unless
    `results_allowed`), each with the way forward."""
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.jsonl"))[:5]
        listed = (
            "its request files: " + ", ".join(inside) if inside else "give the file, not its folder"
        )
        raise BatchError(f"{path} is a folder, not a request file", hint=listed)
    if not path.exists():
        raise BatchError(f"request file not found: {path}", hint="check the path")
    if not path.is_file():
        raise BatchError(f"{path} is not a regular file")
    kind = _what_it_is(path)
    if kind == "table":
        raise BatchError(
            f"{path} is a data table, not a request file (a .jsonl of requests)",
            hint=(
                "make request files from it first: ",
                Command("make-batch-file", "TEMPLATE.json", path),
            ),
        )
    if kind == "results" and not results_allowed:
        raise BatchError(
            f"{path} is a results file (the answers of a batch), not a request file",
            hint=(
                "give the request file the batch was started from; to redo the failed requests: ",
                Command(
                    "utils",
                    "retry-failed",
                    path,
                    "--requests",
                    "REQUESTS.jsonl",
                    "-o",
                    "retry.jsonl",
                ),
            ),
        )
    if kind == "template":
        raise BatchError(
            f"{path} is a template (one request body), not a request file (a .jsonl of requests)",
            hint=(
                "make request files from it first: ",
                Command("make-batch-file", path, "DATA.csv"),
            ),
        )


def _what_it_is(path: Path) -> str | None:
    """What the file is, when not a request file: "table", "template" or "results"; None for
    what may be one (its checks come later)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            whole = fh.read(1) == b""
    except OSError:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    first = _json_object(text.split("\n", 1)[0])
    if first is not None:
        # One JSON object per line: requests have custom_id/body; a data table has neither;
        # results (an output or error file) have a response instead of a body.
        if "response" in first and "body" not in first:
            return "results"
        return None if _REQUEST_KEYS & first.keys() else _table_or_template(first, text)
    if text.startswith("{") and whole and '"custom_id"' not in text and _template_text(text):
        return "template"
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _TABLE_SUFFIXES:
        return "table"
    if head.startswith((b"PK\x03\x04", b"PAR1")):  # an Excel workbook, a Parquet file
        return "table"
    return None


def _table_or_template(first: dict[str, Any], text: str) -> str:
    """A JSON object on the first line without request keys: a template written on one line
    (the file's only line, with a model) or the first row of a JSON Lines table."""
    only_line = "\n" not in text.strip()
    return "template" if only_line and "model" in first else "table"


def _template_text(text: str) -> bool:
    """A request body spread over lines, with or without placeholders."""
    if "<<" in text or "{{" in text:
        return True
    value = _json_object(text)
    return value is not None and not (_REQUEST_KEYS & value.keys())


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object `text` is, else None (a text nested too deep is not read: the json module
    would recurse near the interpreter's limit; the line's reader, or the template's, names it)."""
    if too_deep(text):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


CUT_SHORT = "cut short: the file ends in the middle of this line (an interrupted copy?)"


def json_problem(line: str, exc: json.JSONDecodeError) -> str:
    """A broken line, in words."""
    return CUT_SHORT if cut_short(line, exc) else f"not valid JSON: {exc.msg} at column {exc.colno}"


def cut_short(line: str, exc: json.JSONDecodeError) -> bool:
    """The last line of a file, without its newline, breaking off where the text ends: cut
    short by an interrupted write or copy, not mistyped."""
    text = line.rstrip()
    ends_early = exc.msg.startswith("Unterminated string") or exc.pos >= len(text)
    return not line.endswith("\n") and bool(text) and ends_early
