"""The batches whose results make up a job, and the request files they join back to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError
from openai_batch.flow.session import Session
from openai_batch.ledger.jobrecords import Job
from openai_batch.ledger.store import Ledger, RequestFileRecord
from openai_batch.service.connection import Connection

if TYPE_CHECKING:
    from openai.types import Batch


@dataclass
class JobBatches:
    """The batches whose results make up the job: one per shard, plus retries of their requests."""

    shards: list[Batch]  # each shard's current batch, in shard order
    retries: list[Batch]  # batches of retry files made from the shards (utils retry-failed)

    @property
    def all(self) -> list[Batch]:
        return [*self.shards, *self.retries]


def current_batches(conn: Connection, ledger: Ledger, job: Job) -> JobBatches:
    """Each started shard's batch as the service has it now, and the batches of retry files
    made from the shards (`utils retry-failed`), so their answers merge into the job's."""
    session = Session(conn, ledger)
    shards = session.batches([s.batch_id for s in job.shards if s.batch_id])
    retries = []
    seen = {b.id for b in shards}
    for shard in job.shards:
        derived = [r.digest for r in ledger.request_files_derived_from(shard.digest)]
        for record in ledger.batches_for(conn.service, digests=derived) if derived else []:
            if record.batch_id in seen:
                continue
            seen.add(record.batch_id)
            retries.append(session.batch(record.batch_id))
    return JobBatches(shards, retries)


def roots(ledger: Ledger, job: Job) -> list[RequestFileRecord]:
    """The shards' request-file records, in row order: the order and the rows of the join."""
    found = []
    for shard in job.shards:
        record = ledger.request_file(path=shard.path, digest=shard.digest)
        record = record or ledger.request_file(digest=shard.digest)
        if record is None:
            raise BatchError(f"the ledger lost the request file of shard {shard.number}")
        found.append(record)
    return found
