"""What run, start-batch and get-batch-results --job say while a job moves and when it stops:
the headline, the shards started, the bars, the status table, the results written (or --json).

`JobPrinter` is the CLI's `flow/jobrun.JobView`: the flow tells it each step, and `show` says
how it ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.flow import jobs
from openai_batch.flow.jobbatches import JobBatches
from openai_batch.flow.jobrun import JobOutcome
from openai_batch.flow.jobupload import UploadReport
from openai_batch.ledger.jobrecords import QUEUED, Job, Shard
from openai_batch.results.outputs import Outputs
from openai_batch.ui import batchview, console, hints, progress, tables
from openai_batch.ui import collected as collected_view

if TYPE_CHECKING:
    from openai.types import Batch


class JobPrinter:
    """Says what happens to a job on stderr (and the results lines on stdout), or, with --json,
    one JSON object at the end."""

    def __init__(
        self,
        outputs: Outputs,
        *,
        quiet: bool = False,
        as_json: bool = False,
        announce_existing: bool = True,  # "Already started: ..." for shards started before
        extra_json: dict[str, Any] | None = None,
    ) -> None:
        self.outputs = outputs
        self.quiet = quiet
        self.as_json = as_json
        self.announce_existing = announce_existing
        self.extra_json = extra_json or {}

    # -- on the way (flow/jobrun.JobView) ------------------------------------------------------

    def begin(self, job: Job) -> None:
        if self.as_json:
            return
        console.note(_headline(job))
        if self.announce_existing:
            for shard in job.shards:
                if shard.batch_id:
                    where = console.shown(shard.path)
                    console.say(
                        f"Already started: {shard.batch_id}  {shard.status}  ({where}); "
                        "not starting it again (--force starts another)"
                    )

    @contextmanager
    def uploading(self, todo: list[Shard]) -> Iterator[Callable[[int], None]]:
        """The job's shards not uploaded yet, under one bar in bytes."""
        with progress.Bar(
            enabled=not self.quiet,
            total=sum(s.bytes or 0 for s in todo),
            unit="B",
            unit_divisor=1000,
            desc=f"uploading {console.plural(len(todo), 'file')}",
        ) as bar:
            yield bar.advance

    def uploaded(self, report: UploadReport) -> None:
        if self.as_json:
            return
        fresh = sum(1 for u in report.uploaded if not u.reused)
        there = len(report.uploaded) - fresh
        already = f"{console.plural(there, 'file')} {'was' if there == 1 else 'were'} already "
        if fresh == 0:
            console.note(f"Nothing uploaded: {already}on the service")
        else:
            sent = f"Uploaded {console.plural(fresh, 'file')} ({console.human_bytes(report.bytes)})"
            console.note(sent + (f"; {already}there" if there else ""))

    def started(self, events: list[jobs.Event]) -> None:
        if not self.as_json:
            for event in events:
                say_event(event, first=True)

    @contextmanager
    def following(self, job: Job) -> Iterator[Callable[[jobs.Moved], None]]:
        """The job to its end under one bar over all its requests; what happens to its shards
        is said above the bar."""
        with progress.Bar(
            enabled=not self.quiet, total=job.requests, unit=" req", desc=job.summary()
        ) as bar:

            def on_update(moved: jobs.Moved) -> None:
                if not self.as_json:
                    for event in moved.events:
                        bar.write(partial(say_event, event))
                bar.show(moved.job.done_requests(), text=moved.job.summary())

            yield on_update

    def waiting_for_retries(self) -> Any:
        return progress.batches_bar(enabled=not self.quiet)

    def collecting(self, job: Job, batches: JobBatches) -> None:
        if self.as_json:
            return
        if len(job.shards) == 1 and batches.shards:
            console.info(
                batchview.describe(
                    batches.shards[0], request_file=console.shown(job.shards[0].path)
                )
            )
            console.info()
        else:
            console.info(tables.job_status(job))
        if batches.retries:
            retries = console.plural(len(batches.retries), "retry batch", "retry batches")
            console.say(f"(merging {retries} made from these files)")

    def note(self, text: str) -> None:
        console.note(text)

    def warn(self, text: str) -> None:
        console.warn(text)

    # -- the end ---------------------------------------------------------------------------------

    def show(self, outcome: JobOutcome) -> None:
        """How following the job ended: stopped, still running, or the results written."""
        job = outcome.job
        if outcome.stopped:
            self._stopped(job)
        elif outcome.retries_running:
            self._retries_running(job, outcome.retries_running)
        elif outcome.collected is not None and outcome.batches is not None:
            self._collected(job, outcome)
        else:
            self._not_finished(job, outcome.started)

    def _resume_args(self, job: Job) -> list[str]:
        return hints.job_results_args(job.name, self.outputs)

    def _stopped(self, job: Job) -> None:
        if self.as_json:
            console.print_json({**self.extra_json, "job": job.to_json(), "finished": False})
        else:
            console.say(tables.job_status(job))
        console.note(
            "Stopped waiting; the batches go on (queued shards start when a command on the "
            "job runs). Resume with:"
        )
        console.note(f"  {hints.wait_command(self._resume_args(job))}")

    def _not_finished(self, job: Job, started: list[jobs.Event]) -> None:
        if self.as_json:
            batches = [
                batchview.batch_json(
                    e.batch,
                    target=e.shard.path,
                    reused=e.kind == "reused",
                    job=job.name,
                    shard=e.shard.number,
                )
                for e in started
                if e.batch is not None
            ]
            console.print_json(
                {**self.extra_json, "job": job.to_json(), "batches": batches, "finished": False}
            )
            return
        queued = job.in_state(QUEUED)
        if len(job.shards) > 1 or queued:
            console.say(tables.job_status(job))
        if queued:
            console.say(
                f"{_shards_wait(len(queued))} for room under the quota; they start whenever a "
                "command on this job runs. Keep the job moving and get the results with:"
            )
        else:
            console.say("Get the results when they are done with:")
        if len(job.shards) == 1 and not queued and job.shards[0].batch_id:
            args = hints.results_args([job.shards[0].batch_id], self.outputs)
        else:
            args = self._resume_args(job)
        console.say(f"  {hints.wait_command(args)}")

    def _retries_running(self, job: Job, pending: list[str]) -> None:
        """Retry batches of the job's requests still run: the merge waits for them."""
        if self.as_json:
            console.print_json(
                {**self.extra_json, "job": job.to_json(), "finished": False,
                 "retries_running": pending}
            )  # fmt: skip
            return
        console.say(tables.job_status(job))
        console.say(
            f"{console.plural(len(pending), 'retry batch', 'retry batches')} of this job still "
            f"running ({' '.join(pending)}): "
            "nothing downloaded yet. Get the results when they are done with:"
        )
        console.say(f"  {hints.wait_command(self._resume_args(job))}")

    def _collected(self, job: Job, outcome: JobOutcome) -> None:
        assert outcome.batches is not None and outcome.collected is not None
        if self.as_json:
            console.print_json(
                {
                    **self.extra_json,
                    "job": job.to_json(),
                    "batches": [batchview.batch_json(b) for b in outcome.batches.all],
                    "finished": True,
                    **collected_view.collected_json(outcome.collected),
                }
            )
        else:
            collected_view.say_collected(outcome.batches.shards, outcome.collected)


