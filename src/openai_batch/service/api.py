"""The only module that talks to the service: the client, uploads, batches and downloads.

Every call goes through the official `openai` SDK, which retries 429, 5xx and connection errors
with backoff and honours `retry-after`/`retry-after-ms`. Whatever still fails comes out of here as
an `ApiError` with one clear message and a hint; the API key never appears in either.

Configuration (environment, or a `.env` file in the working directory that never overrides a
variable already set, and may not name the service for a key it does not hold: dotenv_guard.py):
`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`;
Azure OpenAI when `AZURE_OPENAI_ENDPOINT` is set (`AZURE_OPENAI_API_KEY` or `OPENAI_API_KEY`,
`OPENAI_API_VERSION`). `OPENAI_BATCH_MAX_RETRIES` (default 5) and `OPENAI_BATCH_STRICT=1` (report
where a response departs from the SDK's schema: useful with look-alike servers; it never blocks a
call that worked) tune the client. Every batch object goes through `batchshape.normalize`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import ApiError, BatchError
from openai_batch.local import files
from openai_batch.service import ids
from openai_batch.service import profiles as service_profiles
from openai_batch.service import shape as batchshape
from openai_batch.service.redaction import public_url, redact
from openai_batch.ui import console

if TYPE_CHECKING:
    import openai
    from openai.types import Batch, FileObject

DEFAULT_MAX_RETRIES = 5
# Uploads and downloads of 200 MB files on slow links: generous read/write, quick connect.
TIMEOUT_SECONDS = 900.0
CONNECT_TIMEOUT_SECONDS = 20.0
DOWNLOAD_ATTEMPTS = 3
FINAL_STATUSES = batchshape.FINAL
KEYS_PAGE = "https://platform.openai.com/api-keys"
OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Connection:
    """A ready client plus what we may say about it (never the key)."""

    client: openai.OpenAI
    service: str  # base URL: scopes ledger entries to one service
    azure: bool
    key_variable: str  # the variable the key came from, for messages
    strict: bool = False  # OPENAI_BATCH_STRICT: report departures from the SDK's schema
    profile: service_profiles.ServiceProfile = service_profiles.OPENAI  # limits, windows, hints

    def describe(self) -> str:
        return f"Azure OpenAI at {self.service}" if self.azure else self.service


def load_dotenv_file(key_variables: tuple[str, ...] = ()) -> None:
    """Read `.env` from the working directory, never overriding variables already set.

    A `.env` comes with a cloned or downloaded folder: one that names the service
    (OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT) while the key comes from the environment would send
    the user's own key to a server of the folder's choosing; see `dotenv_guard`."""
    path = Path.cwd() / ".env"
    if path.is_file():
        from dotenv import dotenv_values

        from openai_batch.service.dotenv_guard import check_dotenv

        values = {k: v for k, v in dotenv_values(path).items() if v is not None}
        check_dotenv(path, values, key_variables)
        for name, value in values.items():
            os.environ.setdefault(name, value)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _max_retries() -> int:
    raw = _env("OPENAI_BATCH_MAX_RETRIES")
    if raw is None:
        return DEFAULT_MAX_RETRIES
    try:
        return max(0, int(raw))
    except ValueError:
        raise BatchError(
            f"OPENAI_BATCH_MAX_RETRIES must be a whole number, not {raw!r}",
            hint="unset it to use the default of 5 retries",
        ) from None


def connect(
    *, strict: bool | None = None, max_retries: int | None = None, service: str | None = None
) -> Connection:
    """The configured client, checked for a key before any request is made.

    `service` (--service) names the service profile; by default it follows the base URL."""
    load_dotenv_file()
    conn = _connect(strict=strict, max_retries=max_retries)
    profile = service_profiles.select(service)
    chosen = service or os.environ.get("OPENAI_BATCH_SERVICE", "").strip()
    if profile is service_profiles.OPENAI and not chosen:  # not named: the connection decides
        profile = service_profiles.for_url(conn.service, azure=conn.azure)
    return dataclasses.replace(conn, profile=profile)


def _connect(*, strict: bool | None, max_retries: int | None) -> Connection:
    import httpx2
    import openai

    from openai_batch.service.reach import FailFastClient

    if strict is None:
        strict = _env("OPENAI_BATCH_STRICT") not in (None, "0", "false", "no")
    retries = _max_retries() if max_retries is None else max_retries
    timeout = httpx2.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    endpoint = _env("AZURE_OPENAI_ENDPOINT")
    if endpoint:
        return _connect_azure(endpoint, strict=strict, retries=retries, timeout=timeout)
    key = _env("OPENAI_API_KEY")
    if key is None:
        raise ApiError(
            "no API key: OPENAI_API_KEY is not set",
            hint=f"create a key at {KEYS_PAGE}, then `export OPENAI_API_KEY=...` "
            "or put `OPENAI_API_KEY=...` in a .env file in this folder",
        )
    _check_key_text(key, "OPENAI_API_KEY")
    check_base_url(_env("OPENAI_BASE_URL"), "OPENAI_BASE_URL")
    try:
        client = openai.OpenAI(
            api_key=key,
            base_url=_env("OPENAI_BASE_URL"),
            organization=_env("OPENAI_ORG_ID"),
            project=_env("OPENAI_PROJECT_ID"),
            max_retries=retries,
            timeout=timeout,
            http_client=FailFastClient(),
        )
    except (openai.OpenAIError, ValueError, httpx2.InvalidURL) as exc:
        raise client_setup_error(exc, "OPENAI_BASE_URL") from None
    service = service_of(client)
    return Connection(client, service, azure=False, key_variable="OPENAI_API_KEY", strict=strict)


def service_of(client: openai.OpenAI) -> str:
    """The client's base URL as it may be shown and stored: no trailing slash, no password."""
    return public_url(str(client.base_url).rstrip("/"))


