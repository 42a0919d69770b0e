"""Arrow's default memory pool while result indexes are open: the system allocator.

pyarrow's default pool (mimalloc) kept about 40 MB more resident through a 1M-row join (blocks
of answers taken, turned into text and freed, over and over; the same CPU time), so an index
switches Arrow to the C library's malloc when it starts reading. The pool is process-wide and a
library user (or a test) may hold several indexes at once, on several threads: the pool is the
system's while any index holds it, and the one it replaced comes back when the last lets go
(a count, not each index's own saved pool: the first to close would undo the switch under the
others, and the last would put back the system pool it saw as the original). Buffers made
before the switch are freed by the pool that made them.
"""

from __future__ import annotations

import threading

import pyarrow as pa

_lock = threading.Lock()
_holders = 0  # indexes holding the system pool now
_replaced: pa.MemoryPool | None = None  # the default before the first of them, if not system


def hold() -> None:
    """One more index uses Arrow: the default pool is the system's until its `release()`."""
    global _holders, _replaced
    with _lock:
        if _holders == 0:
            before = pa.default_memory_pool()
            if before.backend_name != "system":
                _replaced = before
                pa.set_memory_pool(pa.system_memory_pool())
        _holders += 1


def release() -> None:
    """One index is done (once per `hold()`); the last puts back the pool it replaced."""
    global _holders, _replaced
    with _lock:
        if _holders == 0:
            raise RuntimeError("arrowpool.release() without a hold()")
        _holders -= 1
        if _holders == 0 and _replaced is not None:
            pa.set_memory_pool(_replaced)
            _replaced = None
