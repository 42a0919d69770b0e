"""Jobs: the shard state machine and the enqueued-token quota.

A job is a named, ordered list of shards (request files) in the ledger (ledger/jobrecords.py,
ledger/jobstore.py). Each shard is `queued` (maybe uploaded), `running` (a batch is in flight)
or `done` (its batch is final). Every command that touches a job moves it forward from what the
ledger says, so a killed command loses nothing: run it again and it continues.

The enqueued-token quota. OpenAI caps the prompt tokens an organisation may have queued per
model; a batch over it fails with `token_limit_exceeded`. With `max_enqueued_tokens` a shard is
started only while the estimated prompt tokens of the job's running batches, plus its own, stay
within the quota; shards start in order, the next as earlier ones finish. A single shard larger
than the quota is started alone (with a warning) rather than never. A batch that fails with
`token_limit_exceeded` anyway (the organisation's real limit is lower, or other work holds it) is
put back in the queue: it waits for another batch of the job to finish, or, when none is running,
for a delay that doubles up to 30 minutes, and is started again. It is never reported as lost.

Token figures are the offline estimate of estimate/sampled.py, recorded once in the ledger when
the shard joins the job (flow/jobregister.py).

Concurrency: starting is serialised per job by the ledger's cross-process lock
(`job:<service>:<name>`), so two processes on one job never both start a shard or overshoot the
quota; every state change is a compare-and-set on the shard's batch id, so a stale process cannot
undo a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError
from openai_batch.flow import follow, submit
from openai_batch.flow.session import Session
from openai_batch.ledger import jobstore
from openai_batch.ledger.digests import matches
from openai_batch.ledger.jobrecords import DONE, QUEUED, RUNNING, Job, Shard
from openai_batch.ledger.store import Ledger
from openai_batch.requestfile import scan
from openai_batch.service import shape as batchshape
from openai_batch.service.batch_calls import is_final
from openai_batch.service.connection import Connection
from openai_batch.service.failures import TokenLimitRefused

if TYPE_CHECKING:
    from openai.types import Batch

REQUEUE_BASE_FACTOR = 12.0  # a lone requeued shard first waits 12 poll intervals...
REQUEUE_MAX_DELAY = 1800.0  # ...doubling up to 30 minutes
WAIT_FOR_A_FINISH = -1.0  # not_before: start again once another batch of the job is final
LONELY_WARNING_AFTER = 3  # requeues with nothing else running before we say it may never fit


@dataclass
class Event:
    """Something that happened to a shard, for the command to tell the user."""

    kind: str  # started, reused, finished, requeued, over_quota, may_never_fit
    shard: Shard
    batch: Batch | None = None
    message: str = ""
    started: submit.Started | None = None


def is_token_limit_failure(batch: Batch) -> bool:
    if batch.status != "failed" or batch.errors is None:
        return False
    return any(e.code == "token_limit_exceeded" for e in batch.errors.data or [])


def refresh(conn: Connection, ledger: Ledger, job: Job, *, poll_interval: float) -> list[Event]:
    """Poll the running shards' batches; record progress, finishes and token-limit failures."""
    events: list[Event] = []
    running = job.in_state(RUNNING)
    now = Session(conn, ledger).current([s.batch_id for s in running if s.batch_id])
    for shard in running:
        assert shard.batch_id is not None
        batch = now[shard.batch_id]
        counts = _counts(batch)
        if is_token_limit_failure(batch):
            others = any(s.state == RUNNING and s is not shard for s in job.shards)
            event = _requeue(ledger, job, shard, batch, others, poll_interval)
            if event:
                events.append(event)
        elif is_final(batch):
            if jobstore.set_shard(
                ledger, job.name, shard, shard.batch_id, state=DONE, status=batch.status, **counts
            ):
                events.append(Event("finished", shard, batch))
        else:
            jobstore.set_shard(
                ledger, job.name, shard, shard.batch_id, status=batch.status, **counts
            )
    return events


def _counts(batch: Batch) -> dict[str, int | None]:
    c = batch.request_counts
    return {
        "completed": c.completed if c else None,
        "failed": c.failed if c else None,
        "total": c.total if c else None,
    }


