"""Uploading a job's queued shards, several at a time, each recorded as it ends.

A file changed since it joined its job is refused, never uploaded in its place; a kill loses at
most the transfers in flight (the rest are recorded and not sent again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_batch.flow import submit
from openai_batch.flow.jobs import check_unchanged, shard_info
from openai_batch.ledger import jobstore
from openai_batch.ledger.jobrecords import QUEUED, Job, Shard
from openai_batch.ledger.store import Ledger
from openai_batch.service import api
from openai_batch.ui import console
from openai_batch.ui.progress import progress_bar


@dataclass
class UploadReport:
    uploaded: list[submit.Uploaded]
    bytes: int


def upload_pending(
    conn: api.Connection,
    ledger: Ledger,
    job: Job,
    *,
    parallel: int = 4,
    progress: bool = True,
    fresh: Iterable[str] = (),
) -> UploadReport:
    """Upload the job's queued shards that have no upload yet, `parallel` at a time.

    One progress bar in bytes. Each upload is recorded as it ends, so a kill loses at most the
    transfers in flight. Files whose digest is not in `fresh` are hashed first: a file changed
    since it joined the job is refused, never uploaded in its place.
    """
    todo = [s for s in job.shards if s.state == QUEUED and not s.file_id]
    if not todo:
        return UploadReport([], 0)
    fresh_set = set(fresh)
    for shard in todo:
        if shard.digest not in fresh_set:
            check_unchanged(shard)
    total = sum(s.bytes or 0 for s in todo)
    bar = progress_bar(
        enabled=progress,
        total=total,
        unit="B",
        unit_divisor=1000,
        desc=f"uploading {console.plural(len(todo), 'file')}",
    )
    done: list[submit.Uploaded] = []
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="upload")
    try:
        futures = {pool.submit(_upload_one, conn, ledger.path, job, s, bar.update): s for s in todo}
        for future in as_completed(futures):
            uploaded = future.result()
            done.append(uploaded)
            if uploaded.reused:  # nothing was sent: count it as done
                bar.update(futures[future].bytes or 0)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # uploads in flight finish and are recorded
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    done.sort(key=lambda u: str(u.path))
    return UploadReport(done, total)


def _upload_one(
    conn: api.Connection,
    ledger_path: Path,
    job: Job,
    shard: Shard,
    progress: Callable[[int], object] | None = None,
) -> Any:
    """One upload on its own ledger connection (SQLite connections are not shared by threads)."""
    with Ledger(ledger_path) as ledger:
        uploaded = submit.ensure_uploaded(
            conn,
            ledger,
            Path(shard.path),
            info=shard_info(job, shard),
            progress=progress,
            notify=console.note,
        )
        jobstore.set_shard(ledger, job.name, shard, None, file_id=uploaded.file.id)
    return uploaded
