"""`openai-batch utils delete-files`: free a finished job's files on the service."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.flow import resolve
from openai_batch.flow.session import Session
from openai_batch.ledger.store import open_ledger
from openai_batch.service.connection import connect
from openai_batch.ui import console


def delete_files(
    *targets: str,
    job: str | None = None,
    dry_run: bool = False,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Delete finished batches' input, output and error files on the service, once safe.

    Example: openai-batch utils delete-files --job personas

    Output and error files are deleted only once get-batch-results has downloaded them whole
    (the local copy has the service's size); an input file only once its batch is final, all
    its results are downloaded, and no unfinished batch uses it. Anything else is kept and
    listed with the reason. Azure OpenAI allows 500 batch files without expiry per resource
    (output files count), so a finished job's files are worth freeing.

    Parameters
    ----------
    targets
        Batch ids or request files (each stands for the batches started from it).
    job
        Every batch of this job (run / start-batch).
    dry_run
        Only list what would be deleted.
    as_json
        Print what was (or would be) deleted and kept as JSON.
    """
    from openai_batch.flow import file_cleanup as service_files
    from openai_batch.ledger import jobstore

    if not targets and job is None:
        hint = (Command("utils", "delete-files", "--job", "NAME"), " (or batch ids)")
        raise BatchError("no batch given", hint=hint)
    conn = connect()
    with open_ledger() as ledger:
        batch_ids = resolve.resolve(conn, ledger, targets).batch_ids if targets else []
        if job is not None:
            jobstore.load_job(ledger, job, conn.service)
            batch_ids += [b for _, b in jobstore.job_batch_ids(ledger, job) if b not in batch_ids]
        session = Session(conn, ledger)
        batches = [session.batch(b) for b in batch_ids]
        plan = service_files.plan_cleanup(conn, ledger, batches)
        if not dry_run:
            service_files.carry_out(conn, ledger, plan)
    if as_json:
        console.print_json(
            {
                "dry_run": dry_run,
                "delete": [{"file_id": f, "role": r, "bytes": n} for f, r, n in plan.delete],
                "deleted": plan.deleted,
                "kept": [{"id": i, "why": why} for i, why in plan.keep],
            }
        )
        return 0
    verb = "Would delete" if dry_run else "Deleted"
    console.say(
        f"{verb} {console.plural(len(plan.delete), 'file')} ({console.human_bytes(plan.bytes)}) on "
        f"{conn.describe()}"
    )
    for file_id, role, _ in plan.delete:
        console.say(f"  {file_id}  ({role})")
    for item, why in plan.keep:
        console.note(f"kept {item}: {why}")
    return 0