def _requeue(
    ledger: Ledger, job: Job, shard: Shard, batch: Batch, others: bool, poll_interval: float
) -> Event | None:
    """Back to the queue: after another batch of the job finishes, or after a growing delay."""
    requeues = shard.requeues + 1
    if others:
        not_before = WAIT_FOR_A_FINISH
        when = "once another batch of this job finishes"
    else:
        delay = min(REQUEUE_MAX_DELAY, poll_interval * REQUEUE_BASE_FACTOR * 2 ** (requeues - 1))
        not_before = time.time() + delay
        when = f"in {delay:.0f} s" if delay >= 1 else "now"
    note = f"token_limit_exceeded x{requeues}"
    changed = jobstore.set_shard(
        ledger,
        job.name,
        shard,
        shard.batch_id,
        state=QUEUED,
        batch_id=None,
        status=None,
        completed=None,
        failed=None,
        total=None,
        requeues=requeues,
        not_before=not_before,
        note=note,
    )
    if not changed:
        return None
    message = (
        f"shard {shard.number} ({shard.name}): batch {batch.id} hit the organisation's "
        f"enqueued-token limit; queued again, to start {when}"
    )
    if not others and requeues >= LONELY_WARNING_AFTER:
        message += (
            f". It failed {requeues} times with nothing else of this job running: the limit for "
            f"this model may be below this shard (~{shard.tokens:,} tokens) or held by other "
            "batches; smaller files (--max-requests) would fit"
        )
    return Event("requeued", shard, batch, message)


def admit(
    conn: Connection,
    ledger: Ledger,
    name: str,
    *,
    emit_over_quota: bool = True,
    poll_interval: float = 5.0,
    notify: Callable[[str], None] | None = None,
) -> list[Event]:
    """Start queued shards, in order, while the quota allows; one process at a time per job.

    `notify` hears, once, that another process holds the job's lock and this one waits."""
    events: list[Event] = []
    probe = jobstore.load_job(ledger, name)
    with ledger.lock(f"job:{probe.service}:{name}", notify=notify):
        job = jobstore.load_job(ledger, name)  # fresh, now that we hold the lock
        quota = job.max_enqueued_tokens or None
        running = len(job.in_state(RUNNING))
        tokens = job.running_tokens()
        now = time.time()
        for shard in job.in_state(QUEUED):
            if not shard.ready(now, running > 0):
                break  # in order: a requeued shard waiting for room holds the line
            if quota is not None and running and tokens + shard.tokens > quota:
                break
            if quota is not None and not running and shard.tokens > quota and emit_over_quota:
                events.append(Event("over_quota", shard, message=_over_quota(shard, quota)))
            try:
                started = _start(conn, ledger, job, shard, notify)
            except TokenLimitRefused as refused:  # Azure fail-fast: nothing was started
                why = str(refused)
                events.append(_refused(ledger, job, shard, running > 0, why, poll_interval))
                break
            batch = started.batch
            final = is_final(batch) and not is_token_limit_failure(batch)
            values: dict[str, Any] = {
                "state": DONE if final else RUNNING,
                "batch_id": batch.id,
                "status": batch.status,
                "file_id": batch.input_file_id,
                "force": 0,
                **_counts(batch),
            }
            jobstore.set_shard(ledger, job.name, shard, None, **values)
            jobstore.record_job_batch(ledger, job.name, shard.number, conn.service, batch.id)
            events.append(
                Event("reused" if started.reused else "started", shard, batch, started=started)
            )
            if not final:
                running += 1
                tokens += shard.tokens
    return events


def _refused(
    ledger: Ledger, job: Job, shard: Shard, others: bool, why: str, poll_interval: float
) -> Event:
    """A create refused for the quota: the shard waits for a finish, or a growing delay."""
    requeues = shard.requeues + 1
    delay = min(REQUEUE_MAX_DELAY, poll_interval * REQUEUE_BASE_FACTOR * 2 ** (requeues - 1))
    not_before = WAIT_FOR_A_FINISH if others else time.time() + delay
    when = "once another batch of this job finishes" if others else f"in {delay:.0f} s"
    jobstore.set_shard(ledger, job.name, shard, None, requeues=requeues, not_before=not_before,
         note=f"refused: token_limit_exceeded x{requeues}")  # fmt: skip
    message = f"shard {shard.number} ({shard.name}): {why}; queued, to start {when}"
    return Event("requeued", shard, None, message)


def _over_quota(shard: Shard, quota: int) -> str:
    return (
        f"shard {shard.number} ({shard.name}) alone is ~{shard.tokens:,} estimated prompt "
        f"tokens, over --max-enqueued-tokens {quota:,}: starting it alone"
    )


