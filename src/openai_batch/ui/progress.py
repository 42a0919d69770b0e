"""Progress bars: the one helper over tqdm for the whole tool.

Bars go to stderr and are drawn only on a terminal (a log file or a pipe gets no bar lines
such as `Rendering: 0 rows [00:00, ? rows/s]`), never with -q. Library code draws nothing: it
takes a callback (`on_update`, `progress`), and the command wires the callback to a bar here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from openai_batch.ui import console

if TYPE_CHECKING:
    from openai.types import Batch

# Whole counts (`9/9`, `120,000/120,000`) beside rates in readable units (`10.4k req/s`).
_COUNTED = "{l_bar}{bar}| {n:,.0f}/{total:,.0f} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_COUNTING = "{desc}: {n:,.0f}{unit} [{elapsed}, {rate_fmt}{postfix}]"


def progress_bar(*, enabled: bool = True, **options: Any) -> Any:
    """A tqdm bar on stderr, drawn only on a terminal and not with -q. Rates in readable units
    (10.4k req/s, 1.2MB/s); bytes are scaled like the rate (94.2kB/1.20MB)."""
    from tqdm import tqdm

    # No monitor thread (tqdm starts one per process, even for a disabled bar): it only
    # tunes `miniters` for stalled loops, and a live thread keeps the results join from
    # forking its responses writer (results/background.py forks only with no other thread).
    tqdm.monitor_interval = 0
    options.setdefault("unit_scale", True)
    options.setdefault("dynamic_ncols", True)
    if options.get("unit") != "B":
        counted = options.get("total") is not None
        options.setdefault("bar_format", _COUNTED if counted else _COUNTING)
    shown = enabled and not console.is_quiet()
    return tqdm(file=sys.stderr, disable=None if shown else True, **options)


def rendering_bar(total_rows: int | None) -> Any:
    """make-batch-file's bar while rows render (the general path and the fast path alike; the
    CLI hands it to the library as `MakeOptions.progress`); it goes away once the files are
    written."""
    return progress_bar(total=total_rows, unit=" rows", desc="Rendering", leave=False)


class Bar:
    """A bar driven by callbacks: `show` sets where it stands, `advance` adds to it (thread
    safe, for uploads), `write` prints a line without tearing the bar."""

    def __init__(self, *, enabled: bool = True, **options: Any) -> None:
        self._bar = progress_bar(enabled=enabled, **options)
        self.enabled = enabled

    def show(self, done: int, total: int | None = None, text: str | None = None) -> None:
        if total is not None:
            self._bar.total = total
        self._bar.n = done
        if text is not None:
            self._bar.set_description_str(text, refresh=False)
        self._bar.refresh()

    def advance(self, amount: int) -> None:
        self._bar.update(amount)

    def write(self, emit: Callable[[], object]) -> None:
        """Run `emit` (which prints) with the bar cleared first and drawn again after."""
        if not self.enabled:
            emit()
            return
        with self._bar.external_write_mode(file=sys.stderr):
            emit()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextmanager
def batches_bar(
    *, enabled: bool = True, batches: Sequence[Batch] = ()
) -> Iterator[Callable[[Sequence[Batch]], None]]:
    """A bar over the requests of some batches; yields the `on_update` for flow.follow."""
    with Bar(
        enabled=enabled, total=_total(batches), unit=" req", desc=_batches_text(batches)
    ) as bar:

        def on_update(now: Sequence[Batch]) -> None:
            bar.show(_done(now), _total(now), _batches_text(now))

        yield on_update


def _total(batches: Sequence[Batch]) -> int:
    return sum(b.request_counts.total for b in batches if b.request_counts) or 0


def _done(batches: Sequence[Batch]) -> int:
    return sum(
        b.request_counts.completed + b.request_counts.failed for b in batches if b.request_counts
    )


def _batches_text(batches: Sequence[Batch]) -> str:
    if len(batches) == 1:
        return batches[0].status
    states: dict[str, int] = {}
    for b in batches:
        states[b.status] = states.get(b.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in states.items())
