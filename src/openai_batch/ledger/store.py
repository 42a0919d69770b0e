"""The ledger: what this machine made, uploaded and started, so nothing is paid for twice.

A SQLite database (`ledger.sqlite3` under `$OPENAI_BATCH_HOME`, default the user data directory)
records each request file made (path, digest, the template and data it came from, and how to
recover its custom_id order), each upload (file id) and each batch. It lets a local path stand for
an id, stops double uploads and double starts, and lets get-batch-results find the data to join.
It holds no secrets: no keys, no request or response content.

Files are recognised by a content digest (`digests.digest_of`, xxh3-128, 32 hex characters).
The parts, one module each: connection (opening, transactions), schema (migrations),
requestfiles, uploads, batches, locks (check-then-act across processes and hosts), paths.
"""

from __future__ import annotations

from pathlib import Path

from openai_batch.ledger.batches import Batches, BatchRecord
from openai_batch.ledger.checkedfiles import CheckedFiles
from openai_batch.ledger.locks import Locks
from openai_batch.ledger.paths import DB_NAME, home_dir
from openai_batch.ledger.requestfiles import RequestFileRecord, RequestFiles
from openai_batch.ledger.uploads import UploadRecord, Uploads

__all__ = ["BatchRecord", "Ledger", "RequestFileRecord", "UploadRecord", "open_ledger"]


class Ledger(RequestFiles, Uploads, Batches, Locks, CheckedFiles):
    """The ledger database: every record kind, over one connection (see connection.py)."""


def open_ledger(home: Path | None = None) -> Ledger:
    """Open (creating and migrating as needed) the ledger under `home` or `home_dir()`."""
    return Ledger((home or home_dir()) / DB_NAME)
