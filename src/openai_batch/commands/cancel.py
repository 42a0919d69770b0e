"""`openai-batch cancel-batch BATCH_ID...`."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.flow import resolve
from openai_batch.flow.session import Session
from openai_batch.ledger.store import open_ledger
from openai_batch.service.connection import connect
from openai_batch.ui import console
from openai_batch.ui.batchview import batch_json


def cancel_batch(
    *batch_ids: str,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Cancel batches: they stop within minutes, keeping the results done so far.

    Example: openai-batch cancel-batch batch_6708634c0ba081909ca21a5f182ce840

    A batch that already finished is left as it is. A request file stands for the batches
    started from it.

    Parameters
    ----------
    batch_ids
        Batch ids (batch_...), or request files whose batches to cancel.
    as_json
        Print the API's batch objects as JSON.
    """
    if not batch_ids:
        raise BatchError("no batch given", hint=Command("cancel-batch", "batch_..."))
    conn = connect()
    out = []
    with open_ledger() as ledger:
        resolved = resolve.resolve(conn, ledger, batch_ids)
        session = Session(conn, ledger)
        for batch_id in resolved.batch_ids:
            batch, was_running = session.cancel(batch_id)
            out.append(batch_json(batch, was_running=was_running))
            if not as_json:
                if was_running:
                    console.say(f"{batch.id}  {batch.status}")
                else:
                    console.say(f"{batch.id}  {batch.status}  (nothing to cancel)")
    if as_json:
        console.print_json(out)
    return 0
