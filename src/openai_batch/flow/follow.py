"""THE polling loop, for batches (get-batch-results --wait) and for jobs (flow/jobs).

One backoff: the first polls come `poll_interval` apart, then the wait grows x1.5 up to
MAX_POLL_INTERVAL while nothing changes, and starts again at `poll_interval` when something
does (a job's shard started, ended or was requeued). Ctrl-C stops the waiting, never the
batches: it becomes StoppedWaiting with the last state seen, and the command says how to resume.
The loop draws nothing: `on_update` gets every state (commands wire it to ui/progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from openai_batch.flow.session import Session
from openai_batch.service import shape as batchshape
from openai_batch.service.batch_calls import is_final
from openai_batch.service.connection import Connection

if TYPE_CHECKING:
    from openai.types import Batch

    from openai_batch.ledger.store import Ledger

MAX_POLL_INTERVAL = 60.0  # never longer between polls, however long a batch runs
BACKOFF = 1.5  # the wait grows by this factor while nothing changes
MIN_STEP = 0.01  # a poll interval of 0 (tests) still grows

State = TypeVar("State")


class StoppedWaiting(Exception):
    """Ctrl-C while waiting: the batches go on; the caller says how to resume.

    `last` is the last state seen: the batches (wait_for), a job (flow/jobs)."""

    def __init__(self, last: Any) -> None:
        super().__init__("stopped waiting")
        self.last = last

    @property
    def batches(self) -> list[Batch]:
        return list(self.last)


@dataclass
class Polled(Generic[State]):
    """What one poll saw: the state, whether it is final, and whether it changed (which starts
    the backoff again)."""

    state: State
    final: bool
    changed: bool = False


def next_interval(interval: float) -> float:
    """The wait after `interval` when nothing changed."""
    return min(max(interval * BACKOFF, MIN_STEP), MAX_POLL_INTERVAL)


def follow(
    poll: Callable[[], Polled[State]],
    *,
    poll_interval: float,
    on_update: Callable[[State], None] | None = None,
    last: State | None = None,
) -> State:
    """Poll until the state is final; `on_update` sees every state. `last` is what a Ctrl-C
    before the first poll answers reports."""
    first = interval = max(0.0, poll_interval)
    try:
        while True:
            polled = poll()
            last = polled.state
            if on_update is not None:
                on_update(polled.state)
            if polled.final:
                return polled.state
            if polled.changed:
                interval = first
            time.sleep(interval)
            interval = next_interval(interval)
    except KeyboardInterrupt:
        raise StoppedWaiting(last) from None


def wait_for(
    conn: Connection,
    ledger: Ledger,
    batch_ids: Sequence[str],
    *,
    poll_interval: float = 5.0,
    on_update: Callable[[list[Batch]], None] | None = None,
) -> list[Batch]:
    """Poll these batches until every one is final, recording each state in the ledger."""
    session = Session(conn, ledger)
    batches = session.batches(batch_ids)
    watch = batchshape.UnknownWatch()
    polls = 0

    def poll() -> Polled[list[Batch]]:
        nonlocal batches, polls
        if polls:
            batches = session.refreshed(batches)
        polls += 1
        for batch in batches:
            watch.see(batch.id, batch.status, batchshape.status_text(batch))
        return Polled(batches, all(is_final(b) for b in batches))

    return follow(poll, poll_interval=poll_interval, on_update=on_update, last=batches)
