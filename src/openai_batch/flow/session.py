"""A session: the service connection and the ledger together, so what is fetched is recorded.

The ledger is this machine's memory of the batches it started and saw: which request file a
batch ran, its last status, its output file. Every batch object the service hands back is worth
keeping there, and forgetting to (a `retrieve` without the `record_batch` after it) leaves a
ledger that disagrees with the service. Commands and flows fetch, start, upload and cancel
through a `Session`, which records each answer as it comes; `service/` (batch_calls,
file_calls) stays the plain, ledger-free HTTP layer.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError
from openai_batch.ledger.store import Ledger
from openai_batch.service import shape as batchshape
from openai_batch.service import status as batchstatus
from openai_batch.service.batch_calls import (
    UnrecognisedBatch,
    cancel_batch,
    create_batch,
    find_batch,
    is_final,
    retrieve_batch,
)
from openai_batch.service.connection import Connection
from openai_batch.service.file_calls import upload_file

if TYPE_CHECKING:
    from openai.types import Batch, FileObject

UNRECOGNISED_PREFIX = "unrecognised-"  # ledger ids for creates answered without a batch id


@dataclass(frozen=True)
class Session:
    """One connection and one open ledger; the ledger scope is the connection's service."""

    conn: Connection
    ledger: Ledger

    @property
    def service(self) -> str:
        return self.conn.service

    def record(self, batch: Batch, *, digest: str | None = None) -> Batch:
        """Keep a batch object in the ledger (with the content digest it ran, when known)."""
        self.ledger.record_batch(self.conn.service, batch, digest=digest)
        return batch

    def batch(self, batch_id: str, *, digest: str | None = None) -> Batch:
        """The batch as the service has it now, recorded; an unknown id is an ApiError."""
        return self.record(retrieve_batch(self.conn, batch_id), digest=digest)

    def find(self, batch_id: str) -> Batch | None:
        """Like `batch`, but None (and nothing recorded) when the service does not know the id."""
        found = find_batch(self.conn, batch_id)
        return None if found is None else self.record(found)

    def batches(self, batch_ids: Sequence[str]) -> list[Batch]:
        """Each batch now, in the order given, in few requests (see service/status.py)."""
        now = batchstatus.current(self.conn, batch_ids)
        for batch in now.values():
            self.record(batch)
        return [now[b] for b in batch_ids]

    def current(self, batch_ids: Sequence[str]) -> dict[str, Batch]:
        """`batches` by id, for callers that look batches up by id."""
        return dict(zip(batch_ids, self.batches(batch_ids), strict=True))

    def refreshed(self, batches: Sequence[Batch]) -> list[Batch]:
        """The same batches, the unfinished ones read again and recorded."""
        pending = [b.id for b in batches if not is_final(b)]
        now = self.current(pending) if pending else {}
        return [now.get(b.id, b) for b in batches]

    def cancel(self, batch_id: str) -> tuple[Batch, bool]:
        """Cancel a batch unless it is final or already cancelling; (batch now, was running)."""
        batch = retrieve_batch(self.conn, batch_id)
        running = not (is_final(batch) or batch.status == "cancelling")
        if running:
            batch = cancel_batch(self.conn, batch_id)
        return self.record(batch), running

    def upload(
        self,
        path: Path,
        digest: str,
        *,
        progress: Callable[[int], object] | None = None,
        expires_after: int | None = None,
    ) -> FileObject:
        """Upload a request file and record the upload under its content digest.

        The file is hashed again once sent: one replaced or edited since it was checked (or
        while it was sent) would be paid for unchecked and recorded under another file's
        digest, so its upload is deleted and nothing is recorded."""
        from openai_batch.ledger.digests import matches
        from openai_batch.service.file_calls import delete_file

        uploaded = upload_file(
            self.conn, Path(path), progress=progress, expires_after=expires_after
        )
        try:
            unchanged = matches(Path(path), digest)
        except OSError:
            unchanged = False
        if not unchanged:
            with contextlib.suppress(BatchError):
                delete_file(self.conn, uploaded.id)
            raise BatchError(
                f"{path} changed between its check and the end of its upload; the upload "
                f"({uploaded.id}) was deleted and no batch was started",
                hint="leave the file alone while it is uploaded, then run the command again "
                "(it is checked again)",
            )
        self.ledger.record_upload(self.conn.service, uploaded, digest, path)
        return uploaded

    def start(
        self,
        file_id: str,
        endpoint: str,
        metadata: Mapping[str, str],
        *,
        digest: str | None = None,
        completion_window: str = "24h",
    ) -> Batch:
        """Create a batch on an uploaded file and record it.

        A create answered without a batch id (UnrecognisedBatch) is recorded as a stand-in
        before the error goes on: the next start of the same requests sees it and refuses to
        pay again unless forced."""
        try:
            batch = create_batch(
                self.conn, file_id, endpoint, dict(metadata), completion_window=completion_window
            )
        except UnrecognisedBatch:
            self.record(unrecognised_batch(file_id, endpoint, metadata), digest=digest)
            raise
        return self.record(batch, digest=digest)


def unrecognised_batch(file_id: str, endpoint: str, metadata: Mapping[str, str]) -> Batch:
    """A ledger stand-in for a create the service answered without an id."""
    from openai._models import construct_type
    from openai.types import Batch as BatchType

    data = {
        "id": UNRECOGNISED_PREFIX + uuid.uuid4().hex,
        "object": "batch",
        "status": batchshape.UNKNOWN,
        "input_file_id": file_id,
        "endpoint": endpoint,
        "metadata": dict(metadata),
        "created_at": int(time.time()),
    }
    return construct_type(type_=BatchType, value=data)  # type: ignore[return-value]
