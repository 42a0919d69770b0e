"""Following a job to its end: upload what is not uploaded, start what the quota admits, wait (with
--wait), then collect every shard's results into one responses file and one table.

What run, start-batch and get-batch-results --job share. Nothing here prints: what happens on the
way is told to a `JobView` (the CLI's is `ui/jobview.JobPrinter`), and how it ended is returned
as a `JobOutcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from openai_batch.flow import collect, jobbatches, jobs, jobupload, resolve
from openai_batch.flow import follow as following
from openai_batch.ledger.jobrecords import Job, Shard
from openai_batch.ledger.store import Ledger
from openai_batch.results.outputs import Outputs
from openai_batch.service.batch_calls import is_final
from openai_batch.service.connection import Connection

if TYPE_CHECKING:
    from openai.types import Batch


@dataclass
class Follow:
    """How to follow a job and what to write at the end."""

    wait: bool = False
    poll_interval: float = 5.0
    parallel: int = 4
    outputs: Outputs = field(default_factory=Outputs)
    collect_when_done: bool = True  # without --wait, still write the results if all are final
    fresh: list[str] = field(default_factory=list)  # digests just written (no need to re-hash)
    progress: bool = True  # the table writer's bar while collecting


class JobView(Protocol):
    """What a person is told while a job moves (each step as it happens)."""

    def begin(self, job: Job) -> None:
        """Before anything is done: the job and its shards started earlier."""

    def uploading(self, todo: list[Shard]) -> AbstractContextManager[Callable[[int], None]]:
        """Around the uploads of `todo`: gives the callback that hears each chunk's bytes."""
        ...

    def uploaded(self, report: jobupload.UploadReport) -> None:
        """What the uploads did (called only when something was to upload)."""

    def started(self, events: list[jobs.Event]) -> None:
        """What the first step did: shards started or found started, refusals."""

    def following(self, job: Job) -> AbstractContextManager[Callable[[jobs.Moved], None]]:
        """Around the wait for the job: gives the callback that hears each move."""
        ...

    def waiting_for_retries(self) -> AbstractContextManager[Callable[[Sequence[Batch]], None]]:
        """Around the wait for retry batches of the job's requests that still run."""
        ...

    def collecting(self, job: Job, batches: jobbatches.JobBatches) -> None:
        """Every batch is final: the results are about to be downloaded and written."""

    def note(self, text: str) -> None:
        """A side remark of the ledger or the service (a lock waited for, a retry)."""

    def warn(self, text: str) -> None:
        """Something odd about the data before the join."""


@dataclass
class JobOutcome:
    """How following a job ended: stopped, still running, or collected."""

    job: Job
    stopped: bool = False  # Ctrl-C stopped the waiting; the batches go on
    started: list[jobs.Event] = field(default_factory=list)  # started or reused on this pass
    retries_running: list[str] = field(default_factory=list)  # ids: nothing collected yet
    batches: jobbatches.JobBatches | None = None  # when collected
    collected: collect.Collected | None = None

    @property
    def all_ok(self) -> bool:
        """Collected, and every request has a success (see `collect.all_ok`)."""
        if self.collected is None or self.batches is None:
            return False
        return collect.all_ok(self.batches.shards, self.collected)


def follow_job(
    conn: Connection, ledger: Ledger, job: Job, how: Follow, view: JobView
) -> JobOutcome:
    """Upload what is not uploaded, start what the quota admits, and (with wait) see it through."""
    view.begin(job)
    todo = jobupload.pending(job, how.fresh)
    if todo:
        with view.uploading(todo) as advance:
            uploads = jobupload.upload(
                conn, ledger, job, todo, parallel=how.parallel, progress=advance,
                notify=view.note,
            )  # fmt: skip
        if uploads.uploaded:
            view.uploaded(uploads)
    job, events = jobs.step(
        conn, ledger, job.name, poll_interval=how.poll_interval, notify=view.note
    )
    started = [e for e in events if e.kind in ("started", "reused")]
    view.started(events)
    if how.wait:
        try:
            with view.following(job) as on_update:
                job = jobs.wait_for_job(
                    conn, ledger, job.name, poll_interval=how.poll_interval,
                    on_update=on_update, notify=view.note,
                )  # fmt: skip
        except following.StoppedWaiting as stopped:
            return JobOutcome(stopped.last, stopped=True, started=started)
    if job.finished and (how.wait or how.collect_when_done):
        return finish_job(conn, ledger, job, how, view)
    return JobOutcome(job, started=started)


def finish_job(
    conn: Connection, ledger: Ledger, job: Job, how: Follow, view: JobView
) -> JobOutcome:
    """Every shard is final: one responses file and one CSV for the whole table, in order."""
    batches = jobbatches.current_batches(conn, ledger, job)
    pending = [b.id for b in batches.retries if not is_final(b)]
    if pending and not how.wait:
        return JobOutcome(job, retries_running=pending)
    if pending:
        try:
            with view.waiting_for_retries() as on_update:
                waited = following.wait_for(
                    conn, ledger, pending, poll_interval=how.poll_interval, on_update=on_update
                )
        except following.StoppedWaiting:
            return JobOutcome(job, stopped=True)
        final = {b.id: b for b in waited}
        batches.retries = [final.get(b.id, b) for b in batches.retries]
    roots = jobbatches.roots(ledger, job)
    view.collecting(job, batches)
    collected = collect.collect(
        conn,
        batches.all,
        roots,
        how.outputs,
        groups=resolve.batch_groups(ledger, conn.service, [b.id for b in batches.all]),
        progress=how.progress,
        parallel=how.parallel,
        warn=view.warn,
    )
    return JobOutcome(job, batches=batches, collected=collected)
