"""One problem found in a request file: where it is and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass
class Problem:
    """One thing wrong with one line: `path` is like body.messages[1].content[1].image_url."""

    line: int
    path: str
    message: str
    severity: str = ERROR


def format_path(parts: tuple) -> str:
    """("body", "messages", 1, "content") -> body.messages[1].content."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
