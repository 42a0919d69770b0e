"""Telling a wrong address from a passing fault, so that a mistyped base URL fails at once.

The SDK retries connection errors and 5xx answers with backoff (13-15 s in all), which is right
for a network blip and wrong for a server that is not there: nothing listening at the address
(connection refused) or a host name that does not exist is reported after one attempt, naming
the URL. A 501 (not implemented) is not retried either. A 404, 405 or 501 on a route the API
always has (listing batches, uploading a file, /v1/chat/completions) means the base URL is wrong
or the server lacks that endpoint, not that an id is unknown: `route_missing` says which.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import httpx2
import openai

from openai_batch.jsondepth import TOO_DEEP, too_deep

# Routes every OpenAI-compatible server has when it offers the feature at all: a 404 there is
# never an unknown id.
_COLLECTIONS = (
    "/batches",
    "/files",
    "/chat/completions",
    "/completions",
    "/responses",
    "/embeddings",
    "/moderations",
    "/models",
)
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, socket.EAI_NONAME}
if hasattr(socket, "EAI_NODATA"):  # not on every platform
    _UNREACHABLE_ERRNOS.add(socket.EAI_NODATA)


class TooDeepReply(openai.APIResponseValidationError):
    """A reply nested past jsondepth.MAX_DEPTH, never handed to the SDK, whose json module
    would recurse near the interpreter's limit (a RecursionError: the CLI's generic message,
    naming no server). An OpenAIError: the SDK passes it on, neither retried nor wrapped."""

    def __init__(self, response: httpx2.Response) -> None:
        self.route = f"{response.request.method} {response.request.url.path}"
        super().__init__(response, None, message=f"the reply to {self.route} is {TOO_DEEP}")


class Unreachable(openai.APIConnectionError):
    """Nothing answers at the address (refused, or no such host): retrying will not help."""

    def __init__(self, reason: str, request: httpx2.Request) -> None:
        super().__init__(message=reason, request=request)
        self.reason = reason


class FailFastClient(openai.DefaultHttpxClient):
    """The SDK's HTTP client, with the SDK's defaults (proxies from the environment included),
    that ends the SDK's retries where they cannot help."""

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        try:
            response = super().send(request, **kwargs)
        except httpx2.ConnectError as exc:
            reason = unreachable_reason(exc)
            if reason is None:
                raise
            raise Unreachable(reason, request) from exc
        if response.status_code == 501 and "x-should-retry" not in response.headers:
            response.headers["x-should-retry"] = "false"  # the SDK obeys this header
        if not kwargs.get("stream") and too_deep(response.content):  # read whole: an API object
            response.close()
            raise TooDeepReply(response)
        return response


def unreachable_reason(exc: BaseException) -> str | None:
    """ "connection refused" or "unknown host" when that is the root of `exc`, else None."""
    if isinstance(exc, Unreachable):
        return exc.reason
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _UNREACHABLE_ERRNOS:
            return "connection refused" if seen.errno == errno.ECONNREFUSED else "unknown host"
        seen = seen.__cause__ or seen.__context__
    return None


def route_missing(exc: openai.APIStatusError) -> str | None:
    """`METHOD /path` when the server has no such route (rather than no such id), else None."""
    if exc.status_code not in (404, 405, 501):
        return None
    request = exc.response.request
    path = request.url.path.rstrip("/")
    route = f"{request.method} {path}"
    message = _message(exc.body)
    if exc.status_code in (405, 501) or message is None:
        return route  # a JSON error with a message is how the API says "no such id"
    if "model" in (getattr(exc, "code", None) or "") or "model" in message.lower():
        return None  # the route exists; the model does not
    if message.startswith(("Invalid URL", "Not Found", "Unexpected endpoint")):
        return route
    return route if path.endswith(_COLLECTIONS) else None


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str) and message.strip():
            return message.strip()
    return None


def lacks_v1(base_url: str) -> bool:
    """An OpenAI-compatible base URL ends in /v1 (Azure's have /openai instead)."""
    base = base_url.rstrip("/")
    return not base.endswith("/v1") and "/openai" not in base


def base_url_hint(base_url: str, variable: str = "OPENAI_BASE_URL") -> str:
    """How to fix a base URL the server does not answer at."""
    base = base_url.rstrip("/")
    if lacks_v1(base):
        return (
            f"an OpenAI-compatible base URL usually ends in /v1: try {variable}={base}/v1 "
            "(OpenAI's is https://api.openai.com/v1; unset it to use OpenAI)"
        )
    return (
        f"check {variable} (OpenAI's is https://api.openai.com/v1; unset it to use OpenAI), "
        "or use a server that offers this endpoint"
    )


def fail_fast_async_client(**options: Any) -> Any:
    """The SDK's aiohttp client (chat-complete) with FailFastClient's rules."""
    base: Any = openai.DefaultAioHttpClient

    class FailFastAsyncClient(base):  # type: ignore[misc,valid-type]
        async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
            try:
                response = await super().send(request, **kwargs)
            except Exception as exc:
                reason = unreachable_reason(exc)
                if reason is None:
                    raise
                raise Unreachable(reason, request) from exc
            if response.status_code == 501 and "x-should-retry" not in response.headers:
                response.headers["x-should-retry"] = "false"
            return response

    return FailFastAsyncClient(**options)
