"""`openai-batch list-batches`: the account's batches, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from cyclopts import Parameter

from openai_batch.errors import BatchError
from openai_batch.service.batch_calls import iter_batches
from openai_batch.service.connection import Connection, connect
from openai_batch.ui import batchview, console, tables

# batchshape.STATUSES plus "unknown" (a status no known word maps to)
Status = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
    "cancelled", "unknown",
]  # fmt: skip


def list_batches(
    *,
    limit: Annotated[int | None, Parameter(alias="-n")] = None,
    status: Status | None = None,
    job: str | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """List batches: id, creation time (local), status, completed/failed/total, description.

    Example: openai-batch list-batches --limit 50 --status in_progress

    Parameters
    ----------
    limit
        Show at most this many (default 20, with --job all; 0: all). Pages of the API are
        followed as needed.
    status
        Only batches with this status.
    job
        Only the batches of this job (run / start-batch), by shard, with any that were
        restarted after token_limit_exceeded.
    as_json
        Print the API's batch objects as JSON.
    """
    if limit is not None and limit < 0:
        raise BatchError(
            f"--limit cannot be negative ({limit})", hint="0 lists them all; the default is 20"
        )
    conn = connect()
    if job is not None:
        return _list_job(conn, job, limit or 0, status, as_json)
    limit = 20 if limit is None else limit
    found = []
    for batch in iter_batches(conn, page_size=100 if status or limit <= 0 else min(limit, 100)):
        if status and batch.status != status:
            continue
        found.append(batch)
        if 0 < limit <= len(found):
            break
    if as_json:
        console.print_json([batch.model_dump(mode="json") for batch in found])
        return 0
    if not found:
        console.say("No batches" + (f" with status {status}" if status else "") + ".")
        return 0
    console.say(tables.table(tables.batch_rows(found), tables.LIST_HEADER))
    return 0


def _list_job(conn: Connection, name: str, limit: int, status: str | None, as_json: bool) -> int:
    from openai_batch.flow.session import Session
    from openai_batch.ledger import jobstore
    from openai_batch.ledger.store import open_ledger

    with open_ledger() as ledger:
        job = jobstore.load_job(ledger, name, conn.service)
        pairs = sorted(jobstore.job_batch_ids(ledger, name), key=lambda p: p[0])
        now = Session(conn, ledger).current([batch_id for _, batch_id in pairs])  # list pages
    found = []
    for shard, batch_id in pairs:
        batch = now[batch_id]
        if status and batch.status != status:
            continue
        found.append((shard, batch))
        if 0 < limit <= len(found):
            break
    if as_json:
        console.print_json([batchview.batch_json(b, job=name, shard=shard) for shard, b in found])
        return 0
    if not found:
        what = f" with status {status}" if status else ""
        files = console.plural(len(job.shards), "request file")
        console.say(f"No batches{what} in job {name} yet ({files}).")
        return 0
    rows = [
        [f"{shard}/{len(job.shards)}", *row]
        for (shard, _), row in zip(found, tables.batch_rows(b for _, b in found), strict=True)
    ]
    console.say(tables.table(rows, ("shard", *tables.LIST_HEADER)))
    return 0
