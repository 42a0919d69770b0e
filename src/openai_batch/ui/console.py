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
    except ValueError:
        return str(path)


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 request`, `2 requests`; `many` for the irregular (`plural(n, "batch", "batches")`)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"


# Whole counts (`9/9`, `120,000/120,000`) beside rates in readable units (`10.4k req/s`).
_COUNTED = "{l_bar}{bar}| {n:,.0f}/{total:,.0f} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_COUNTING = "{desc}: {n:,.0f}{unit} [{elapsed}, {rate_fmt}{postfix}]"


def progress_bar(*, enabled: bool = True, **options: Any) -> Any:
    """A tqdm bar on stderr, drawn only on a terminal: a log file or a pipe gets no bar lines
    (`Rendering: 0 rows [00:00, ? rows/s]`). Rates in readable units (10.4k req/s, 1.2MB/s)."""
    from tqdm import tqdm

    options.setdefault("unit_scale", True)
    options.setdefault("dynamic_ncols", True)
    if options.get("unit") != "B":  # bytes are scaled like the rate: 94.2kB/1.20MB
        counted = options.get("total") is not None
        options.setdefault("bar_format", _COUNTED if counted else _COUNTING)
    return tqdm(file=sys.stderr, disable=None if enabled and not _quiet else True, **options)
