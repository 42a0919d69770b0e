"""The downloaded result files an index points into: each opened once, lines read back by offset.

The responses file takes the lines in request order: the lines that follow each other in their
file are read by one pread (the service mostly writes a batch's lines in request order; shuffled
files cost one pread per line), and they are handed on in pieces of about 1 MiB, so memory holds
one piece however long the answers are. Not an mmap of the files: each page fault on a mapped
file maps a whole folio of the page cache (measured: about 1.7 MB of resident memory per line
touched on this kernel), so memory would grow with the files; handing the pages back with
madvise after a few lines costs the system call per line that mapping was to save.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError

_PIECE = 1 << 20  # bytes of lines read and written at a time


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

    def lines(self, sources: Any, offsets: Any, lengths: Any) -> Iterator[bytes]:
        """The lines at (sources, offsets, lengths) (numpy arrays), in that order, each ending
        in a line feed, as pieces of about _PIECE bytes (or one long line): lines that follow
        each other in their file (the service mostly writes them in request order) are one
        pread, and memory holds one piece, however long the answers."""
        import numpy as np

        if not len(sources):
            return
        used = np.unique(sources).tolist()
        sizes = np.zeros(max(used) + 1, dtype=np.int64)
        for source in used:
            sizes[source] = self._size(source)
        starts = offsets.astype(np.int64)
        ends = starts + lengths
        beyond = ends > sizes[sources]
        if beyond.any():
            raise _changed(self.paths[int(sources[np.argmax(beyond)])])
        before = np.cumsum(lengths, dtype=np.int64) - lengths  # bytes before each line
        cut = np.ones(len(starts), dtype=bool)  # a new pread: not next in its file, or 1 MiB on
        cut[1:] = (sources[1:] != sources[:-1]) | (starts[1:] != ends[:-1])
        cut[1:] |= before[1:] // _PIECE != before[:-1] // _PIECE
        first = np.flatnonzero(cut)
        last = np.append(first[1:], len(starts)) - 1
        at_end = ends[last] == sizes[sources[first]]  # a file's last line may lack its line feed
        handles = [self.handle(s).fileno() if s in used else -1 for s in range(len(sizes))]
        rows = zip(sources[first].tolist(), starts[first].tolist(),
                   (ends[last] - starts[first]).tolist(), at_end.tolist(), strict=True)  # fmt: skip
        pread = os.pread
        pending: list[bytes] = []
        size = 0
        for source, start, length, eof in rows:
            piece = pread(handles[source], length, start)
            if len(piece) != length:
                raise _changed(self.paths[source])
            if not piece.endswith(b"\n"):
                if not eof:  # the file's last line when indexed, and the file has grown since
                    raise _changed(self.paths[source])
                piece += b"\n"
            pending.append(piece)
            size += length
            if size >= _PIECE:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)

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
