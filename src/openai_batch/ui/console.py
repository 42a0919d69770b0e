"""What the tool says to a person (stderr) and to a program (stdout, `--json`).

`-q` (`set_quiet`) leaves only errors and, on stdout, the result lines (`say`): notes, warnings,
details (`info`) and progress bars are left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Set by a command's `-q`; the CLI clears it after every command."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether -q is on (progress bars read it: ui/progress)."""
    return _quiet


def say(message: str = "") -> None:
    """A result line for a person, on stdout (printed even with -q)."""
    print(message, flush=True)


def info(message: str = "") -> None:
    """A detail on stdout that -q leaves out (a batch's timeline, an estimate)."""
    if not _quiet:
        print(message, flush=True)


def note(message: str) -> None:
    """Progress, warnings and notes: stderr, so stdout stays clean for `--json` and pipes."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    note(f"warning: {message}")


def print_json(obj: Any) -> None:
    """One JSON document on stdout, for machines."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str), flush=True)


def human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def shown(path: str | Path) -> str:
    """A path as the user would type it: relative when under the working folder."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):  # elsewhere, or the working folder is gone
        return str(path)


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 request`, `2 requests`; `many` for the irregular (`plural(n, "batch", "batches")`)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"
