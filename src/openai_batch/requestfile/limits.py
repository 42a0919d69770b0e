"""The Batch API's limits on one request file, defined once and used everywhere.

Every command that writes, checks, uploads or retries a request file asks this module, so the
tool can never write a file that another part of it (or the API) then refuses. Sizes are in
decimal bytes because that is how the API counts them: "200 MB" is 200,000,000 bytes, not
200 MiB. A service with other limits gets its own `FileLimits` value; `OPENAI` is the default.
The endpoints themselves are `endpoints.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from openai_batch.requestfile.endpoints import ENDPOINTS, versioned

MAX_REQUESTS = 50_000  # request lines per file
MAX_FILE_BYTES = 200_000_000  # bytes per file (decimal megabytes, as the API counts)
MAX_EMBEDDING_INPUTS = 50_000  # embedding inputs per batch, across all its requests
MAX_EMBEDDING_ARRAY = 2048  # inputs in one embeddings request


@dataclass(frozen=True)
class FileLimits:
    """What one request file may hold on a service (a value, so tests and other services can
    use smaller or different ones without patching constants)."""

    requests: int = MAX_REQUESTS
    file_bytes: int = MAX_FILE_BYTES
    embedding_inputs: int = MAX_EMBEDDING_INPUTS
    service: str = "the Batch API"  # who sets these limits, for messages
    endpoints: tuple[str, ...] = ENDPOINTS  # the batch endpoints this service takes
    unversioned_urls: bool = False  # Azure: request lines may say "/chat/completions"

    def canonical_url(self, url: object) -> object:
        """`/chat/completions` -> `/v1/chat/completions` where the service takes both."""
        return versioned(url) if self.unversioned_urls else url

    def endpoint_problem(self, url: object) -> str | None:
        """Why this service refuses a batch for `url` (None: it takes it, or it is unknown)."""
        url = self.canonical_url(url)
        if url in ENDPOINTS and url not in self.endpoints:
            return f"{self.service} takes no {url} batches (it takes {', '.join(self.endpoints)})"
        return None

    def describe(self) -> str:
        """`50,000 requests and 200 MB`: the limits as messages state them."""
        return f"{self.requests:,} requests and {human_decimal(self.file_bytes)}"

    def exceeded_by(self, requests: int, size: int) -> bool:
        """Whether a file of `requests` lines and `size` bytes is over these limits."""
        return requests > self.requests or size > self.file_bytes


OPENAI = FileLimits()


def human_decimal(size: int) -> str:
    """`200 MB` for 200,000,000: a limit in the decimal units the API documents."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale and size % scale == 0:
            return f"{size // scale:,} {unit}"
    return f"{size:,} bytes"