def _start(
    conn: Connection,
    ledger: Ledger,
    job: Job,
    shard: Shard,
    notify: Callable[[str], None] | None = None,
) -> submit.Started:
    path = Path(shard.path)
    if path.is_file():
        check_unchanged(shard)
    elif not shard.file_id:
        check_unchanged(shard)  # raises: gone, and never uploaded
    try:
        return submit.start_one(
            conn,
            ledger,
            path,
            metadata=shard_metadata(job, shard),
            endpoint=job.endpoint,
            force=shard.force,
            check=False,
            info=shard_info(job, shard),
            completion_window=completion_window(job),
            notify=notify,
        )
    except OSError as exc:  # the file went away and its upload expired
        raise BatchError(
            f"cannot upload {path} again for shard {shard.number}: {exc}",
            hint="make the request files again with the same template and data",
        ) from None


WINDOW_KEY = "_completion_window"  # kept with the job's metadata, never sent as metadata


def with_window(metadata: dict[str, str], completion_window: str) -> dict[str, str]:
    """The job's metadata as stored: the batches' metadata plus their completion window."""
    return {**metadata, WINDOW_KEY: completion_window}


def completion_window(job: Job) -> str:
    return job.metadata.get(WINDOW_KEY) or "24h"


def shard_metadata(job: Job, shard: Shard) -> dict[str, str]:
    """The job's metadata plus job=NAME and shard=N/M, as far as the API's 16 pairs allow."""
    meta = {k: v for k, v in job.metadata.items() if k != WINDOW_KEY}
    meta = meta or {"description": submit.DEFAULT_DESCRIPTION}
    for key, value in (("job", job.name), ("shard", f"{shard.number}/{len(job.shards)}")):
        if key not in meta and len(meta) < submit.METADATA_MAX_PAIRS:
            meta[key] = value[: submit.METADATA_MAX_VALUE]
    return meta


def shard_info(job: Job, shard: Shard) -> scan.RequestFileInfo:
    """The shard as flow/submit's upload and start know a request file."""
    return scan.RequestFileInfo(
        Path(shard.path), shard.digest, shard.bytes or 0, shard.requests or 0, job.endpoint, None
    )


def check_unchanged(shard: Shard) -> None:
    path = Path(shard.path)
    if not path.is_file():
        raise BatchError(
            f"{path} (shard {shard.number} of its job) is gone and is not uploaded yet",
            hint="make the request files again with the same template and data",
        )
    if not matches(path, shard.digest):
        raise BatchError(
            f"{path} changed since it joined its job: its batch would not match the rows",
            hint="make the request files again with the same template and data, or start a new "
            "job with --job NAME",
        )


def step(
    conn: Connection,
    ledger: Ledger,
    name: str,
    *,
    poll_interval: float = 5.0,
    notify: Callable[[str], None] | None = None,
) -> tuple[Job, list[Event]]:
    """One move: poll what runs, then start what the quota admits. Returns the job after."""
    job = jobstore.load_job(ledger, name, conn.service)
    events = refresh(conn, ledger, job, poll_interval=poll_interval)
    if job.in_state(QUEUED) or any(e.kind == "requeued" for e in events):
        events += admit(conn, ledger, name, poll_interval=poll_interval, notify=notify)
    return jobstore.load_job(ledger, name), events


@dataclass
class Moved:
    """One poll of a job: the job after it, and what happened to its shards."""

    job: Job
    events: list[Event]


def wait_for_job(
    conn: Connection,
    ledger: Ledger,
    name: str,
    *,
    poll_interval: float = 5.0,
    on_update: Callable[[Moved], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> Job:
    """Move the job until every shard's batch is final, in flow/follow's one polling loop.

    A batch that starts, ends or is requeued starts the backoff again at `poll_interval`.
    Ctrl-C raises follow.StoppedWaiting with the job as the ledger has it then."""
    watch = batchshape.UnknownWatch()

    def poll() -> follow.Polled[Moved]:
        job, events = step(conn, ledger, name, poll_interval=poll_interval, notify=notify)
        for shard in job.in_state(RUNNING):
            watch.see(shard.batch_id, shard.status)
        return follow.Polled(Moved(job, events), job.finished, changed=bool(events))

    try:
        return follow.follow(poll, poll_interval=poll_interval, on_update=on_update).job
    except follow.StoppedWaiting:
        raise follow.StoppedWaiting(jobstore.load_job(ledger, name)) from None