def client_setup_error(exc: BaseException, url_variable: str) -> ApiError:
    """The SDK refused its settings: most often a base URL that is not a URL (`http://[::1`)."""
    import httpx2

    if isinstance(exc, httpx2.InvalidURL | ValueError):
        return ApiError(
            f"{url_variable} is not a valid URL ({redact(str(exc))})", hint=_url_hint(url_variable)
        )
    return ApiError(f"cannot configure the OpenAI client: {redact(str(exc))}")


def check_base_url(url: str | None, variable: str) -> None:
    """A base URL must say http:// or https://: `localhost:8000/v1` would otherwise read as
    scheme `localhost` and fail as "could not reach" (and `alice:pw@host` show a password)."""
    if url is None:
        return
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ApiError(
            f"{variable} is not a valid URL: {public_url(url)} (it must start with http:// or "
            "https://)",
            hint=_url_hint(variable),
        )


def _url_hint(variable: str) -> str:
    example = (
        "https://YOUR-RESOURCE.openai.azure.com"
        if variable.startswith("AZURE")
        else "https://api.openai.com/v1 (a local server: http://localhost:8000/v1)"
    )
    return f"set {variable} to the service's address, e.g. {example}"


def _check_key_text(key: str, variable: str) -> None:
    """A key pasted with a smart quote or an ellipsis would fail deep inside the HTTP client."""
    for position, char in enumerate(key, start=1):
        if not (char.isascii() and char.isprintable()) or char.isspace():
            raise ApiError(
                f"{variable} has a character that cannot be in an API key "
                f"(character {position} of {len(key)}, {unicodedata_name(char)})",
                hint="copy the key again from the API keys page, without quotes or spaces",
            )


def unicodedata_name(char: str) -> str:
    import unicodedata

    return unicodedata.name(char, f"U+{ord(char):04X}")


def _connect_azure(endpoint: str, *, strict: bool, retries: int, timeout: Any) -> Connection:
    import httpx2
    import openai

    from openai_batch.service.reach import FailFastClient

    key_variable = "AZURE_OPENAI_API_KEY" if _env("AZURE_OPENAI_API_KEY") else "OPENAI_API_KEY"
    key = _env(key_variable)
    if key is None and not _env("AZURE_OPENAI_AD_TOKEN"):
        raise ApiError(
            "no API key for Azure OpenAI: AZURE_OPENAI_API_KEY is not set",
            hint="set AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN), or unset "
            "AZURE_OPENAI_ENDPOINT to use OpenAI",
        )
    if key is not None:
        _check_key_text(key, key_variable)
    version = _env("OPENAI_API_VERSION")
    if version is None:
        raise ApiError(
            "Azure OpenAI needs an API version: OPENAI_API_VERSION is not set",
            hint="set OPENAI_API_VERSION, e.g. `export OPENAI_API_VERSION=2025-04-01-preview`",
        )
    check_base_url(endpoint, "AZURE_OPENAI_ENDPOINT")
    try:
        client = openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_key=key,
            api_version=version,
            max_retries=retries,
            timeout=timeout,
            http_client=FailFastClient(),
        )
    except (openai.OpenAIError, ValueError, httpx2.InvalidURL) as exc:
        raise client_setup_error(exc, "AZURE_OPENAI_ENDPOINT") from None
    service = service_of(client)
    return Connection(client, service, azure=True, key_variable=key_variable or "", strict=strict)


