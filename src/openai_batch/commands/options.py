"""What several commands share of their options: make-batch-file's render options (also
`run`'s), the checks of options (cyclopts validators) and the exit statuses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from cyclopts import Parameter

from openai_batch.errors import BatchError
from openai_batch.estimate.options import EstimateOptions
from openai_batch.requestfile.endpoints import CHAT
from openai_batch.requestfile.options import MakeOptions
from openai_batch.sizes import parse_size
from openai_batch.table.read import TableOptions
from openai_batch.ui.progress import rendering_bar

if TYPE_CHECKING:
    from openai_batch.flow.jobrun import JobOutcome

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


def job_exit_code(outcome: JobOutcome) -> int:
    """The exit status of run, start-batch and get-batch-results --job for how a job ended:
    130 when Ctrl-C stopped the waiting, 4 when the results were written but not all succeeded."""
    if outcome.stopped:
        return EXIT_INTERRUPTED
    if outcome.collected is not None and not outcome.all_ok:
        return EXIT_NOT_ALL_OK
    return 0


@Parameter(name="*")  # flattened: each field is a top-level option of the command using it
@dataclass
class RenderArgs:
    """make-batch-file's options, shared with `run` so the two never drift apart."""

    output: Annotated[Path, Parameter(alias="-o")] = Path("batch-requests.jsonl")
    """Request file to write (<stem>-001.jsonl, -002, ... when over the API's limits)."""
    endpoint: str = CHAT
    """Each request's url: /v1/chat/completions, responses, embeddings, completions, moderations."""
    max_requests: int | None = None
    """At most this many requests per file (default: the service's limit; OpenAI's is 50,000,
    Azure's 100,000)."""
    max_bytes: str | None = None
    """At most this size per file: bytes, or e.g. 200MB, 150MiB (default: the service's limit;
    OpenAI's is 200MB, Groq's 100MB)."""
    service: str | None = None
    """The batch service whose limits apply (openai, azure, groq, deepinfra, ...; default: from
    AZURE_OPENAI_ENDPOINT / OPENAI_BASE_URL, else OpenAI). See docs/services.md."""
    id_column: str | None = None
    """Make custom_ids from this column's values (id_<value>) instead of the row number."""
    id_prefix: str = "id_"
    """Put this before each custom_id's number or value."""
    limit: int | None = None
    """Only the first N rows."""
    sheet: str | None = None
    """Excel sheet to read (default: the first)."""
    delimiter: str | None = None
    """CSV delimiter (default: detected from the header row; "tab" for tabs)."""
    encoding: str | None = None
    """Text encoding of a CSV/JSONL file (default UTF-8, with or without BOM)."""
    keep_spaces: bool = False
    """Keep the space after each delimiter of a CSV written with ", " between all fields (by
    default that space is dropped from headers and cells)."""
    ragged_rows: bool = False
    """Accept CSV rows with fewer fields than the header (empty cells) or more (extra fields
    ignored); by default such a row is an error naming it."""
    image_size: str | None = None
    """For the cost estimate: the size (WxH) of remote images, which are not downloaded."""
    expected_output: int | None = None
    """For the cost estimate: the output tokens you expect per request."""

    def options(self, quiet: bool) -> MakeOptions:
        from openai_batch.service.profiles import select

        limits = select(self.service).limits
        return MakeOptions(
            output=self.output,
            endpoint=self.endpoint,
            max_requests=limits.requests if self.max_requests is None else self.max_requests,
            max_bytes=limits.file_bytes if self.max_bytes is None else parse_size(self.max_bytes),
            limits=limits,
            id_column=self.id_column,
            id_prefix=self.id_prefix,
            table=TableOptions.of(self),
            progress=None if quiet else rendering_bar,
        )

    def estimate_options(self) -> EstimateOptions:
        return EstimateOptions(image_size=self.image_size, expected_output=self.expected_output)
