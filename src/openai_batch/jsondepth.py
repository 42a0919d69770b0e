"""How deep a JSON text nests, found without recursing: the json module reads nesting by C
recursion, and near the interpreter's limit any finalizer the garbage collector runs meanwhile
fails with a RecursionError nobody can catch (printed, or a failed test under pytest). So a
text is handed to the json module only when its nesting is well inside that limit."""

from __future__ import annotations

import re

MAX_DEPTH = 512  # arrays and objects inside each other that the json module is given
# why a text past MAX_DEPTH has no value, as an error or a line's reason says it
TOO_DEEP = f"nested too deeply to read (more than {MAX_DEPTH} lists or objects inside each other)"
# a string, or one never closed up to the end (the json module refuses that text anyway):
# always a match from a quote, so no quote is scanned twice (linear on any text)
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_BRACKETS = re.compile(_STRINGS.pattern + r"|[\[\]{}]", re.DOTALL)  # a string, or a bracket


def too_deep(text: str | bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether `text` opens more than `limit` arrays or objects inside each other (brackets
    inside strings do not count). Counting the brackets first keeps the common text cheap.
    A smaller `limit`: for a value that will be written inside others."""
    if isinstance(text, bytes):
        if text.count(b"[") + text.count(b"{") <= limit:
            return False
        text = text.decode("utf-8", "replace")
    elif text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for char in _STRINGS.sub("", text):
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def too_deep_at(text: str) -> int | None:
    """Where in `text` the first array or object past MAX_DEPTH opens (its index), or None:
    for an error that names the place (`too_deep` is the cheap question; ask this after)."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif char in ("]", "}"):
            depth -= 1
    return None