# ---------------------------------------------------------------------------------------------
# Errors


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
    return redact(str(message or getattr(exc, "message", None) or exc))


def translate(exc: BaseException, what: str, conn: Connection | None = None) -> ApiError:
    """One clear ApiError for an SDK or transport failure while doing `what`."""
    import httpx2
    import openai

    from openai_batch.service.reach import unreachable_reason

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
            hint="check the id with `openai-batch list-batches`; ids belong to one "
            "organization and project, and uploads expire after 30 days",
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
            f"could not reach {where} while {what}: {redact(str(cause) or type(cause).__name__)}",
            hint="check the network (and OPENAI_BASE_URL if set), then run the same command again",
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return ApiError(
            f"{where} sent a response that does not match the API's schema while {what}",
            hint="unset OPENAI_BATCH_STRICT, or check that OPENAI_BASE_URL is an OpenAI-compatible "
            "server",
        )
    return ApiError(f"{what} failed: {redact(str(exc))}")


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
            hint="nothing was started; the request file waits in its job and starts when "
            "running batches finish (`openai-batch get-batch-results --job NAME --wait`)",
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
        if conn.key_variable == "" or not _env(conn.key_variable):
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
    message = _server_message(exc)
    if "api version" in message.lower() or "api-version" in message.lower():
        return ApiError(
            f"Azure OpenAI does not know api-version {_env('OPENAI_API_VERSION')!r} "
            f"({exc.status_code}) while {what}: {message}",
            hint="set OPENAI_API_VERSION to a version with batch support, e.g. 2024-10-21, "
            "or use the v1 route: OPENAI_BASE_URL=<endpoint>/openai/v1 without "
            "AZURE_OPENAI_ENDPOINT",
        )
    if isinstance(exc, openai.NotFoundError) and message.strip() == "Resource not found":
        return ApiError(
            f"Azure OpenAI answered 404 Resource not found while {what}",
            hint="check AZURE_OPENAI_ENDPOINT (https://<resource>.openai.azure.com) and that "
            f"OPENAI_API_VERSION ({_env('OPENAI_API_VERSION')}) supports batches (2024-10-21 "
            "or later)",
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
        hint="`openai-batch utils chat-complete` sends the same request file to any "
        "chat-completions server one request at a time; check OPENAI_BASE_URL if this server "
        "should have /v1/batches",
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
    base = conn.service if conn else public_url(_env("OPENAI_BASE_URL") or OPENAI_BASE_URL)
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


def _reraise_missing_route(exc: Any) -> None:
    """A 404 about the route, not the id, goes on to `calling`, which says the URL is wrong."""
    from openai_batch.service.reach import route_missing

    if route_missing(exc) is not None:
        raise exc


# ---------------------------------------------------------------------------------------------
# Files


def upload_file(
    conn: Connection,
    path: Path,
    *,
    purpose: str = "batch",
    progress: Callable[[int], object] | None = None,
    expires_after: int | None = None,
) -> FileObject:
    """Upload a file, streamed from disk (the SDK rewinds it on a retry).

    `progress` hears of every block read for sending, for a progress bar in bytes."""
    require_openai_batches(conn, f"uploading {path}")
    with open(path, "rb") as fh, calling(f"uploading {path}", conn):
        body: Any = fh if progress is None else _ReadProgress(fh, progress)
        extra: dict[str, Any] = {}
        if expires_after is not None:  # Azure counts files without expiry against 500/resource
            extra["expires_after"] = {"anchor": "created_at", "seconds": expires_after}
        uploaded = conn.client.files.create(
            file=(path.name, body, "application/jsonl"),
            purpose=purpose,  # type: ignore[arg-type]
            **extra,
        )
    report_differences(conn, "file", uploaded)
    if not getattr(uploaded, "id", None):
        raise ApiError(
            f"{conn.describe()} answered the upload of {path} without a file id",
            hint="its Files API may not be OpenAI's; `openai-batch utils chat-complete` works "
            "with any chat-completions server",
        )
    return ids.check_file(uploaded)


class _ReadProgress:
    """A file that reports the bytes read from it; everything else is the file's own."""

    def __init__(self, fh: Any, report: Callable[[int], object]) -> None:
        self._fh = fh
        self._report = report

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._report(len(data))
        return bytes(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def retrieve_file(conn: Connection, file_id: str) -> FileObject | None:
    """The file's metadata, or None when the service no longer has it (expired or deleted)."""
    import openai

    with calling(f"looking up file {file_id}", conn):
        try:
            found = conn.client.files.retrieve(file_id)
        except openai.NotFoundError as exc:
            _reraise_missing_route(exc)
            return None
    report_differences(conn, "file", found)
    return ids.check_file(found)


def delete_file(conn: Connection, file_id: str) -> None:
    """Delete a file on the service; one already gone is fine."""
    import openai

    with calling(f"deleting file {file_id}", conn):
        try:
            conn.client.files.delete(file_id)
        except openai.NotFoundError:
            return


def read_first_line(conn: Connection, file_id: str, limit: int = 16 << 20) -> bytes:
    """The first line of an uploaded file, without downloading the rest of it."""
    with (
        calling(f"reading file {file_id}", conn),
        conn.client.files.with_streaming_response.content(file_id) as response,
    ):
        head = bytearray()
        for chunk in response.iter_bytes(64 * 1024):
            head.extend(chunk)
            if b"\n" in head or len(head) >= limit:
                break
    return bytes(head.split(b"\n", 1)[0])


def download_file(
    conn: Connection, file_id: str, dest: Path, *, attempts: int = DOWNLOAD_ATTEMPTS
) -> Path:
    """Stream a file to `dest` atomically; a broken transfer is retried and never leaves a part."""
    import httpx2
    import openai

    what = f"downloading file {file_id}"
    for attempt in range(1, attempts + 1):
        temp = files.temp_path_for(dest)
        try:
            with conn.client.files.with_streaming_response.content(file_id) as response:
                expected = _announced_length(response.headers)
                written = 0
                with open(temp, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
                        written += len(chunk)
                if expected is not None and written != expected:
                    raise httpx2.RemoteProtocolError(
                        f"received {written} of {expected} bytes", request=None
                    )
            files.commit(temp, dest)
            return dest
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            files.discard(temp)
            if attempt == attempts:
                cause = redact(str(exc) or type(exc).__name__)
                raise ApiError(
                    f"the download of file {file_id} broke off {attempts} times ({cause})",
                    hint="nothing partial was kept; run the same command again",
                ) from None
            time.sleep(min(2.0**attempt * 0.25, 8.0))
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            files.discard(temp)
            raise translate(exc, what, conn) from None
        except BaseException:
            files.discard(temp)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _announced_length(headers: Any) -> int | None:
    if headers.get("content-encoding") not in (None, "identity"):
        return None
    raw = headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


# ---------------------------------------------------------------------------------------------
# Batches


class UnrecognisedBatch(ApiError):
    """The service answered a create with something that names no batch: it may still run one."""

    def __init__(self, message: str, *, hint: str, answer: str) -> None:
        super().__init__(message, hint=hint)
        self.answer = answer


def create_batch(
    conn: Connection,
    input_file_id: str,
    endpoint: str,
    metadata: dict[str, str] | None,
    *,
    completion_window: str = "24h",
) -> Batch:
    """Start a batch. An answer without a batch id raises UnrecognisedBatch (never retried)."""
    require_openai_batches(conn, f"starting a batch for {input_file_id}")
    with calling(f"starting a batch for {input_file_id}", conn):
        answer = conn.client.batches.create(
            input_file_id=input_file_id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window=completion_window,  # type: ignore[arg-type]
            metadata=metadata or None,
        )
    batch = normalize(answer, conn, "batch")
    if not batch.id:
        text = redact(str(batchshape.raw_data(answer)))[:300]
        raise UnrecognisedBatch(
            f"{conn.describe()} answered the batch create without a batch id: it may have "
            f"started one that this tool cannot follow (answer: {text})",
            hint="check the service's own console for a batch on "
            f"{input_file_id} before starting again; its batch API may not be OpenAI's: "
            "`openai-batch utils chat-complete` works with any chat-completions server",
            answer=text,
        )
    return batch


def retrieve_batch(conn: Connection, batch_id: str) -> Batch:
    import openai

    try:
        with calling(f"looking up batch {batch_id}", conn):
            try:
                return normalize(conn.client.batches.retrieve(batch_id), conn, "batch")
            except openai.NotFoundError as exc:
                _reraise_missing_route(exc)
                raise ApiError(
                    f"no batch {batch_id} at {conn.describe()} (404)",
                    hint="check the id with `openai-batch list-batches`; batch ids belong to one "
                    "organization and project",
                ) from None
    except ValueError:
        raise BatchError(f"not a batch id: {batch_id!r}") from None


def find_batch(conn: Connection, batch_id: str) -> Batch | None:
    """Like retrieve_batch, but None when the service does not know the id."""
    import openai

    with calling(f"looking up batch {batch_id}", conn):
        try:
            return normalize(conn.client.batches.retrieve(batch_id), conn, "batch")
        except openai.NotFoundError as exc:
            _reraise_missing_route(exc)
            return None


def cancel_batch(conn: Connection, batch_id: str) -> Batch:
    import openai

    with calling(f"cancelling batch {batch_id}", conn):
        try:
            return normalize(conn.client.batches.cancel(batch_id), conn, "batch")
        except openai.NotFoundError as exc:
            _reraise_missing_route(exc)
            raise ApiError(
                f"no batch {batch_id} at {conn.describe()} (404)",
                hint="check the id with `openai-batch list-batches`",
            ) from None


MAX_LIST_PAGES = 10_000  # a bound even for a server whose cursors never end


def iter_batches(
    conn: Connection, *, page_size: int = 100, skip_unreadable: bool = False
) -> Iterator[Batch]:
    """Every batch, newest first, across the API's pages, each once.

    `skip_unreadable`: pass over a batch whose ids are not ids (another tool's, on the same
    account) instead of stopping; for callers that look for their own batches among all.

    Stops at the end the server announces (`has_more: false`), and also on a page without a
    cursor (no ids) or one that brings nothing new: some compatible servers ignore `after` and
    leave out `has_more`, and would otherwise answer the same page forever."""
    seen: set[str] = set()
    after: str | None = None
    with calling("listing batches", conn):
        for _ in range(MAX_LIST_PAGES):
            kwargs: dict[str, Any] = {"limit": page_size}
            if after is not None:
                kwargs["after"] = after
            page = conn.client.batches.list(**kwargs)
            items = list(getattr(page, "data", None) or [])
            new = 0
            for item in items:
                try:
                    batch = normalize(item, conn, "batch")
                except ApiError:
                    if not skip_unreadable:
                        raise
                    continue  # not one of ours: ours were checked when they were created
                if batch.id is None or batch.id in seen:
                    continue
                seen.add(batch.id)
                new += 1
                yield batch
            last = batchshape.raw_data(items[-1]).get("id") if items else None
            if not new or not isinstance(last, str) or getattr(page, "has_more", None) is False:
                return
            after = last


_REPORTED: set[tuple[str, str]] = set()


def report_differences(conn: Connection, kind: str, obj: Any) -> None:
    """OPENAI_BATCH_STRICT=1: say (once per field) where the service departs from the schema."""
    if not conn.strict or obj is None:
        return
    from openai.types import Batch, FileObject

    model = {"batch": Batch, "file": FileObject}[kind]
    for line in batchshape.differences(model, batchshape.raw_data(obj)):
        if (kind, line.split(":", 1)[0]) in _REPORTED:
            continue
        _REPORTED.add((kind, line.split(":", 1)[0]))
        console.warn(f"strict: {conn.describe()} sent a {kind} that differs from OpenAI's: {line}")


def normalize(batch: Batch, conn: Connection | None = None, kind: str = "batch") -> Batch:
    """The batch in OpenAI's shape and words (see batchshape); differences reported if strict.
    Every id in it is checked for an id's shape (see ids.py) before anything uses it."""
    if conn is not None:
        report_differences(conn, kind, batch)
    return ids.check_batch(batchshape.normalize(batch))


def is_final(batch: Batch) -> bool:
    return batchshape.is_final(batch)
