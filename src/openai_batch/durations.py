"""Durations as people write them: `36h`, `7d`, `90m` or plain seconds (upload expiry)."""

from __future__ import annotations

import re

from openai_batch.errors import BatchError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"\s*(\d+)\s*([smhd]?)\s*", re.IGNORECASE)
UPLOAD_EXPIRY_MIN = 3600  # the Files API's bounds for expires_after.seconds
UPLOAD_EXPIRY_MAX = 30 * 86_400


def parse_duration(text: str) -> int:
    """Seconds for `text`; a plain number is seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise BatchError(
            f"cannot read {text!r} as a duration",
            hint="write it like 36h, 7d, 90m or a number of seconds",
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def upload_expiry(text: str) -> int:
    """--expires-after for an upload: within the Files API's 1 hour to 30 days."""
    seconds = parse_duration(text)
    if not UPLOAD_EXPIRY_MIN <= seconds <= UPLOAD_EXPIRY_MAX:
        raise BatchError(
            f"--expires-after {text} is outside the Files API's 1 hour to 30 days",
            hint="e.g. --expires-after 7d",
        )
    return seconds
