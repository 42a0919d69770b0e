"""The one exception type for problems a user can cause and fix.

The CLI prints its message (never a traceback) and exits non-zero; library callers catch it.
"""

from __future__ import annotations


class BatchError(Exception):
    """A problem the user can fix: the message names the problem, the hint says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ApiError(BatchError):
    """The service refused or could not be reached (bad key, unknown id, network down)."""

    exit_code = 3
