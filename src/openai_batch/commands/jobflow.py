"""What run, start-batch and get-batch-results --job share: follow a job, then collect it.

Not a command itself: the commands parse their options and hand a registered job here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.commands.options import EXIT_INTERRUPTED, EXIT_NOT_ALL_OK
from openai_batch.flow import collect, jobbatches, jobs, jobupload, resolve
from openai_batch.flow import follow as following
from openai_batch.ledger.jobrecords import QUEUED, Job
from openai_batch.ledger.store import Ledger
from openai_batch.results.outputs import Outputs
from openai_batch.service.batch_calls import is_final
from openai_batch.service.connection import Connection
from openai_batch.ui import batchview, console, hints, progress, tables
from openai_batch.ui import collected as collected_view

if TYPE_CHECKING:
    from openai.types import Batch


@dataclass
class Follow:
    """How to follow a job and what to write at the end."""

    wait: bool = False
    poll_interval: float = 5.0
    parallel: int = 4
    quiet: bool = False
    as_json: bool = False
    outputs: Outputs = field(default_factory=Outputs)
    announce_existing: bool = True  # "Already started: ..." for shards started before
    collect_when_done: bool = True  # without --wait, still write the results if all are final
    fresh: list[str] = field(default_factory=list)  # digests just written (no need to re-hash)
    extra_json: dict[str, Any] = field(default_factory=dict)


def follow_job(conn: Connection, ledger: Ledger, job: Job, how: Follow) -> int:
    """Upload what is not uploaded, start what the quota admits, and (with wait) see it through."""
    if not how.as_json:
        console.note(_headline(job))
        if how.announce_existing:
            for shard in job.shards:
                if shard.batch_id:
                    where = console.shown(shard.path)
                    console.say(
                        f"Already started: {shard.batch_id}  {shard.status}  ({where}); "
                        "not starting it again (--force starts another)"
                    )
    uploads = _upload(conn, ledger, job, how)
    if uploads.uploaded and not how.as_json:
        fresh = sum(1 for u in uploads.uploaded if not u.reused)
        there = len(uploads.uploaded) - fresh
        already = f"{console.plural(there, 'file')} {'was' if there == 1 else 'were'} already "
        if fresh == 0:
            console.note(f"Nothing uploaded: {already}on the service")
        else:
            sent = (
                f"Uploaded {console.plural(fresh, 'file')} ({console.human_bytes(uploads.bytes)})"
            )
            console.note(sent + (f"; {already}there" if there else ""))
    job, events = jobs.step(
        conn, ledger, job.name, poll_interval=how.poll_interval, notify=console.note
    )
    started = [e for e in events if e.kind in ("started", "reused")]
    if not how.as_json:
        for event in events:
            say_event(event, first=True)
    if how.wait:
        try:
            job = _follow(conn, ledger, job, how)
        except following.StoppedWaiting as stopped:
            return _stopped(stopped.last, how)
    if job.finished and (how.wait or how.collect_when_done):
        return finish_job(conn, ledger, job, how)
    return _not_finished(job, started, how)


def _upload(conn: Connection, ledger: Ledger, job: Job, how: Follow) -> jobupload.UploadReport:
    """The job's shards not uploaded yet, a few at a time, under one bar in bytes."""
    todo = jobupload.pending(job, how.fresh)
    if not todo:
        return jobupload.UploadReport([], 0)
    with progress.Bar(
        enabled=not how.quiet,
        total=sum(s.bytes or 0 for s in todo),
        unit="B",
        unit_divisor=1000,
        desc=f"uploading {console.plural(len(todo), 'file')}",
    ) as bar:
        return jobupload.upload(
            conn, ledger, job, todo, parallel=how.parallel, progress=bar.advance,
            notify=console.note,
        )  # fmt: skip


