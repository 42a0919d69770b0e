"""What to tell a person when the ledger database cannot be opened, read or written.

The ledger remembers which files were uploaded and which batches were started, so the hints
never suggest deleting it lightly: a damaged ledger is moved aside, and the service's own list
of batches is the way to check what already runs before starting anything again.
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

from openai_batch.errors import BatchError, Command

_CHECK_SERVICE = (
    "without it openai-batch forgets what it started, so check `",
    Command("list-batches"),
    "` before starting the same files again",
)


def move_aside(path: Path, suffix: str) -> str:
    """`mv PATH PATH.SUFFIX`, quoted for a shell: the ledger's home may have a space in it."""
    return shlex.join(["mv", str(path), f"{path}{suffix}"])


def ledger_path() -> Path:
    from openai_batch.ledger.paths import DB_NAME, home_dir

    return home_dir() / DB_NAME


def explain_database_error(exc: sqlite3.Error, path: Path | None = None) -> BatchError:
    """A readable error for a SQLite failure on the ledger at `path` (default: this home's)."""
    path = path or ledger_path()
    text = str(exc)
    low = text.lower()
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return BatchError(
            f"the ledger {path} is damaged (SQLite says: {text})",
            hint=(
                f"move it aside (`{move_aside(path, '.damaged')}`) and a new "
                "one is made on the next run; ",
                *_CHECK_SERVICE,
            ),
        )
    if "readonly" in low or "read-only" in low:
        return BatchError(
            f"the ledger {path} is read-only",
            hint="make it and its folder writable, or set OPENAI_BATCH_HOME to a writable folder",
        )
    if "disk is full" in low:
        return BatchError(
            f"no space left on the device for the ledger {path}",
            hint="free some space; what was recorded before is kept. Then run the same "
            "command again",
        )
    if "disk i/o error" in low:
        return BatchError(
            f"the ledger {path} could not be written or read (disk I/O error)",
            hint="the disk may be full, over a file size limit (`ulimit -f`) or failing; what "
            "was recorded before is kept. Fix that, then run the same command again",
        )
    if "no such column" in low or "no such table" in low:
        return BatchError(
            f"the ledger {path} was upgraded by a newer openai-batch while this command ran "
            f"(SQLite says: {text})",
            hint="use the newer openai-batch from now on (`pip install -U openai-batch`); the "
            "batches go on at the service, and the newer version picks them up",
        )
    if "locked" in low or "busy" in low:
        return BatchError(
            f"the ledger {path} stayed busy: another openai-batch command held it too long",
            hint="run the same command again in a moment",
        )
    if "unable to open" in low:
        return BatchError(
            f"cannot open the ledger {path}",
            hint="OPENAI_BATCH_HOME (or the default data folder) must be a folder you can write",
        )
    return BatchError(
        f"the ledger {path} could not be used (SQLite says: {text})",
        hint="check the disk and the folder's permissions, then run the same command again",
    )


def explain_if_database_error(exc: BaseException) -> BatchError | None:
    """The user-facing error for a SQLite failure, or None: callers outside ledger/ need not
    import sqlite3 to ask."""
    return explain_database_error(exc) if isinstance(exc, sqlite3.Error) else None


def cannot_open(path: Path, exc: BaseException) -> BatchError:
    """The ledger's folder or file is unusable: a file where the folder should be, no rights."""
    if isinstance(exc, sqlite3.Error):
        return explain_database_error(exc, path)
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        return BatchError(
            f"OPENAI_BATCH_HOME {folder} is a file, not a folder",
            hint="point OPENAI_BATCH_HOME at a folder (it is made if missing)",
        )
    reason = getattr(exc, "strerror", None) or str(exc)
    return BatchError(
        f"cannot use the ledger folder {folder}: {reason}",
        hint="OPENAI_BATCH_HOME (or the default data folder) must be a folder you can write",
    )
