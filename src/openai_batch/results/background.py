"""The responses file written by a forked child while this process writes the table.

The join's two outputs are independent: the responses file (raw result lines in request order)
and the table (the data rows with their answers). For a big join each takes seconds of CPU, so
on a machine with a second core the child writes the responses file while the parent joins
the table. The child is a fork: it shares the index (the numpy table of winners, the spill
file, the open result files) copy-on-write, so memory is not doubled, and it runs the very
`write_responses` of the in-process path: the file is byte-identical either way.

The child reports its summary, or its error, through a pipe; a failure there is raised here as
the same error the in-process path would raise. Small joins (and systems without fork) write
in-process: a fork costs more than it saves below BACKGROUND_MIN results.

Why the fork is safe: it happens only while this process runs no other Python thread
(`threading.active_count() == 1`; otherwise the file is written in-process), so no lock of
another thread (a logging handler's, a file object's, the ledger heartbeat's sqlite handle) is
copied held into the child. The C allocators fork cleanly: glibc malloc and the jemalloc under
pyarrow and numpy's buffers take their locks in pthread_atfork handlers; Arrow's own worker
threads are idle between calls (the child makes no Arrow call: it reads the numpy index, the
spill file and the result files with os.pread, and writes one file).

The table waits for the responses file: the caller passes `PendingResponses.result` as the
table's last step before its rename (join.write_table's `ready`), so a child that fails leaves
no new table behind, exactly as the in-process path, which writes the responses file first.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError
from openai_batch.results.index import ResultIndex
from openai_batch.results.merge import ResponsesSummary, write_responses
from openai_batch.results.parallelread import fork, fork_is_safe, portable, restored

BACKGROUND_MIN = 100_000  # results; below this the responses file is written in-process


class PendingResponses:
    """A responses file being written (by a child process, or already written here)."""

    def __init__(self, pid: int | None, reader: int | None, done: ResponsesSummary | None):
        self._pid = pid
        self._reader = reader
        self._done = done

    def result(self) -> ResponsesSummary:
        """The summary, once the file is in place; the child's error is raised here."""
        if self._done is not None:
            return self._done
        assert self._pid is not None and self._reader is not None
        with os.fdopen(self._reader, "rb") as fh:
            self._reader = None
            payload = fh.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        outcome = _loaded(payload)
        if isinstance(outcome, ResponsesSummary) and os.waitstatus_to_exitcode(status) == 0:
            self._done = outcome
            return outcome
        if isinstance(outcome, BaseException):
            raise outcome
        raise BatchError(
            "writing the responses file stopped (its process ended without a result)",
            hint="run the command again; the responses file was not written",
        )

    def cancel(self) -> None:
        """Stop the child (its temp file is removed) and wait for it."""
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None


def start_responses(
    index: ResultIndex, dest: Path, order: Iterable[str] | None = None, *, background: bool = True
) -> PendingResponses:
    """`write_responses(index, dest, order)`, in a forked child when the join is big and
    `background` (the caller has other work meanwhile: the table)."""
    if not background or len(index) < BACKGROUND_MIN or not fork_is_safe():
        return PendingResponses(None, None, write_responses(index, dest, order))
    reader, writer = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - the child; its result is checked by the parent's tests
        os.close(reader)
        _child(index, dest, order, writer)
    os.close(writer)
    return PendingResponses(pid, reader, None)


def _child(index: ResultIndex, dest: Path, order: Iterable[str] | None, writer: int) -> None:
    """Write the file, send the summary or the error, and leave without running the
    parent's cleanup (its open files and temp files are the parent's)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, _stop)  # cancel(): unwind, so the temp file goes
        try:
            outcome: Any = write_responses(index, dest, order)
            code = 0
        except BaseException as exc:  # sent to the parent, which raises it
            outcome = portable(exc, "writing the responses file failed")
        with contextlib.suppress(BaseException), os.fdopen(writer, "wb") as fh:
            fh.write(pickle.dumps(outcome))
    finally:
        os._exit(code)


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit(1)


def _loaded(payload: bytes) -> Any:
    """What the child sent: our own child's pickle through our own pipe."""
    if not payload:
        return None
    try:
        return restored(pickle.loads(payload))  # written by our forked child, through our pipe
    except Exception:
        return None
