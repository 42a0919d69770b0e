"""Ctrl-C held off for the few steps that must not be cut in half.

Python raises KeyboardInterrupt between any two bytecodes of the main thread. A step such as
"create a temp file, then remember it for cleanup" cut in the middle leaves a file nobody
cleans. Inside `deferred()` a SIGINT is only noted; it is raised as KeyboardInterrupt when the
outermost `deferred()` ends, so the step either did not start or finished.
Outside the main thread (where Python delivers no signals) it changes nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_depth = 0
_pending = False
_previous: Any = None


def _note(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Run the body with SIGINT noted rather than raised; raise it afterwards."""
    global _depth, _pending, _previous
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        handler = signal.getsignal(signal.SIGINT)
        if handler is not signal.default_int_handler:  # SIG_IGN, SIG_DFL or the host's own
            yield
            return
        _previous = signal.signal(signal.SIGINT, _note)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            signal.signal(signal.SIGINT, _previous)
            if _pending:
                _pending = False
                raise KeyboardInterrupt
