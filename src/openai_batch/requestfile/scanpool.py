"""Checking several request files at once: one worker process per core.

start-batch and upload-batch-file check every local file before anything is uploaded; a job of
20 shards of 50,000 requests is about 24 CPU seconds of checking. The files are independent,
so their checks run in forked worker processes, one per core. What comes back is what checking
them one after another gives: each file's info in order, or the error of the first file (in
the order given) that has one. A file the ledger remembers a pass for is not read at all
(`scan.before_reading`), and each new pass is remembered here, in this process.

Small amounts of checking (under PARALLEL_BYTES), one core, and a process where a fork is not
safe (`results/background.fork_is_safe`: another Python thread alive) are checked here, one
file after another: a worker costs more than it saves there. Workers ignore Ctrl-C; this
process stops them when it is interrupted.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError
from openai_batch.requestfile.limits import FileLimits
from openai_batch.requestfile.scan import (
    RequestFileInfo,
    before_reading,
    read_and_check,
    remember_pass,
    scan_request_file,
)

if TYPE_CHECKING:
    from openai_batch.ledger.checkedfiles import CheckedFiles

PARALLEL_BYTES = 32 << 20  # to check; below this (~0.8 s of checking) one process does it


def scan_request_files(
    paths: Sequence[Path | str],
    *,
    check: bool,
    limits: FileLimits,
    ledger: CheckedFiles | None = None,
) -> list[RequestFileInfo]:
    """`scan_request_file` of each file, the checks in parallel where that pays."""
    files = [Path(p) for p in paths]
    if not check or _workers(files) < 2:  # one after another, stopping at the first error
        return [scan_request_file(f, check=check, limits=limits, ledger=ledger) for f in files]
    outcomes: list[RequestFileInfo | BaseException | None] = []
    for path in files:
        try:
            outcomes.append(before_reading(path, check=True, limits=limits, ledger=ledger))
        except BatchError as exc:
            outcomes.append(exc)
    todo = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if len(todo) > 1:
        checked = _in_workers([files[i] for i in todo], limits, _workers(files))
    else:
        checked = [_checked(files[i], limits) for i in todo]
    for i, done in zip(todo, checked, strict=True):
        outcomes[i] = done
        if ledger is not None and isinstance(done, RequestFileInfo):
            remember_pass(ledger, done, limits)
    infos = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        infos.append(outcome)
    return infos


def _workers(files: list[Path]) -> int:
    """How many worker processes to check `files` with (1: in this process, in order)."""
    from openai_batch.results.background import fork_is_safe

    if len(files) < 2 or not fork_is_safe():
        return 1
    try:
        size = sum(f.stat().st_size for f in files)
    except OSError:
        return 1  # said by the check itself, in order
    if size < PARALLEL_BYTES:
        return 1
    return min(len(files), os.cpu_count() or 1)  # the files the ledger knows are not sent


def _in_workers(
    files: list[Path], limits: FileLimits, workers: int
) -> list[RequestFileInfo | BaseException]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from openai_batch.validate import sdk_types

    sdk_types.batch_endpoints()  # the request types, loaded once here and shared by the fork
    context = multiprocessing.get_context("fork")
    # An executor, not multiprocessing.Pool: a worker killed mid-file (the out-of-memory
    # killer) breaks it with BrokenProcessPool, where a Pool waits for that answer forever.
    pool = ProcessPoolExecutor(
        min(workers, len(files)), mp_context=context, initializer=_ignore_interrupts
    )
    try:
        return list(pool.map(_checked, files, [limits] * len(files)))
    except BrokenProcessPool:
        raise BatchError(
            "a worker process checking the request files stopped before it finished "
            "(killed, perhaps by the system for want of memory); nothing was uploaded",
            hint="run the command again; with little free memory, give it fewer files at a time",
        ) from None
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # on Ctrl-C or an error, no worker goes on checking
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is this process's to handle


def _checked(path: Path, limits: FileLimits) -> RequestFileInfo | BaseException:
    """One file read and checked in full: its info, or its error as a value (so the first in
    the files' order is raised, whichever worker finished first)."""
    try:
        return read_and_check(path, check=True, limits=limits)
    except Exception as exc:
        return _portable(exc)


def _portable(exc: Exception) -> BaseException:
    """The error as it can travel from a worker (pickled); else its message as a BatchError."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return BatchError(f"checking failed: {exc}")
    return exc