def _follow(conn: Connection, ledger: Ledger, job: Job, how: Follow) -> Job:
    """Follow the job to the end under one bar over all its requests; what happens to its
    shards is said above the bar."""
    with progress.Bar(
        enabled=not how.quiet, total=job.requests, unit=" req", desc=job.summary()
    ) as bar:

        def on_update(moved: jobs.Moved) -> None:
            if not how.as_json:
                for event in moved.events:
                    bar.write(partial(say_event, event))
            bar.show(moved.job.done_requests(), text=moved.job.summary())

        return jobs.wait_for_job(
            conn, ledger, job.name, poll_interval=how.poll_interval, on_update=on_update,
            notify=console.note,
        )  # fmt: skip


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


def resume_args(job: Job, how: Follow) -> list[str]:
    return hints.job_results_args(job.name, how.outputs)


def _stopped(job: Job, how: Follow) -> int:
    if how.as_json:
        console.print_json({**how.extra_json, "job": job.to_json(), "finished": False})
    else:
        console.say(tables.job_status(job))
    console.note(
        "Stopped waiting; the batches go on (queued shards start when a command on the "
        "job runs). Resume with:"
    )
    console.note(f"  {hints.wait_command(resume_args(job, how))}")
    return EXIT_INTERRUPTED


def _not_finished(job: Job, started: list[jobs.Event], how: Follow) -> int:
    if how.as_json:
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
            {**how.extra_json, "job": job.to_json(), "batches": batches, "finished": False}
        )
        return 0
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
        args = hints.results_args([job.shards[0].batch_id], how.outputs)
    else:
        args = resume_args(job, how)
    console.say(f"  {hints.wait_command(args)}")
    return 0


def _retries_running(job: Job, pending: list[str], how: Follow) -> int:
    """Retry batches of the job's requests still run: the merge waits for them."""
    if how.as_json:
        console.print_json(
            {**how.extra_json, "job": job.to_json(), "finished": False, "retries_running": pending}
        )
        return 0
    console.say(tables.job_status(job))
    console.say(
        f"{console.plural(len(pending), 'retry batch', 'retry batches')} of this job still "
        f"running ({' '.join(pending)}): "
        "nothing downloaded yet. Get the results when they are done with:"
    )
    console.say(f"  {hints.wait_command(resume_args(job, how))}")
    return 0


def finish_job(conn: Connection, ledger: Ledger, job: Job, how: Follow) -> int:
    """Every shard is final: one responses file and one CSV for the whole table, in order."""
    batches = jobbatches.current_batches(conn, ledger, job)
    pending = [b.id for b in batches.retries if not is_final(b)]
    if pending and not how.wait:
        return _retries_running(job, pending, how)
    if pending:
        try:
            with progress.batches_bar(enabled=not how.quiet) as on_update:
                waited = following.wait_for(
                    conn, ledger, pending, poll_interval=how.poll_interval, on_update=on_update
                )
        except following.StoppedWaiting:
            return _stopped(job, how)
        final = {b.id: b for b in waited}
        batches.retries = [final.get(b.id, b) for b in batches.retries]
    roots = jobbatches.roots(ledger, job)
    if not how.as_json:
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
    try:
        collected = collect.collect(
            conn,
            batches.all,
            roots,
            how.outputs,
            groups=resolve.batch_groups(ledger, conn.service, [b.id for b in batches.all]),
            progress=not how.quiet,
            parallel=how.parallel,
            warn=console.warn,
        )
    except collect.ResultsConflict as exc:
        raise hints.conflict_error(exc) from None
    code = 0 if collect.all_ok(batches.shards, collected) else EXIT_NOT_ALL_OK
    if how.as_json:
        console.print_json(
            {
                **how.extra_json,
                "job": job.to_json(),
                "batches": [batchview.batch_json(b) for b in batches.all],
                "finished": True,
                **collected_view.collected_json(collected),
            }
        )
    else:
        collected_view.say_collected(batches.shards, collected)
    return code
