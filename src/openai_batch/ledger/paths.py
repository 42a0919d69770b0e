"""Where openai-batch keeps its state: the home folder, the ledger file, downloads."""

from __future__ import annotations

import re
from pathlib import Path

from openai_batch import settings

DB_NAME = "ledger.sqlite3"


def home_dir() -> Path:
    """`$OPENAI_BATCH_HOME`, else the platform's user data directory for openai-batch."""
    home = settings.home()
    if home is not None:
        return home
    from platformdirs import user_data_dir

    return Path(user_data_dir("openai-batch", appauthor=False))


def downloads_dir(service: str | None = None) -> Path:
    """Where downloaded output/error files are kept, by file id (their content never changes):
    a folder per service, since file ids are unique only within one (`file-1` on two servers)."""
    base = home_dir() / "downloads"
    return base if service is None else base / service_folder(service)


def service_folder(service: str) -> str:
    """A folder name for a service (its base URL, as the ledger records it): the host, made
    safe, for people, and a digest of the whole URL, so two services never share a folder.

    Only the user's own configuration goes into it, never text the server sent."""
    from urllib.parse import urlsplit

    from openai_batch.ledger.digests import digest_bytes

    try:
        host = urlsplit(service).netloc
    except ValueError:
        host = ""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", host).strip(".")[:40] or "service"
    return f"{readable}-{digest_bytes(service.encode('utf-8', 'surrogatepass'))[:16]}"


def download_path(service: str, file_id: str) -> Path:
    """Where the download of `file_id` from `service` is kept; the id is checked first
    (see ids.py)."""
    from openai_batch.service.ids import file_name

    return downloads_dir(service) / file_name(file_id, ".jsonl")


def abs_path(path: Path | str | None) -> str | None:
    """How the ledger records a local path: absolute, `~` expanded, links resolved."""
    if path is None:
        return None
    return str(Path(path).expanduser().resolve())
