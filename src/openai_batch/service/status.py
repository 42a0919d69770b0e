"""The status of many batches in few requests: list pages first, retrieve only what is missing.

Polling a job of N unfinished shards one `GET /batches/{id}` at a time costs N requests per
pass: a 2,000-shard job would spend minutes per pass and press on rate limits. The list
endpoint returns 100 batches (newest first) per request, with the same fields, so a pass
reads about N/100 pages and retrieves only the batches the pages did not show (older ones,
behind other work). Below LIST_FROM batches, retrieving each is as cheap and simpler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from openai_batch.service.batch_calls import is_final, iter_batches, retrieve_batch
from openai_batch.service.connection import Connection

if TYPE_CHECKING:
    from openai.types import Batch

LIST_FROM = 20  # unfinished batches from which a pass lists pages first
PAGE = 100  # the most the list endpoint returns per page
SPARE_PAGES = 2  # pages read beyond N/100 before falling back to retrieving the rest


def current(conn: Connection, batch_ids: Sequence[str]) -> dict[str, Batch]:
    """Each batch as the service has it now, by id."""
    wanted = list(dict.fromkeys(batch_ids))
    found: dict[str, Batch] = {}
    if len(wanted) >= LIST_FROM:
        looking = set(wanted)
        budget = (len(wanted) // PAGE + 1 + SPARE_PAGES) * PAGE
        for seen, batch in enumerate(
            iter_batches(conn, page_size=PAGE, skip_unreadable=True), start=1
        ):
            if batch.id in looking:
                found[batch.id] = batch
                if len(found) == len(looking):
                    break
            if seen >= budget:
                break
    for batch_id in wanted:
        if batch_id not in found:
            found[batch_id] = retrieve_batch(conn, batch_id)
    return found


def refreshed(conn: Connection, batches: Sequence[Batch]) -> list[Batch]:
    """The same batches, the unfinished ones read again (in one pass)."""
    pending = [b.id for b in batches if not is_final(b)]
    now = current(conn, pending) if pending else {}
    return [now.get(b.id, b) for b in batches]
