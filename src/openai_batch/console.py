"""What the tool says to a person (stderr) and to a program (stdout, `--json`)."""

from __future__ import annotations

import json
import sys
from typing import Any


def say(message: str = "") -> None:
    """A result line for a person, on stdout."""
    print(message, flush=True)


def note(message: str) -> None:
    """Progress, warnings and notes: stderr, so stdout stays clean for `--json` and pipes."""
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


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
