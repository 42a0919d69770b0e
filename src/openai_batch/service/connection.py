"""Connecting to a service: OpenAI, Azure OpenAI or any OpenAI-compatible base URL.

Configuration (environment, or a `.env` file in the working directory that never overrides a
variable already set, and may not name the service for a key it does not hold: dotenv_guard.py):
`OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`;
Azure OpenAI when `AZURE_OPENAI_ENDPOINT` is set (`AZURE_OPENAI_API_KEY` or `OPENAI_API_KEY`,
`OPENAI_API_VERSION`). `OPENAI_BATCH_MAX_RETRIES` (default 5) and `OPENAI_BATCH_STRICT=1` (report
where a response departs from the SDK's schema: useful with look-alike servers; it never blocks a
call that worked) tune the client. The key is checked before any request and never shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openai_batch import settings
from openai_batch.errors import ApiError
from openai_batch.service import profiles as service_profiles
from openai_batch.service.dotenv_guard import load_dotenv_file
from openai_batch.service.redaction import public_url, redact

if TYPE_CHECKING:
    import openai

# Uploads and downloads of 200 MB files on slow links: generous read/write, quick connect.
TIMEOUT_SECONDS = 900.0
CONNECT_TIMEOUT_SECONDS = 20.0
KEYS_PAGE = "https://platform.openai.com/api-keys"
OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_KEY = "sk-no-key-required"  # local servers without auth still need a non-empty key


@dataclass(frozen=True)
class Connection:
    """A ready client plus what we may say about it (never the key)."""

    client: openai.OpenAI
    service: str  # base URL: scopes ledger entries to one service
    azure: bool
    key_variable: str  # the variable the key came from, for messages
    strict: bool = False  # OPENAI_BATCH_STRICT: report departures from the SDK's schema
    profile: service_profiles.ServiceProfile = service_profiles.OPENAI  # limits, windows, hints
    # strict.py: the departures already told for this connection, (kind, field), each told once
    told: set[tuple[str, str]] = dataclasses.field(default_factory=set, compare=False, repr=False)

    def describe(self) -> str:
        return f"Azure OpenAI at {self.service}" if self.azure else self.service


def connect(
    *, strict: bool | None = None, max_retries: int | None = None, service: str | None = None
) -> Connection:
    """The configured client, checked for a key before any request is made.

    `service` (--service) names the service profile; by default it follows the base URL."""
    load_dotenv_file()
    conn = _connect(strict=strict, max_retries=max_retries)
    profile = service_profiles.select(service)
    chosen = service or settings.text(settings.SERVICE)
    if profile is service_profiles.OPENAI and not chosen:  # not named: the connection decides
        profile = service_profiles.for_url(conn.service, azure=conn.azure)
    return dataclasses.replace(conn, profile=profile)


def _connect(*, strict: bool | None, max_retries: int | None) -> Connection:
    import httpx2
    import openai

    from openai_batch.service.reach import FailFastClient

    if strict is None:
        strict = settings.strict()
    retries = settings.max_retries() if max_retries is None else max_retries
    timeout = httpx2.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    endpoint = settings.text(settings.AZURE_ENDPOINT)
    if endpoint:
        return _connect_azure(endpoint, strict=strict, retries=retries, timeout=timeout)
    key = settings.text(settings.API_KEY)
    if key is None:
        raise ApiError(
            "no API key: OPENAI_API_KEY is not set",
            hint=f"create a key at {KEYS_PAGE}, then `export OPENAI_API_KEY=...` "
            "or put `OPENAI_API_KEY=...` in a .env file in this folder",
        )
    _check_key_text(key, "OPENAI_API_KEY")
    check_base_url(settings.text(settings.BASE_URL), "OPENAI_BASE_URL")
    try:
        client = openai.OpenAI(
            api_key=key,
            base_url=settings.text(settings.BASE_URL),
            organization=settings.text(settings.ORG_ID),
            project=settings.text(settings.PROJECT_ID),
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

    key_variable = (
        settings.AZURE_API_KEY if settings.is_set(settings.AZURE_API_KEY) else settings.API_KEY
    )
    key = settings.text(key_variable)
    if key is None and not settings.text(settings.AZURE_AD_TOKEN):
        raise ApiError(
            "no API key for Azure OpenAI: AZURE_OPENAI_API_KEY is not set",
            hint="set AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN), or unset "
            "AZURE_OPENAI_ENDPOINT to use OpenAI",
        )
    if key is not None:
        _check_key_text(key, key_variable)
    version = settings.text(settings.API_VERSION)
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


def connect_async(
    *,
    base_url: str | None,
    api_key_env: str | None,
    timeout: float,
    max_retries: int,
    retry_rules: Callable[[type], type] = lambda client_class: client_class,
) -> tuple[Any, Connection]:
    """The SDK's async client (for `utils chat-complete`), and the Connection that names it.

    The default (no base URL, key from OPENAI_API_KEY) takes the settings of every other command
    (`connect`: `.env`, organization/project, Azure). A base URL or another key variable
    builds a plain client: a local server without auth needs no key at all. `retry_rules` makes
    the client class whose retries the run wants (chat_runner.paced: 429s go to the pacer).
    """
    import httpx2
    import openai

    from openai_batch.service.reach import fail_fast_async_client

    load_dotenv_file((api_key_env,) if api_key_env else ())
    env_base = settings.text(settings.BASE_URL)
    configured = any(settings.is_set(v) for v in (settings.API_KEY, settings.AZURE_ENDPOINT))
    common: dict[str, Any] = {
        "max_retries": max_retries,
        "timeout": timeout,
        "http_client": fail_fast_async_client(timeout=timeout),
    }
    if (
        base_url is None
        and api_key_env in (None, "OPENAI_API_KEY")
        and (configured or not env_base)
    ):
        conn = connect(max_retries=max_retries)
        sync: Any = conn.client
        if conn.azure:
            client = retry_rules(openai.AsyncAzureOpenAI)(
                base_url=str(sync.base_url),
                api_version=sync._api_version,
                api_key=sync.api_key or None,
                azure_ad_token=getattr(sync, "_azure_ad_token", None),
                **common,
            )
        else:
            client = retry_rules(openai.AsyncOpenAI)(
                api_key=sync.api_key,
                base_url=sync.base_url,
                organization=sync.organization,
                project=sync.project,
                **common,
            )
        return client, conn
    url = base_url or env_base
    variable = api_key_env or "OPENAI_API_KEY"
    key = settings.text(variable)
    if not key:
        if api_key_env not in (None, "OPENAI_API_KEY") or url is None or "api.openai.com" in url:
            raise ApiError(
                f"no API key: {variable} is not set",
                hint=f"export {variable}=... (a local server without auth needs no key)",
            )
        key = LOCAL_KEY
    check_base_url(url, "--base-url" if base_url else "OPENAI_BASE_URL")
    try:
        client = retry_rules(openai.AsyncOpenAI)(api_key=key, base_url=url, **common)
    except (openai.OpenAIError, ValueError, httpx2.InvalidURL) as exc:
        raise client_setup_error(exc, "--base-url" if base_url else "OPENAI_BASE_URL") from None
    service = service_of(client)
    return client, Connection(client, service, azure=False, key_variable=variable)
