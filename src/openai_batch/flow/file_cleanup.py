"""Deleting a finished batch's files on the service, once their results are safe on this disk.

Azure OpenAI keeps at most 500 batch files per resource that have no expiry, and output and
error files count; OpenAI keeps files until they expire. A file is deleted only when losing it
costs nothing: an output or error file once its download (kept by file id under the ledger's
home) is complete, byte for byte as the service reports its size; an input file once its batch
is final, every file of that batch is safe, and no unfinished batch in the ledger still uses it.
Anything else is kept, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openai_batch.ledger.paths import download_path
from openai_batch.ledger.store import Ledger
from openai_batch.service import shape as batchshape
from openai_batch.service.connection import Connection
from openai_batch.service.file_calls import delete_file, retrieve_file

if TYPE_CHECKING:
    from openai.types import Batch


@dataclass
class Plan:
    """What can go and what stays (with why)."""

    delete: list[tuple[str, str, int]] = field(default_factory=list)  # (file id, role, bytes)
    keep: list[tuple[str, str]] = field(default_factory=list)  # (file id or batch id, why)
    deleted: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, _, size in self.delete)


def plan_cleanup(conn: Connection, ledger: Ledger, batches: Iterable[Batch]) -> Plan:
    """Decide, per batch, which of its files may be deleted (nothing is deleted here)."""
    plan = Plan()
    for batch in batches:
        if not batchshape.is_final(batch):
            plan.keep.append((batch.id, f"batch still {batchshape.status_text(batch)}"))
            continue
        safe = True
        for role, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if not file_id:
                continue
            why = _unsafe_result(conn, file_id, role, plan)
            if why:
                safe = False
                plan.keep.append((file_id, why))
        if batch.input_file_id:
            why = None if safe else "its batch's results are not all downloaded"
            why = why or _input_in_use(ledger, conn.service, batch)
            if why:
                plan.keep.append((batch.input_file_id, why))
            else:
                _add(conn, plan, batch.input_file_id, "input")
    return plan


def _unsafe_result(conn: Connection, file_id: str, role: str, plan: Plan) -> str | None:
    """None when the file is downloaded whole (and queued for deletion), else why it stays."""
    found = retrieve_file(conn, file_id)
    if found is None:
        return None  # already gone from the service
    local = download_path(conn.service, file_id)
    if not local.is_file():
        return "not downloaded yet (get-batch-results downloads it)"
    size = getattr(found, "bytes", None)
    if isinstance(size, int) and local.stat().st_size != size:
        return f"the download has {local.stat().st_size:,} bytes, the service {size:,}"
    if all(fid != file_id for fid, _, _ in plan.delete):
        plan.delete.append((file_id, role, size if isinstance(size, int) else 0))
    return None


def _input_in_use(ledger: Ledger, service: str, batch: Batch) -> str | None:
    for record in ledger.batches_for(service, input_file_id=batch.input_file_id):
        if record.batch_id != batch.id and record.status not in batchshape.FINAL:
            return f"batch {record.batch_id} ({record.status}) uses it too"
    return None


def _add(conn: Connection, plan: Plan, file_id: str, role: str) -> None:
    found = retrieve_file(conn, file_id)
    if found is not None and all(fid != file_id for fid, _, _ in plan.delete):
        size = getattr(found, "bytes", None)
        plan.delete.append((file_id, role, size if isinstance(size, int) else 0))


def carry_out(conn: Connection, ledger: Ledger, plan: Plan) -> None:
    """Delete what the plan allows; a file already gone counts as deleted."""
    for file_id, role, _ in plan.delete:
        delete_file(conn, file_id)
        if role == "input":
            ledger.mark_upload_gone(conn.service, file_id)
        plan.deleted.append(file_id)
