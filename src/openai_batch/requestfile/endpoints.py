"""The Batch API's endpoints: the `url` of every request line, written once.

Every module that branches on a request's endpoint (estimate, validate, make-batch-file,
chat-complete, BatchJob) names it by these constants, so the list cannot drift between them.
"""

from __future__ import annotations

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
MODERATIONS = "/v1/moderations"

# The endpoints the tool writes and checks request bodies for (the request types the installed
# SDK defines for the Batch API, in the order they are offered to users).
ENDPOINTS: tuple[str, ...] = (CHAT, RESPONSES, EMBEDDINGS, COMPLETIONS, MODERATIONS)


def versioned(url: object) -> object:
    """`/chat/completions` (as Azure's guide writes request lines) -> `/v1/chat/completions`;
    anything else unchanged. For readers that only need to know the endpoint (estimate,
    chat-complete); whether a service's batches accept the short form is `FileLimits`'s rule."""
    if isinstance(url, str) and "/v1" + url in ENDPOINTS:
        return "/v1" + url
    return url
