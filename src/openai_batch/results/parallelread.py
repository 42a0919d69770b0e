"""Many result files read into the index by two processes: this one and a forked child.

Reading the result lines is the join's biggest serial step (about 4.5 CPU seconds per million
results, orjson and the answer's shape per line), and the files are independent: a job's shards
leave one output and one error file each. With enough bytes to read (PARALLEL_MIN_BYTES) and
more than one file, a forked child reads about half of them (by size) while this process reads
the others. The child writes its answers to a spill file of its own and sends its records and
counts (filereader.FileRead) through a pipe; the index keeps the child's spill file as it is
(AnswerStore: each blob knows its file), so nothing is copied after the child is done (appending
it to the index's spill cost ~0.1 s per million results, one core and the disk, in the serial
part of the join). The reads come back in the order the files were given, so the index keeps
them exactly as if it had read them one by one: same records, same counts, same key order.

The fork is taken only when it is safe (background.fork_is_safe: Linux, no other thread), as
for the responses file; otherwise, and for small joins, the files are read here one by one. An
error in the child (a file that cannot be read) is raised here as the same error.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError
from openai_batch.results.filereader import FileJob, FileRead, read_file

PARALLEL_MIN_BYTES = 64 << 20  # below this a fork costs more than it saves


def fork_is_safe() -> bool:
    """Linux, and no Python thread but this one alive: no lock another thread holds is copied
    held into the child (see results/background.py)."""
    return hasattr(os, "fork") and sys.platform == "linux" and threading.active_count() == 1


def fork() -> int:
    """os.fork, the standard streams flushed first (buffered text is not written twice)."""
    sys.stdout.flush()
    sys.stderr.flush()
    return os.fork()


def read_all(jobs: list[FileJob], spill: IO[bytes], spill_at: int) -> list[FileRead]:
    """Every job's FileRead, in the jobs' order, their answers in `spill` from `spill_at`."""
    size = sum(_size(job.path) for job in jobs)
    if len(jobs) < 2 or size < PARALLEL_MIN_BYTES or not fork_is_safe():
        return _read_here(jobs, spill, spill_at)
    theirs = _half(jobs)
    chosen = set(theirs)  # a set: a job of 2,000 shards has 2,000 files
    mine = [job for job in jobs if job not in chosen]
    spill.flush()  # the child must not inherit (and write again) buffered bytes
    child_spill = _temp_file(jobs[0].path.parent)
    try:
        reader, writer = os.pipe()
        pid = fork()
        if pid == 0:  # pragma: no cover - the child; its result is checked by the parent
            os.close(reader)
            _child(theirs, child_spill, writer)
        os.close(writer)
        try:
            reads = dict(zip(mine, _read_here(mine, spill, spill_at), strict=True))
            spill.flush()
        except BaseException:
            _stop(pid, reader)
            raise
        theirs_read = _received(pid, reader)
    except BaseException:
        child_spill.close()
        raise
    for job, read in zip(theirs, theirs_read, strict=True):
        read.spill_file = child_spill  # the index keeps it open (AnswerStore.add)
        reads[job] = read
    return [reads[job] for job in jobs]


def _read_here(jobs: list[FileJob], spill: IO[bytes], spill_at: int) -> list[FileRead]:
    reads = []
    for job in jobs:
        read = read_file(job, spill, spill_at)
        spill_at = read.spill_end
        reads.append(read)
    return reads


def _half(jobs: list[FileJob]) -> list[FileJob]:
    """About half of the bytes, largest files first (the child's share)."""
    theirs: list[FileJob] = []
    mine_size = theirs_size = 0
    for job in sorted(jobs, key=lambda j: -_size(j.path)):
        if theirs_size < mine_size:
            theirs.append(job)
            theirs_size += _size(job.path)
        else:
            mine_size += _size(job.path)
    return theirs


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read_file says what is wrong with it


def _temp_file(folder: Path) -> IO[bytes]:
    """The child's spill: beside the downloads, as the index's own, else in the temp folder."""
    try:
        return tempfile.TemporaryFile(prefix=".results-index.", dir=folder)
    except OSError:
        return tempfile.TemporaryFile(prefix="openai-batch-results.")


def _child(jobs: list[FileJob], spill: IO[bytes], writer: int) -> None:
    """Read the jobs, send the reads or the error, and leave without running the parent's
    cleanup (its open files and temp files are the parent's)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, _exit)
        try:
            outcome: Any = _read_here(jobs, spill, 0)
            spill.flush()
            code = 0
        except BaseException as exc:  # sent to the parent, which raises it
            outcome = portable(exc, "reading the result files failed")
        with contextlib.suppress(BaseException), os.fdopen(writer, "wb") as fh:
            pickle.dump(outcome, fh, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(code)


def _exit(_signum: int, _frame: Any) -> None:
    os._exit(1)


class PipedError(Exception):
    """An error on its way from a forked child whose own pickle does not survive the trip:
    its message, hint parts and exit code, rebuilt as a BatchError by `restored`."""


def portable(exc: BaseException, failed: str) -> Any:
    """The error as a forked child sends it to its parent: itself when it survives pickling (a
    BatchError keeps its class, exit code and hint with its commands as data), else its parts
    (`failed` words an error that is not ours)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        if isinstance(exc, BatchError):
            return PipedError(exc.message, exc.hint_parts, exc.exit_code)
        return PipedError(f"{failed}: {exc}", None, 1)
    return exc


def restored(outcome: Any) -> Any:
    """What a child sent, with a PipedError made a BatchError again."""
    if not isinstance(outcome, PipedError):
        return outcome
    message, hint, exit_code = outcome.args
    error = BatchError(message, hint=hint)
    error.exit_code = exit_code
    return error


def _received(pid: int, reader: int) -> list[FileRead]:
    """The child's reads, once it has ended; its error raised here."""
    with os.fdopen(reader, "rb") as fh:
        try:
            outcome = restored(pickle.load(fh))  # written by our forked child, through our pipe
        except Exception:
            outcome = None
        except BaseException:  # Ctrl-C while waiting for it: the child ends too
            _end(pid)
            raise
    _, status = os.waitpid(pid, 0)
    if isinstance(outcome, list) and os.waitstatus_to_exitcode(status) == 0:
        return outcome
    if isinstance(outcome, BaseException):
        raise outcome
    raise BatchError(
        "reading the result files stopped (its second process ended without a result)",
        hint="run the command again (the downloads are kept)",
    )


def _stop(pid: int, reader: int) -> None:
    """The parent failed (or was interrupted): end the child and wait for it."""
    _end(pid)
    os.close(reader)


def _end(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
