"""What make-batch-file can be told besides the template and the data, and the check that
refuses options the API would make the user pay for discovering later."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openai_batch.errors import BatchError
from openai_batch.requestfile.endpoints import CHAT, ENDPOINTS
from openai_batch.requestfile.limits import OPENAI, FileLimits, human_decimal
from openai_batch.table.read import TableOptions
from openai_batch.ui.commandline import option


@dataclass
class MakeOptions:
    """Everything make-batch-file can be told besides the template and the data."""

    output: Path = Path("batch-requests.jsonl")
    endpoint: str = CHAT
    max_requests: int = OPENAI.requests
    max_bytes: int = OPENAI.file_bytes
    limits: FileLimits = OPENAI  # the service's (service_profiles); bounds the two above
    id_column: str | None = None
    id_prefix: str = "id_"
    table: TableOptions = field(default_factory=TableOptions)
    # shows rows as they render: called with the row count (None: unknown), it returns what
    # `update(rows)` and `close()` go to (the CLI passes a bar); this library never prints
    progress: Callable[[int | None], Progress] | None = field(
        default=None, repr=False, compare=False
    )
    # `review.ReviewProcess`: checks the first request in a child process (keeps the SDK's
    # imports out of this one while rows render); the same answer as `check_first_line`
    checker: Any = field(default=None, repr=False, compare=False)
    # called once the template and the table have opened: background work starts only then
    inputs_open: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def rows_progress(self, total_rows: int | None) -> Progress:
        """Where the renderers count the rows they render (nowhere without `progress`)."""
        return self.progress(total_rows) if self.progress is not None else _Silent()


class Progress(Protocol):
    """Where rendered rows are counted (a progress bar, in the CLI)."""

    def update(self, rows: int) -> object: ...

    def close(self) -> object: ...


class _Silent:
    def update(self, rows: int) -> None:
        pass

    def close(self) -> None:
        pass


def check_options(opts: MakeOptions) -> None:
    """Reject options the API would make the user pay for discovering later."""
    limits = opts.limits
    if opts.endpoint not in ENDPOINTS:
        raise BatchError(
            f"unknown endpoint {opts.endpoint!r}.",
            hint="the Batch API takes " + ", ".join(ENDPOINTS) + ".",
        )
    refused = limits.endpoint_problem(opts.endpoint)
    if refused:
        raise BatchError(refused + ".", hint="pick another --endpoint, or another --service")
    if not 1 <= opts.max_requests <= limits.requests:
        raise BatchError(
            f"--max-requests must be between 1 and {limits.requests:,} ({limits.service}'s "
            "limit per file)."
        )
    if not 1 <= opts.max_bytes <= limits.file_bytes:
        limit = human_decimal(limits.file_bytes)
        raise BatchError(
            f"--max-bytes must be at most {limit.replace(' ', '')} ({limits.file_bytes:,} "
            f"bytes), {limits.service}'s limit per file."
        )
    if opts.output.suffix != ".jsonl":
        raise BatchError(
            f"output {opts.output} must end in .jsonl: the Batch API accepts only .jsonl files.",
            hint=f"use {option('-o', opts.output.with_suffix('.jsonl'))}",
        )
    if opts.output.is_dir():
        raise BatchError(
            f"output {opts.output} is a folder.", hint="give a file name ending .jsonl"
        )
