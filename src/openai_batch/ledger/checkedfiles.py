"""Request files the pre-upload check passed in full: by content and by what checked them.

A verdict is kept per content digest and per check stamp (`validate/verdicts.py`: this build
of openai-batch, its dependencies and the service's limits), so only the same bytes checked by
the same code against the same limits are let through again unread; anything else, a file
edited by hand included, is checked again.

Passes are kept only under the few stamps used last and for a limited time after their last
use (recorded, or matched: a file started again and again in a long project keeps its pass):
every build (an upgrade, an edited checkout) and every service's limits check under a stamp of
their own, and an old build's stamp is never matched again, so the table would otherwise only
grow. Dropping a pass is always safe: that file is checked again.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from openai_batch.ledger.connection import LedgerBase

# the stamps whose passes are kept (by their pass used last, recorded or matched): a few builds
# or services used by turns keep theirs
KEPT_STAMPS = 4
KEPT_SECONDS = 90 * 24 * 3600  # no pass is kept longer after its last use


@dataclass(frozen=True)
class CheckedFile:
    """What the check of one request file found, to say again without reading it."""

    digest: str
    stamp: str
    requests: int
    endpoint: str | None
    model: str | None
    warnings: int


class CheckedFiles(LedgerBase):
    """The ledger's checked_files table."""

    def record_checked_file(self, checked: CheckedFile) -> None:
        """Remember a pass, and drop those unused for too long or under stamps long unused
        (one scan of a table kept small: about a millisecond per 1,000 passes, beside a check
        of a whole file)."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO checked_files (digest, stamp, requests, endpoint, "
                "model, warnings, checked_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (checked.digest, checked.stamp, checked.requests, checked.endpoint,
                 checked.model, checked.warnings, now, now),
            )  # fmt: skip
            db.execute(
                "DELETE FROM checked_files WHERE used_at < ? OR stamp NOT IN (SELECT stamp "
                "FROM checked_files GROUP BY stamp ORDER BY MAX(used_at) DESC LIMIT ?)",
                (now - KEPT_SECONDS, KEPT_STAMPS),
            )

    def checked_file(self, digest: str, stamp: str) -> CheckedFile | None:
        row = self.db.execute(
            "SELECT requests, endpoint, model, warnings FROM checked_files "
            "WHERE digest = ? AND stamp = ?",
            (digest, stamp),
        ).fetchone()
        if row is None or not _well_formed(row):
            return None  # a row damaged or written by hand is no pass: the file is checked
        # used now: kept from now on (keeping it is housekeeping: a ledger busy past the
        # timeout, or read-only, costs at most a check of the file some day, not this command)
        with contextlib.suppress(sqlite3.OperationalError):
            self.db.execute(
                "UPDATE checked_files SET used_at = ? WHERE digest = ? AND stamp = ?",
                (time.time(), digest, stamp),
            )
        return CheckedFile(
            digest, stamp, row["requests"], row["endpoint"], row["model"], row["warnings"]
        )


def _well_formed(row: Any) -> bool:
    """A pass as record_checked_file writes it: counts as whole numbers, an endpoint as text."""
    counts = (row["requests"], row["warnings"])
    if not all(type(n) is int and n >= 0 for n in counts):
        return False
    return isinstance(row["endpoint"], str) and isinstance(row["model"], str | None)
