"""Uploads in the ledger: which content went to which service as which file id.

Recorded per service (the base URL without user name or password), so the same content is not
uploaded twice; a record is a hint, checked with the service before it is reused.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_batch.ledger.connection import LedgerBase
from openai_batch.ledger.paths import abs_path


@dataclass
class UploadRecord:
    file_id: str
    service: str
    digest: str
    path: str | None
    bytes: int | None
    purpose: str | None
    created_at: int | None
    expires_at: int | None
    gone: bool
    recorded_at: float


class Uploads(LedgerBase):
    """The ledger's uploads table."""

    def record_upload(self, service: str, file_obj: Any, digest: str, path: Path | str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (file_id, service, digest, path, bytes, purpose, "
                "created_at, expires_at, gone, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    file_obj.id,
                    service,
                    digest,
                    abs_path(path),
                    getattr(file_obj, "bytes", None),
                    getattr(file_obj, "purpose", None),
                    getattr(file_obj, "created_at", None),
                    getattr(file_obj, "expires_at", None),
                    time.time(),
                ),
            )

    def uploads_for(self, service: str, digest: str) -> list[UploadRecord]:
        """Uploads of this content on this service still believed to exist, newest first."""
        rows = self.db.execute(
            "SELECT * FROM uploads WHERE service = ? AND digest = ? AND gone = 0 "
            "ORDER BY recorded_at DESC",
            (service, digest),
        )
        return [_upload(row) for row in rows]

    def upload(self, service: str, file_id: str) -> UploadRecord | None:
        row = self.db.execute(
            "SELECT * FROM uploads WHERE service = ? AND file_id = ?", (service, file_id)
        ).fetchone()
        return _upload(row) if row else None

    def mark_upload_gone(self, service: str, file_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE uploads SET gone = 1 WHERE service = ? AND file_id = ?", (service, file_id)
            )


def _upload(row: sqlite3.Row) -> UploadRecord:
    data = dict(row)
    data["gone"] = bool(data["gone"])
    return UploadRecord(**data)
