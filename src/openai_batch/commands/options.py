"""Checks shared by the options of several commands (cyclopts validators)."""

from __future__ import annotations

import math
from typing import Any

from cyclopts import Parameter

from openai_batch.errors import BatchError

MAX_POLL_SECONDS = 3600.0
EXIT_NOT_ALL_OK = 4  # a batch failed, expired or was cancelled, or some request failed
EXIT_INTERRUPTED = 130  # Ctrl-C stopped the waiting (the batches go on)


def _check_poll_interval(type_: Any, value: float | None) -> None:
    del type_
    if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_POLL_SECONDS):
        raise ValueError(f"It must be a number of seconds from 0 to {MAX_POLL_SECONDS:.0f}.")


POLL_INTERVAL = Parameter(validator=_check_poll_interval)


def check_job_options(max_enqueued_tokens: int | None, parallel: int) -> None:
    """--max-enqueued-tokens and --parallel, as run, start-batch and get-batch-results take them."""
    if max_enqueued_tokens is not None and max_enqueued_tokens < 0:
        raise BatchError("--max-enqueued-tokens cannot be negative (0 removes the quota)")
    if parallel < 1:
        raise BatchError("--parallel must be at least 1")
