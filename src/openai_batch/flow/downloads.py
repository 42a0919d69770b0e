"""Many batches' output and error files, downloaded a few at a time.

A job of hundreds of shards finishes with hundreds of files: one after another, each costs a
round trip plus its bytes. They download `parallel` at a time instead (as uploads do), each
atomically (a temp file renamed into place) and kept by file id, so a download that breaks off
or a command that is stopped resumes where it left off: files already there are not fetched
again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.ledger.paths import download_path
from openai_batch.service.connection import Connection
from openai_batch.service.file_calls import download_file

if TYPE_CHECKING:
    from openai.types import Batch

DEFAULT_PARALLEL = 4


@dataclass
class Downloaded:
    batch: Batch
    output: Path | None
    errors: Path | None


def download_results(conn: Connection, batch: Batch) -> Downloaded:
    """The batch's output and error files, kept by file id under the ledger's home."""
    paths: list[Path | None] = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            paths.append(None)
            continue
        dest = download_path(conn.service, file_id)
        if not dest.is_file():
            download_file(conn, file_id, dest)
        paths.append(dest)
    return Downloaded(batch, paths[0], paths[1])


def download_all(
    conn: Connection, batches: Sequence[Batch], *, parallel: int = DEFAULT_PARALLEL
) -> list[Downloaded]:
    """Every batch's files (in the batches' order); the first failure is raised once the
    downloads already under way have finished (each one is whole or absent)."""
    if parallel <= 1 or len(batches) <= 1:
        return [download_results(conn, b) for b in batches]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="download")
    try:
        futures = [pool.submit(download_results, conn, b) for b in batches]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
