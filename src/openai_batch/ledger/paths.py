"""Where openai-batch keeps its state: the home folder, the ledger file, downloads."""

from __future__ import annotations

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


def downloads_dir() -> Path:
    """Where downloaded output/error files are kept, by file id (their content never changes)."""
    return home_dir() / "downloads"


def download_path(file_id: str) -> Path:
    """Where the download of `file_id` is kept; the id is checked first (see ids.py)."""
    from openai_batch.service.ids import file_name

    return downloads_dir() / file_name(file_id, ".jsonl")


def abs_path(path: Path | str | None) -> str | None:
    """How the ledger records a local path: absolute, `~` expanded, links resolved."""
    if path is None:
        return None
    return str(Path(path).expanduser().resolve())
