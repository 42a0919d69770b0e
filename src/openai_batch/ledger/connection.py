"""One connection to the ledger database: opening, migrating, transactions.

WAL mode and a busy timeout let several commands use it at once; a failure to open is told as
one readable error (faults.py). The records live in mixins over this base (requestfiles,
uploads, batches, locks) that `store.Ledger` brings together.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from openai_batch.ledger import faults as ledger_faults
from openai_batch.ledger import schema

BUSY_TIMEOUT_MS = 30_000


class LedgerBase:
    """A connection to the ledger database. Use as a context manager, or call close()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise ledger_faults.cannot_open(path, exc) from None
        try:
            self._setup()
        except (OSError, sqlite3.Error) as exc:
            self.db.close()
            raise ledger_faults.cannot_open(path, exc) from None

    def _setup(self) -> None:
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        with contextlib.suppress(sqlite3.OperationalError):  # e.g. on a network filesystem
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        with self.transaction() as db:
            schema.migrate(db, self.path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def schema_version(self) -> int:
        return schema.schema_version(self.db)
