"""A `.env` in the working folder may not send the user's key to a server it chose.

`.env` files are read from the working folder for convenience, so a cloned project, a shared
folder or an unpacked archive can carry one. If it sets OPENAI_BASE_URL (or
AZURE_OPENAI_ENDPOINT) while the API key comes from the user's own environment, every request
would carry that key to whatever server the file names. That combination is refused unless the
environment itself (not the `.env`) says `OPENAI_BATCH_TRUST_DOTENV_URL=1`. A `.env` that holds
its own key as well as the URL is the user's own configuration and is read as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import BatchError
from .redaction import public_url

OPT_IN = "OPENAI_BATCH_TRUST_DOTENV_URL"
URL_VARIABLES = ("OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")


def _set(environ: Mapping[str, str], name: str) -> bool:
    return bool(environ.get(name, "").strip())


def check_dotenv(path: Path, values: Mapping[str, str]) -> None:
    """Refuse a `.env` that would point the environment's key at a URL of its own."""
    urls = [n for n in URL_VARIABLES if _set(values, n) and not _set(os.environ, n)]
    keys = [n for n in KEY_VARIABLES if _set(os.environ, n)]
    if not urls or not keys or os.environ.get(OPT_IN, "").strip() in ("1", "true", "yes"):
        return
    name = urls[0]
    raise BatchError(
        f"{path} sets {name}={public_url(values[name].strip())}, but the key ({keys[0]}) comes "
        "from your environment: the key would be sent to a server this folder chose",
        hint=f"if you trust this folder, `export {OPT_IN}=1` (in the environment, not in .env); "
        f"or set {name} yourself, or remove it from .env",
    )
