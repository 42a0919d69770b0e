"""Lone UTF-16 surrogates: JSON can spell them (`"\\ud800"`), Python strings can hold them, but
UTF-8 cannot write them, so no request can carry one. Every reader of JSON text the tool sends
on (templates, JSON Lines data, request files) refuses them where they are read, naming where.
"""

from __future__ import annotations

import re
from typing import Any

LONE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how one is written in JSON text

HINT = (
    "a lone surrogate is half of a character (e.g. text cut inside an emoji); remove it, or "
    "write the whole character (a pair such as \\ud83d\\ude00)"
)


def may_hold(json_text: str) -> bool:
    """Cheap test on JSON text before parsing: only a `\\uD8xx`-`\\uDFxx` escape makes one."""
    return "\\" in json_text and _ESCAPE.search(json_text) is not None


def in_text(text: str) -> bool:
    return LONE.search(text) is not None


def find(value: Any, path: str = "") -> str | None:
    """The path (`body.messages[0].content`, or a key's path) of the first string in `value`
    holding a lone surrogate, else None."""
    if isinstance(value, str):
        return path if in_text(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and in_text(key):
                return f"{path}.{key!a}" if path else ascii(key)
            if (found := find(item, inner)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := find(item, f"{path}[{index}]")) is not None:
                return found
    return None
