"""The project's one text-table formatter, and the tables built with it: batches (list-batches,
a job's batches) and a job's shards (its status view).

Plain left-aligned columns, no box drawing: the output is read by people and by scripts that
split on runs of spaces, and tests assert it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

from openai_batch.ledger.jobrecords import QUEUED, Job
from openai_batch.service import shape as batchshape
from openai_batch.ui.batchview import local
from openai_batch.ui.console import plural

if TYPE_CHECKING:
    from openai.types import Batch

LIST_HEADER = ("id", "created", "status", "completed/failed/total", "description")
STATUS_HEADER = ("shard", "request file", "batch", "status", "completed/failed/total", "tokens~")


def table(
    rows: Sequence[Sequence[str]],
    header: Sequence[str],
    *,
    right: Collection[int] = (),
    rules_after: Collection[int] = (),
) -> str:
    """A plain text table: columns left-aligned, those numbered in `right` right-aligned
    (figures), and a rule of dashes under each line numbered in `rules_after` (0: the header)."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for n, row in enumerate([header, *rows]):
        cells = (
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        lines.append("  ".join(cells).rstrip())
        if n in rules_after:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def batch_rows(batches: Iterable[Batch]) -> list[list[str]]:
    rows = []
    for batch in batches:
        counts = batch.request_counts
        done = f"{counts.completed}/{counts.failed}/{counts.total}" if counts else "-"
        rows.append(
            [
                batch.id,
                local(batch.created_at).strftime("%Y-%m-%d %H:%M") if batch.created_at else "-",
                batchshape.status_text(batch),
                done,
                (batch.metadata or {}).get("description", ""),
            ]
        )
    return rows


def status_rows(job: Job) -> list[list[str]]:
    rows = []
    width = len(str(len(job.shards)))
    for shard in job.shards:
        if shard.state == QUEUED:
            status = "queued" + (f" ({shard.note})" if shard.note else "")
            counts = f"-/-/{shard.requests or 0}"
        else:
            status = shard.status or shard.state
            total = shard.total if shard.total else shard.requests or 0
            counts = f"{shard.completed or 0}/{shard.failed or 0}/{total}"
        rows.append(
            [
                f"{shard.number:>{width}}/{len(job.shards)}",
                shard.name,
                shard.batch_id or "-",
                status,
                counts,
                f"{shard.tokens:,}",
            ]
        )
    return rows


def job_status(job: Job) -> str:
    """The job's headline and one line per shard: where each request file stands."""
    quota = f", quota {job.max_enqueued_tokens:,} tokens" if job.max_enqueued_tokens else ""
    head = (
        f"Job {job.name}: {plural(len(job.shards), 'shard')}, "
        f"{plural(job.requests, 'request')} "
        f"({job.summary()}{quota})"
    )
    return head + "\n" + table(status_rows(job), STATUS_HEADER)
