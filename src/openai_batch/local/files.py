"""Atomic file writing: no reader sees a half-written file, and a failure leaves none behind.

A temp file is `.<name>.<random>.part` beside the final path, and its writer holds an advisory
lock on it (`flock`) until it is committed or discarded. A process killed mid-write (SIGKILL, a
power cut) cannot clean up, but its lock dies with it: the next write to the same path sweeps
the leftovers nobody holds. Without `flock` (Windows) only leftovers older than a day go (and
a file a live writer has open cannot be deleted there anyway).

A new temp file exists for a moment before its writer locks it, and another process's sweep
may find it then (two commands writing into one folder: `run` twice on one job). So a sweeper
removes a temp file only while it holds its lock, and a writer that finds its new file locked
or already removed makes another: neither can lose the other's file.

Not `filelock`: it locks a separate lock file, which a killed writer would leave beside the
user's outputs as a second leftover; here the lock lives on the temp file itself, so a SIGKILL
leaves exactly one file, and the next write sweeps it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from openai_batch.local import interrupts

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

UNLOCKED_STALE_SECONDS = 24 * 3600.0
_CREATE_ATTEMPTS = 100  # new temp files lost to other writers' sweeps before giving up
_held: dict[str, int] = {}  # temp path -> the descriptor holding its lock


def temp_path_for(path: Path) -> Path:
    """A fresh temp file next to `path` (same filesystem, so the final rename is atomic).

    Leftover temp files of `path` from killed writers are swept first (see the module text).
    Ctrl-C waits until the new file is registered: a caller gets it, or it was never made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path)
    for _ in range(_CREATE_ATTEMPTS):
        with interrupts.deferred():
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            if fcntl is None:  # pragma: no cover - Windows
                os.close(fd)
                return Path(name)
            if _locked_in_place(fd):
                _held[name] = fd
                return Path(name)
            os.close(fd)  # another writer's sweep took it before we locked it: it removes it
    raise OSError(errno.EAGAIN, "other writers kept removing this command's temp files", name)


def _locked_in_place(fd: int) -> bool:
    """Lock a temp file just made; False when another process's sweep got to it first (it
    holds the lock to remove the file, or has removed it already)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return os.fstat(fd).st_nlink > 0


def sweep_leftovers(path: Path) -> list[Path]:
    """Remove the temp files of `path` that no live writer holds; returns what went."""
    swept = []
    for temp in path.parent.glob(f".{glob_escape(path.name)}.*.part"):
        if str(temp) not in _held and _remove_if_abandoned(temp):
            swept.append(temp)
    return swept


def glob_escape(name: str) -> str:
    from glob import escape

    return escape(name)


def _remove_if_abandoned(temp: Path) -> bool:
    """Remove `temp` if no process holds its lock (its writer died), or, without locks, if it is
    old. The lock is held while the file goes, so a writer that made it a moment ago and locks
    it next finds it gone (see the module text), never a file it goes on writing into."""
    import time

    if fcntl is None:  # pragma: no cover - Windows
        with contextlib.suppress(OSError):
            if time.time() - temp.stat().st_mtime > UNLOCKED_STALE_SECONDS:
                temp.unlink()
                return True
        return False
    try:
        fd = os.open(temp, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not os.path.samestat(os.fstat(fd), os.stat(temp)):
            return False  # renamed into place meanwhile: the name is another file's now
        temp.unlink()
    except OSError:
        return False  # a live writer holds it, or it went meanwhile
    finally:
        os.close(fd)
    return True


def _release(temp: Path) -> None:
    fd = _held.pop(str(temp), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def commit(temp: Path, final: Path, *, private: bool = False) -> None:
    """Move a finished temp file into place, atomically, after flushing it to disk.

    The temp file was made private (mkstemp: 0600); the file put in place gets the mode a plain
    `open(final, "w")` would give it: a replaced file keeps its mode, a new one follows the
    umask (so colleagues on a shared server can read results when the umask lets them)."""
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    if not private:  # a private file (the cache, loaded with pickle) stays 0600
        with contextlib.suppress(OSError):
            os.chmod(temp, _mode_for(final))
    with interrupts.deferred():  # replaced and released, or neither
        os.replace(temp, final)
        _release(temp)


def _mode_for(final: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(final).st_mode)
    except OSError:
        return 0o666 & ~umask()


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        current = os.umask(0o077)
        os.umask(current)
    return current


_UMASK_LOCK = threading.Lock()


def discard(temp: Path) -> None:
    with interrupts.deferred():  # a second Ctrl-C does not leave it half-forgotten
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        _release(temp)


@contextlib.contextmanager
def atomic_write(  # type: ignore[type-arg]
    path: str | os.PathLike[str], mode: str = "wb", *, private: bool = False
) -> Iterator[IO]:
    """Write to a temp file beside `path`, then rename over it; on any error nothing changes."""
    final = Path(path)
    temp: Path | None = None
    try:
        temp = temp_path_for(final)
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(temp, mode, **kwargs) as fh:  # type: ignore[call-overload]
            yield fh
        commit(temp, final, private=private)
    except BaseException:
        if temp is not None:
            discard(temp)
        raise
