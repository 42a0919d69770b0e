"""A `.env` in the working folder may not send the user's key to a server it chose.

`.env` files are read from the working folder for convenience, so a cloned project, a shared
folder or an unpacked archive can carry one. If it sets OPENAI_BASE_URL (or
AZURE_OPENAI_ENDPOINT) while the API key comes from the user's own environment, every request
would carry that key to whatever server the file names. That combination is refused unless the
environment itself (not the `.env`) says `OPENAI_BATCH_TRUST_DOTENV_URL=1`. A `.env` that holds
its own key as well as the URL is the user's own configuration and is read as before.

The same holds for the variables that route or trust connections (proxies, certificate
files): a `.env` proxy would see every request, key included. And the key is whichever
variable the command reads, `utils chat-complete --api-key-env NAME` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from openai_batch import settings
from openai_batch.errors import BatchError
from openai_batch.service.redaction import public_url

OPT_IN = settings.TRUST_DOTENV_URL
URL_VARIABLES = (settings.BASE_URL, settings.AZURE_ENDPOINT)
# Where requests go, or whom they trust, for the HTTP client (httpx2 reads these).
ROUTE_VARIABLES = (
    *(name for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") for name in (base, base.lower())),
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
KEY_VARIABLES = settings.SECRET_VARIABLES


def check_dotenv(
    path: Path, values: Mapping[str, str], key_variables: tuple[str, ...] = ()
) -> None:
    """Refuse a `.env` that would point (or route) the environment's key at a server of its
    own. `key_variables`: further variables a command reads its key from (--api-key-env)."""
    chosen = [
        n
        for n in (*URL_VARIABLES, *ROUTE_VARIABLES)
        if settings.is_set(n, values) and not settings.is_set(n)
    ]
    keys = [n for n in (*KEY_VARIABLES, *key_variables) if settings.is_set(n)]
    if not chosen or not keys or settings.trust_dotenv_url():
        return
    name = chosen[0]
    how = "sent to a server" if name in URL_VARIABLES else "sent through a connection"
    raise BatchError(
        f"{path} sets {name}={public_url(values[name].strip())}, but the key ({keys[0]}) comes "
        f"from your environment: the key would be {how} this folder chose",
        hint=f"if you trust this folder, `export {OPT_IN}=1` (in the environment, not in .env); "
        f"or set {name} yourself, or remove it from .env",
    )


def load_dotenv_file(key_variables: tuple[str, ...] = ()) -> None:
    """Read `.env` from the working directory, never overriding variables already set.

    A `.env` comes with a cloned or downloaded folder: one that names the service
    (OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT) while the key comes from the environment would send
    the user's own key to a server of the folder's choosing; `check_dotenv` refuses that."""
    path = Path.cwd() / ".env"
    if path.is_file():
        from dotenv import dotenv_values

        values = {k: v for k, v in dotenv_values(path).items() if v is not None}
        check_dotenv(path, values, key_variables)
        settings.fill_in(values)
