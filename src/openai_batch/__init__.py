"""openai-batch: prompt template + table of data -> OpenAI Batch API jobs -> answers joined back."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it from here)

__all__ = ["BatchError", "__version__"]

from .errors import BatchError


def __getattr__(name: str) -> Any:
    # Heavy objects load on first use so that `openai-batch --help` stays fast.
    if name == "BatchJob":
        from .batchjob import BatchJob

        return BatchJob
    raise AttributeError(f"module 'openai_batch' has no attribute {name!r}")
