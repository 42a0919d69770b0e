"""Uploading a job's queued shards, several at a time, each recorded as it ends.

A file changed since it joined its job is refused, never uploaded in its place; a kill loses at
most the transfers in flight (the rest are recorded and not sent again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from openai_batch.flow import submit
from openai_batch.flow.jobs import check_unchanged, shard_info
from openai_batch.ledger import jobstore
from openai_batch.ledger.jobrecords import QUEUED, Job, Shard
from openai_batch.ledger.store import Ledger
from openai_batch.service.connection import Connection


@dataclass
class UploadReport:
    uploaded: list[submit.Uploaded]
    bytes: int


def pending(job: Job, fresh: Iterable[str] = ()) -> list[Shard]:
    """The job's queued shards that have no upload yet.

    Files whose digest is not in `fresh` are hashed first: a file changed since it joined the
    job is refused, never uploaded in its place."""
    todo = [s for s in job.shards if s.state == QUEUED and not s.file_id]
    fresh_set = set(fresh)
    for shard in todo:
        if shard.digest not in fresh_set:
            check_unchanged(shard)
    return todo


def upload(
    conn: Connection,
    ledger: Ledger,
    job: Job,
    shards: list[Shard],
    *,
    parallel: int = 4,
    progress: Callable[[int], object] | None = None,
    notify: Callable[[str], None] | None = None,
) -> UploadReport:
    """Upload these shards of the job, `parallel` at a time.

    Each upload is recorded as it ends, so a kill loses at most the transfers in flight.
    `progress` hears the bytes sent (a file already on the service counts whole at once);
    `notify` hears what a wait for another command's upload lock waits for."""
    total = sum(s.bytes or 0 for s in shards)
    done: list[submit.Uploaded] = []
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="upload")
    try:
        futures = {
            pool.submit(_upload_one, conn, ledger.path, job, s, progress, notify): s for s in shards
        }
        for future in as_completed(futures):
            uploaded = future.result()
            done.append(uploaded)
            if uploaded.reused and progress is not None:  # nothing was sent: count it as done
                progress(futures[future].bytes or 0)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # uploads in flight finish and are recorded
        raise
    finally:
        pool.shutdown(wait=True)
    done.sort(key=lambda u: str(u.path))
    return UploadReport(done, total)


def _upload_one(
    conn: Connection,
    ledger_path: Path,
    job: Job,
    shard: Shard,
    progress: Callable[[int], object] | None = None,
    notify: Callable[[str], None] | None = None,
) -> submit.Uploaded:
    """One upload on its own ledger connection (SQLite connections are not shared by threads)."""
    with Ledger(ledger_path) as ledger:
        uploaded = submit.ensure_uploaded(
            conn,
            ledger,
            Path(shard.path),
            info=shard_info(job, shard),
            progress=progress,
            notify=notify,
        )
        jobstore.set_shard(ledger, job.name, shard, None, file_id=uploaded.file.id)
    return uploaded
