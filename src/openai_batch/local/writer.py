"""A thread that runs writes in the order given, so the next block is built while this one is
written (a file write releases the GIL): make-batch-file's shards and the join's CSV/TSV table.

At most `depth` jobs wait (memory holds a few blocks, however fast they are made). The first
failure (a full disk, a folder gone) is raised in the submitting thread, at the next submit or
at `stop`; jobs after it are skipped, so nothing is written past a failed write.

Ctrl-C is held off while the submitting thread is inside the queue (local/interrupts.py): a
KeyboardInterrupt raised between a lock's acquire and the `try` that releases it would leave
the queue's lock held, and the abort that follows would wait on it for ever.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from openai_batch.local import interrupts


class OrderedWriter:
    """A thread running jobs in order; its first failure is raised in the submitting thread."""

    def __init__(self, name: str, depth: int = 3) -> None:
        self._jobs: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize=depth)
        self._failure: BaseException | None = None
        self._discard = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object]) -> None:
        self._raise()
        with interrupts.deferred():
            self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._failure is None and not self._discard:
                try:
                    job()
                except BaseException as exc:
                    self._failure = exc

    def stop(self, discard: bool = False) -> None:
        """Wait for the queued jobs (or skip them when discarding); raise a failure."""
        self._discard = discard
        if self._thread.is_alive():
            with interrupts.deferred():
                self._jobs.put(None)
            self._thread.join()
        if not discard:
            self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure
