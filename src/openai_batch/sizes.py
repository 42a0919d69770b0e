"""Byte sizes as people write them: `200MB` (decimal, as the API counts) or `150MiB`."""

from __future__ import annotations

import re

from openai_batch.errors import BatchError

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str | int) -> int:
    """Bytes for `text`; a plain number is bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise BatchError(
            f"cannot read {text!r} as a size.",
            hint="write a number of bytes, or e.g. 200MB, 150MiB, 1.5GB.",
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise BatchError(f"size {text!r} must be at least one byte.")
    return size
