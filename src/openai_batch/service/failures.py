"""SDK and transport failures as one ApiError each: a clear message and a hint, never the key.

The SDK has already retried what is worth retrying (429, 5xx, dropped connections) when an
exception reaches here; what is left is said in the user's terms: which variable holds the
rejected key, that the base URL lacks a route, that a server has no OpenAI Batch API, Azure's
own key, token and api-version failures.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from openai_batch import settings
from openai_batch.errors import ApiError, Command, quoted
from openai_batch.jsondepth import MAX_DEPTH
from openai_batch.service import profiles as service_profiles
from openai_batch.service.connection import KEYS_PAGE, OPENAI_BASE_URL, Connection
from openai_batch.service.redaction import public_url, redact

# characters of a server's own words quoted in an error: its message, or a body it sent instead
# (an HTML page of 200 KB from a proxy is not read out whole)
SERVER_WORDS = 300


def _server_words(exc: Any) -> str:
    """What the server said (its error's message, else the SDK's text), redacted."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
    return redact(str(message or getattr(exc, "message", None) or exc))


def _server_message(exc: Any) -> str:
    """What the server said, as an error quotes it: one line, bounded."""
    return quoted(_server_words(exc), SERVER_WORDS)


def translate(exc: BaseException, what: str, conn: Connection | None = None) -> ApiError:
    """One clear ApiError for an SDK or transport failure while doing `what`."""
    import httpx2
    import openai

    from openai_batch.service.reach import TooDeepReply, unreachable_reason

    where = conn.describe() if conn else "the API"
    key_var = conn.key_variable if conn else "OPENAI_API_KEY"
    special = _service_error(exc, what, conn)
    if special is not None:
        return special
    if isinstance(exc, openai.AuthenticationError):
        return ApiError(
            f"{key_var} was rejected (401) while {what}",
            hint="check the key (environment or .env in this folder); keys are at "
            + (conn.profile.console if conn and conn.profile.name != "openai" else KEYS_PAGE),
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return ApiError(
            f"permission denied (403) while {what}: {_server_message(exc)}",
            hint="the key's project may lack access to Files/Batches or this model",
        )
    if isinstance(exc, openai.APIStatusError) and (wrong := _wrong_address(exc, what, conn)):
        return wrong
    if isinstance(exc, openai.NotFoundError):
        return ApiError(
            f"not found (404) while {what}: {_server_message(exc)}",
            hint=(
                "check the id with `",
                Command("list-batches"),
                "`; ids belong to one organization and project, and uploads expire after 30 days",
            ),
        )
    if isinstance(exc, openai.RateLimitError):
        code = getattr(exc, "code", None)
        if code == "insufficient_quota":
            return ApiError(
                f"insufficient quota (429) while {what}: {_server_message(exc)}",
                hint="add credit or raise the limit in the billing settings",
            )
        return ApiError(
            f"rate limited (429) while {what}, even after retries: {_server_message(exc)}",
            hint="wait a minute and run the same command again",
        )
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return ApiError(f"the API refused {what} ({exc.status_code}): {_server_message(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return ApiError(
            f"{where} answered {exc.status_code} while {what}, even after retries: "
            f"{_server_message(exc)}",
            hint="the service may be having trouble; run the same command again later",
        )
    if isinstance(exc, openai.APIConnectionError) and (reason := unreachable_reason(exc)):
        return ApiError(
            f"nothing answers at {where} ({reason}) while {what}",
            hint="start the server there, or fix OPENAI_BASE_URL (unset it to use OpenAI)",
        )
    if isinstance(exc, openai.APITimeoutError):
        return ApiError(
            f"timed out while {what} ({where})",
            hint="check the network and run the same command again",
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError | OSError):
        cause = exc.__cause__ or exc
        return ApiError(
            f"could not reach {where} while {what}: "
            f"{quoted(redact(str(cause) or type(cause).__name__), SERVER_WORDS)}",
            hint="check the network (and OPENAI_BASE_URL if set), then run the same command again",
        )
    if isinstance(exc, TooDeepReply):
        return ApiError(
            f"{where} answered {exc.route} with JSON nested too deeply to read while {what} "
            f"(more than {MAX_DEPTH} lists or objects inside each other)",
            hint="this is no answer of OpenAI's API: check that the base URL names an "
            "OpenAI-compatible server, and run the same command again",
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ApiError(
            f"{where} sent a response that does not match the API's schema while {what}",
            hint="unset OPENAI_BATCH_STRICT, or check that OPENAI_BASE_URL is an OpenAI-compatible "
            "server",
        )
    return ApiError(f"{what} failed: {quoted(redact(str(exc)), SERVER_WORDS)}")


class TokenLimitRefused(ApiError):
    """The create itself was refused for the enqueued-token quota (Azure's fail-fast regions):
    nothing was started, so the request file can be queued and started later."""


def _service_error(exc: BaseException, what: str, conn: Connection | None) -> ApiError | None:
    """Errors that mean something particular: a quota refusal, a server without OpenAI's
    Batch API, Azure's key, token and api-version failures."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return None
    code = getattr(exc, "code", None)
    if isinstance(exc, openai.BadRequestError) and code == "token_limit_exceeded":
        return TokenLimitRefused(
            f"the service refused {what}: enqueued-token limit reached (400 "
            f"token_limit_exceeded): {_server_message(exc)}",
            hint=(
                "nothing was started; the request file waits in its job and starts when "
                "running batches finish (`",
                Command("get-batch-results", "--job", "NAME", "--wait"),
                "`)",
            ),
        )
    path = exc.response.request.url.path if exc.response is not None else ""
    if conn is not None and conn.azure:
        found = _azure_error(exc, what, conn)
        if found is not None:
            return found
    if exc.status_code in (404, 405, 501) and re.search(r"/(batches|files)/?$", path):
        from openai_batch.service.reach import lacks_v1

        if conn is not None and lacks_v1(conn.service):
            return None  # a base URL without its /v1: `_wrong_address` says so
        return _no_batch_api(conn, what, f"{exc.status_code} for {path}")
    return None


def _azure_error(exc: Any, what: str, conn: Connection) -> ApiError | None:
    """Azure's own failures, with hints that speak Azure (portal, Entra ID, api-version)."""
    import openai

    portal = conn.profile.console
    if isinstance(exc, openai.AuthenticationError):
        if conn.key_variable == "" or not settings.text(conn.key_variable):
            return ApiError(
                f"AZURE_OPENAI_AD_TOKEN was rejected (401) while {what}",
                hint="the Entra ID token may have expired (they last about an hour): get a new "
                "one, e.g. `az account get-access-token --resource "
                "https://cognitiveservices.azure.com`",
            )
        return ApiError(
            f"{conn.key_variable} was rejected by Azure OpenAI (401) while {what}",
            hint=f"copy KEY 1 or KEY 2 of this resource from {portal}; the key belongs to the "
            "resource named in AZURE_OPENAI_ENDPOINT",
        )
    message = _server_words(exc)
    version = settings.text(settings.API_VERSION)
    if "api version" in message.lower() or "api-version" in message.lower():
        return ApiError(
            f"Azure OpenAI does not know api-version {version!r} "
            f"({exc.status_code}) while {what}: {quoted(message, SERVER_WORDS)}",
            hint="set OPENAI_API_VERSION to a version with batch support, e.g. 2024-10-21, "
            "or use the v1 route: OPENAI_BASE_URL=<endpoint>/openai/v1 without "
            "AZURE_OPENAI_ENDPOINT",
        )
    if isinstance(exc, openai.NotFoundError) and message.strip() == "Resource not found":
        return ApiError(
            f"Azure OpenAI answered 404 Resource not found while {what}",
            hint="check AZURE_OPENAI_ENDPOINT (https://<resource>.openai.azure.com) and that "
            f"OPENAI_API_VERSION ({version}) supports batches (2024-10-21 or later)",
        )
    return None


def _no_batch_api(conn: Connection | None, what: str, detail: str) -> ApiError:
    """The server has no OpenAI Batch API: say what it lacks and what works instead."""
    where = conn.describe() if conn else "the server"
    profile = conn.profile if conn else service_profiles.OPENAI
    lacks = (
        f"{profile.label}'s batch API is not OpenAI's ({profile.notes})"
        if not profile.openai_batches
        else f"{where} has no OpenAI Files/Batches API ({detail})"
    )
    return ApiError(
        f"cannot do this while {what}: {lacks}",
        hint=(
            "`",
            Command("utils", "chat-complete"),
            "` sends the same request file to any chat-completions server one request at a "
            "time; check OPENAI_BASE_URL if this server should have /v1/batches",
        ),
    )


def require_openai_batches(conn: Connection, what: str) -> None:
    """Refuse before spending anything on a service whose batch API is not OpenAI's."""
    if not conn.profile.openai_batches:
        raise _no_batch_api(conn, what, "")


def _wrong_address(exc: Any, what: str, conn: Connection | None) -> ApiError | None:
    """A route the API always has is missing: the base URL is wrong, or the server lacks it."""
    from openai_batch.service.reach import base_url_hint, route_missing

    route = route_missing(exc)
    if route is None:
        return None
    base = conn.service if conn else public_url(settings.text(settings.BASE_URL) or OPENAI_BASE_URL)
    where = conn.describe() if conn else base
    return ApiError(
        f"{where} answered {exc.status_code} to {route} while {what}: the base URL is wrong, "
        "or this server does not offer that endpoint",
        hint=base_url_hint(base),
    )


@contextlib.contextmanager
def calling(what: str, conn: Connection | None = None) -> Iterator[None]:
    """Turn any SDK/transport exception raised inside into an ApiError about `what`."""
    import httpx2
    import openai

    try:
        yield
    except (openai.OpenAIError, httpx2.HTTPError) as exc:
        raise translate(exc, what, conn) from None


def is_not_found(exc: BaseException) -> bool:
    """The service does not know the id (not: the base URL lacks the route)."""
    import openai

    from openai_batch.service.reach import route_missing

    return isinstance(exc, openai.NotFoundError) and route_missing(exc) is None


def reraise_missing_route(exc: Any) -> None:
    """A 404 about the route, not the id, goes on to `calling`, which says the URL is wrong."""
    from openai_batch.service.reach import route_missing

    if route_missing(exc) is not None:
        raise exc
