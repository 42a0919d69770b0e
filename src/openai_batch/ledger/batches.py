"""Batches in the ledger: each batch started or seen, by service, with its content digest.

The digest (found through the batch's upload when not given) is what stops the same content
being started twice; a record is refreshed from the service's object whenever one is fetched.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openai_batch.ledger.connection import LedgerBase


@dataclass
class BatchRecord:
    batch_id: str
    service: str
    input_file_id: str | None
    digest: str | None
    endpoint: str | None
    description: str | None
    metadata: dict[str, str]
    status: str | None
    created_at: int | None
    output_file_id: str | None
    error_file_id: str | None
    total: int | None
    completed: int | None
    failed: int | None
    recorded_at: float
    updated_at: float


class Batches(LedgerBase):
    """The ledger's batches table."""

    def record_batch(
        self,
        service: str,
        batch: Any,
        *,
        digest: str | None = None,
        description: str | None = None,
    ) -> None:
        """Insert or refresh a batch from the API's object; earlier facts survive a None.

        Ids are unique within one account only: on one base URL, two accounts (keys, URL user
        names) or a server that was reset may reuse `batch_1`. A row is refreshed only by the
        same batch (same input file and creation time); another batch under its id replaces
        it and inherits nothing, so two accounts' batches never merge into one row."""
        counts = batch.request_counts
        metadata = dict(batch.metadata or {})
        with self.transaction() as db:
            old = db.execute(
                "SELECT digest, description, input_file_id, created_at FROM batches "
                "WHERE service = ? AND batch_id = ?",
                (service, batch.id),
            ).fetchone()
            if old is not None and not _same_batch(old, batch):
                db.execute(
                    "DELETE FROM batches WHERE service = ? AND batch_id = ?", (service, batch.id)
                )
                old = None
            if digest is None and old is not None:
                digest = old["digest"]
            if digest is None and batch.input_file_id:
                up = db.execute(
                    "SELECT digest FROM uploads WHERE service = ? AND file_id = ?",
                    (service, batch.input_file_id),
                ).fetchone()
                digest = up["digest"] if up else None
            if description is None:
                description = metadata.get("description") or (old["description"] if old else None)
            now = time.time()
            db.execute(
                "INSERT INTO batches (batch_id, service, input_file_id, digest, endpoint, "
                "description, metadata, status, created_at, output_file_id, error_file_id, total, "
                "completed, failed, recorded_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (service, batch_id) DO UPDATE SET digest = excluded.digest, "
                "description = excluded.description, metadata = excluded.metadata, "
                "status = excluded.status, output_file_id = excluded.output_file_id, "
                "error_file_id = excluded.error_file_id, total = excluded.total, "
                "completed = excluded.completed, failed = excluded.failed, "
                "updated_at = excluded.updated_at",
                (
                    batch.id,
                    service,
                    batch.input_file_id,
                    digest,
                    batch.endpoint,
                    description,
                    json.dumps(metadata),
                    batch.status,
                    batch.created_at,
                    batch.output_file_id or None,
                    batch.error_file_id or None,
                    counts.total if counts else None,
                    counts.completed if counts else None,
                    counts.failed if counts else None,
                    now,
                    now,
                ),
            )

    def batch(self, service: str, batch_id: str) -> BatchRecord | None:
        row = self.db.execute(
            "SELECT * FROM batches WHERE service = ? AND batch_id = ?", (service, batch_id)
        ).fetchone()
        return _batch(row) if row else None

    def batches_for(
        self,
        service: str,
        *,
        digests: Sequence[str] = (),
        input_file_id: str | None = None,
    ) -> list[BatchRecord]:
        """Batches started from any of these contents (or this upload), oldest first."""
        clauses, params = [], [service]
        if digests:
            clauses.append(f"digest IN ({', '.join('?' for _ in digests)})")
            params.extend(digests)
        if input_file_id:
            clauses.append("input_file_id = ?")
            params.append(input_file_id)
        if not clauses:
            return []
        rows = self.db.execute(
            f"SELECT * FROM batches WHERE service = ? AND ({' OR '.join(clauses)}) "
            "ORDER BY created_at, recorded_at",
            params,
        )
        return [_batch(row) for row in rows]


def _batch(row: sqlite3.Row) -> BatchRecord:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"]) if data["metadata"] else {}
    return BatchRecord(**data)


def _same_batch(row: sqlite3.Row, batch: Any) -> bool:
    """Whether the recorded row and the service's object are one batch, not two under one id."""
    return all(
        row[key] is None or value is None or row[key] == value
        for key, value in (("input_file_id", batch.input_file_id), ("created_at", batch.created_at))
    )
