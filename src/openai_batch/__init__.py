"""openai-batch: prompt template + table of data -> OpenAI Batch API jobs -> answers joined back."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it from here)

__all__ = ["ApiError", "BatchError", "BatchJob", "__version__"]

from openai_batch.errors import ApiError, BatchError

if TYPE_CHECKING:
    from openai_batch.batchjob import BatchJob


def __getattr__(name: str) -> object:
    # Heavy objects load on first use so that `openai-batch --help` stays fast.
    if name == "BatchJob":
        from openai_batch.batchjob import BatchJob

        return BatchJob
    raise AttributeError(f"module 'openai_batch' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API only: not the submodules or the names this file imports for itself."""
    return sorted(__all__)