def _shards_wait(n: int) -> str:
    return "1 shard waits" if n == 1 else f"{n:,} shards wait"


def _headline(job: Job) -> str:
    quota = (
        f", at most {job.max_enqueued_tokens:,} estimated prompt tokens enqueued"
        if job.max_enqueued_tokens
        else ""
    )
    return (
        f"Job {job.name}: {console.plural(len(job.shards), 'request file')}, "
        f"{console.plural(job.requests, 'request')}, "
        f"~{sum(s.tokens for s in job.shards):,} prompt tokens{quota}"
    )


def already_started(batch: Batch, target: str, origin: str | None) -> str:
    """Why nothing was started: where and when the same requests ran, and how to run afresh."""
    text = f"Already started: {batch.id}  {batch.status}  ({target}); not starting it again"
    if origin and Path(origin).resolve() != Path(target).resolve():
        when = datetime.fromtimestamp(batch.created_at).strftime("%Y-%m-%d %H:%M")
        text += f"\n  the same requests were started from {origin} on {when}"
    fresh = hints.start_again(target, force=True)
    return text + f"\n  to run them again (and pay again): {fresh}"


def say_event(event: jobs.Event, first: bool = False) -> None:
    """Starts go to stdout on the first pass (as start-batch prints them), the rest to stderr."""
    shard = event.shard
    if event.kind in ("started", "reused") and event.batch is not None:
        if event.kind == "reused":
            origin = event.started.origin if event.started is not None else None
            text = already_started(event.batch, console.shown(shard.path), origin)
        else:
            where = console.shown(shard.path)
            text = f"Started batch: {event.batch.id}  {event.batch.status}  ({where})"
        if first:
            console.say(text)
        else:
            console.note(text)
    elif event.kind == "finished" and event.batch is not None:
        console.note(
            f"Shard {shard.number} ({shard.name}): batch {event.batch.id} {event.batch.status}"
        )
    elif event.message:
        console.warn(event.message)
