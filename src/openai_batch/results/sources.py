"""The downloaded result files an index points into: each opened once, lines read back by offset.

A line is one pread. Not an mmap of the files: the lines of the responses file are scattered over
them (the service writes them in no order), and each page fault on a mapped file maps a whole
folio of the page cache (measured: about 1.7 MB of resident memory per line touched on this
kernel), so memory would grow with the files; handing the pages back with madvise after a few
lines costs the system call per line that mapping was to save.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError


class SourceFiles:
    """The result files by number (`paths` is the index's list: it grows as files are added)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._handles: dict[int, IO[bytes]] = {}

    def handle(self, source: int) -> IO[bytes]:
        fh = self._handles.get(source)
        if fh is None:
            fh = self._handles[source] = open(self.paths[source], "rb")  # noqa: SIM115
        return fh

    def line(self, source: int, offset: int, length: int) -> bytes:
        """The line at (offset, length) of file `source`, ending in a line feed."""
        line = os.pread(self.handle(source).fileno(), length, offset)
        if len(line) != length:
            raise _changed(self.paths[source])
        return line if line.endswith(b"\n") else line + b"\n"

    def lines(self, sources: Any, offsets: Any, lengths: Any) -> bytes:
        """The lines at (sources, offsets, lengths) (numpy arrays), in that order, each ending
        in a line feed, as one bytes object."""
        import numpy as np

        if not len(sources):
            return b""
        used = np.unique(sources).tolist()
        sizes = np.zeros(max(used) + 1, dtype=np.int64)
        for source in used:
            sizes[source] = self._size(source)
        ends = offsets.astype(np.int64) + lengths
        beyond = ends > sizes[sources]
        if beyond.any():
            raise _changed(self.paths[int(sources[np.argmax(beyond)])])
        handles = [self.handle(source).fileno() if source in used else -1
                   for source in range(len(sizes))]  # fmt: skip
        rows = zip(sources.tolist(), offsets.tolist(), lengths.tolist(), strict=True)
        pread = os.pread
        parts = [pread(handles[s], n, o) for s, o, n in rows]
        for i in np.flatnonzero(ends == sizes[sources]).tolist():  # a file's last line
            if not parts[i].endswith(b"\n"):
                parts[i] += b"\n"
        return b"".join(parts)

    def _size(self, source: int) -> int:
        return os.fstat(self.handle(source).fileno()).st_size

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()


def _changed(path: Path) -> BatchError:
    return BatchError(
        f"the result file {path} changed while its results were being read",
        hint="run the command again (the downloads are kept; nothing is downloaded twice)",
    )
