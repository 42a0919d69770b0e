"""`openai-batch list-batches`: the account's batches, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from cyclopts import Parameter

from .. import api, batchview, console

Status = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
    "cancelled",
]  # fmt: skip


def list_batches(
    *,
    limit: Annotated[int, Parameter(alias="-n")] = 20,
    status: Status | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """List batches: id, creation time (local), status, completed/failed/total, description.

    Example: openai-batch list-batches --limit 50 --status in_progress

    Parameters
    ----------
    limit
        Show at most this many (0: all). Pages of the API are followed as needed.
    status
        Only batches with this status.
    as_json
        Print the API's batch objects as JSON.
    """
    conn = api.connect()
    found = []
    for batch in api.iter_batches(conn, page_size=100 if status or limit <= 0 else min(limit, 100)):
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
    console.say(batchview.table(batchview.batch_rows(found), batchview.LIST_HEADER))
    return 0
