"""Atomic file writing: no reader sees a half-written file, and a failure leaves none behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def temp_path_for(path: Path) -> Path:
    """A fresh temp file next to `path` (same filesystem, so the final rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(name)


def commit(temp: Path, final: Path) -> None:
    """Move a finished temp file into place, atomically, after flushing it to disk."""
    with open(temp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(temp, final)


def discard(temp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:  # type: ignore[type-arg]
    """Write to a temp file beside `path`, then rename over it; on any error nothing changes."""
    final = Path(path)
    temp = temp_path_for(final)
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(temp, mode, **kwargs) as fh:  # type: ignore[call-overload]
            yield fh
        commit(temp, final)
    except BaseException:
        discard(temp)
        raise
