"""Checks shared by the options of several commands (cyclopts validators)."""

from __future__ import annotations

import math
from typing import Any

from cyclopts import Parameter

MAX_POLL_SECONDS = 3600.0


def _check_poll_interval(type_: Any, value: float | None) -> None:
    del type_
    if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_POLL_SECONDS):
        raise ValueError(f"It must be a number of seconds from 0 to {MAX_POLL_SECONDS:.0f}.")


POLL_INTERVAL = Parameter(validator=_check_poll_interval)
