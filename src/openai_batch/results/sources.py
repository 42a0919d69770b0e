"""The downloaded result files an index points into: each opened once, lines read back by offset.

The responses file takes the lines in request order. The service mostly writes a batch's lines
shuffled, and one `pread` per line costs about two microseconds, so a file whose lines are asked
for scattered (a run of lines per _RUN_BYTES of the file or more) and that fits in WHOLE_MAX bytes
is read whole, once, and its lines are cut from memory. At most WHOLE_MAX bytes of files are held
at a time: the request order walks one shard at a time (its output and error files, its
retries'), so a file that no run still to come in a block asks for gives way to the next
shard's, and one given way is read by run from then on (never read whole twice). Other files
(bigger ones, or ones asked for in long runs: lines that follow each other in their file are one
`pread`) are read by run. Either way the lines are handed on in pieces of about 1 MiB, so memory
holds the files held and one piece, however long the answers are.

Not an mmap of the files: each page fault on a mapped file maps a whole folio of the page cache
(measured: about 1.7 MB of resident memory per line touched on this kernel), so memory would grow
with the files; handing the pages back with madvise after a few lines costs the system call per
line that mapping was to save.
"""

from __future__ import annotations

import itertools
import mmap
import operator
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError

_PIECE = 1 << 20  # bytes of lines read and written at a time
WHOLE_MAX = 64 << 20  # bytes of result files read whole and held at once
_RUN_BYTES = 1 << 14  # a file read whole once asked for a run per this many of its bytes


class SourceFiles:
    """The result files by number (`paths` is the index's list: it grows as files are added).
    `whole_max`: bytes of files read whole and held at once (a file bigger is read by run)."""

    def __init__(self, paths: list[Path], whole_max: int = WHOLE_MAX) -> None:
        self.paths = paths
        self.whole_max = whole_max
        self._handles: dict[int, IO[bytes]] = {}
        self._arena: mmap.mmap | None = None  # the files held whole, packed from its start
        self._held: dict[int, tuple[int, int]] = {}  # (start, size) in the arena, least
        # recently asked for first
        self._let_go: set[int] = set()  # held once and let go: read by run from then on
        self._runs: dict[int, int] = {}  # runs read by pread so far, per file

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
        in a line feed, as pieces of about _PIECE bytes (or one long line)."""
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
        cut = np.ones(len(starts), dtype=bool)  # a new run: not next in its file, or 1 MiB on
        cut[1:] = (sources[1:] != sources[:-1]) | (starts[1:] != ends[:-1])
        cut[1:] |= before[1:] // _PIECE != before[:-1] // _PIECE
        first = np.flatnonzero(cut)
        last = np.append(first[1:], len(starts)) - 1
        runs = _Runs(sources[first], starts[first], ends[last], sizes, before[first] // _PIECE)
        left = np.bincount(runs.sources, minlength=len(sizes))  # runs to come, per file
        whole: list[memoryview | None] = [None] * len(sizes)
        for piece in runs.pieces():
            asked = np.bincount(runs.sources[piece], minlength=len(sizes))
            self._hold(np.flatnonzero(asked).tolist(), left.tolist(), sizes, whole)
            left -= asked
            if runs.check(piece, whole, self.paths):
                yield runs.cut(piece, whole)
            else:
                yield self._read(runs, piece, whole)

    def _hold(self, asked: list[int], left: list[int], sizes: Any, whole: list[Any]) -> None:
        """Files `asked` for by a piece, held whole when worth it (their runs to come, `left`,
        and those read by run so far: one per _RUN_BYTES of the file) and they fit beside the
        files held for runs to come; `whole` gets a view of each file held."""
        held = self._held
        for source in sorted(asked, key=lambda s: -left[s]):  # the most runs to come first
            size = int(sizes[source])
            if source in held:
                span = held[source] = held.pop(source)  # the most recently asked for last
                if span[1] != size:  # grown since it was read whole
                    raise _changed(self.paths[source])
                continue
            worth = (self._runs.get(source, 0) + left[source]) * _RUN_BYTES >= size
            if source in self._let_go or not 0 < size <= self.whole_max or not worth:
                continue
            for other in list(held):  # the least recently asked for first
                if self.held_bytes + size <= self.whole_max:
                    break
                if other >= len(left) or not left[other]:  # no run to come asks for it
                    self._let_go.add(other)
                    del held[other]
                    if other < len(whole):
                        whole[other] = None
            if self.held_bytes + size <= self.whole_max:
                self._read_whole(source, size)
        arena = memoryview(self._arena) if self._arena is not None else None
        for source, (start, size) in held.items():  # views anew: files may have moved
            if source < len(whole) and arena is not None:
                whole[source] = arena[start : start + size]

    @property
    def held_bytes(self) -> int:
        """Bytes of files held whole now (at most whole_max)."""
        return sum(size for _, size in self._held.values())

    def release(self) -> None:
        """Let go of the files held whole (the lines are all read); the mapping goes with the
        last view of it."""
        self._held.clear()
        self._arena = None
        self._let_go.clear()
        self._runs.clear()

    def _read_whole(self, source: int, size: int) -> None:
        """Read the file into the arena after the files held (moved to its front first when
        the space after them is too small)."""
        if self._arena is None:
            try:
                # private: a fork while it lives never shares its pages; pages made only as used
                self._arena = mmap.mmap(-1, self.whole_max, flags=mmap.MAP_PRIVATE)
            except OSError:  # no address space to spare (a ulimit): every file read by run
                self.whole_max = 0
                return
        arena = memoryview(self._arena)
        end = max((start + length for start, length in self._held.values()), default=0)
        if end + size > self.whole_max:
            end = 0
            for other, (start, length) in sorted(self._held.items(), key=lambda s: s[1][0]):
                arena[end : end + length] = arena[start : start + length]  # memmove
                self._held[other] = (end, length)
                end += length
        if os.preadv(self.handle(source).fileno(), [arena[end : end + size]], 0) != size:
            raise _changed(self.paths[source])
        self._held[source] = (end, size)

    def _read(self, runs: _Runs, piece: slice, whole: list[memoryview | None]) -> bytes:
        """One piece, run by run: cut from a file held whole, else one `pread` per run."""
        pread = os.pread
        parts: list[bytes | memoryview] = []
        rows = zip(runs.sources[piece].tolist(), runs.starts[piece].tolist(),
                   runs.ends[piece].tolist(), runs.bare[piece].tolist(), strict=True)  # fmt: skip
        for source, start, end, bare in rows:
            held = whole[source]
            if held is not None:
                part: bytes | memoryview = held[start:end]
            else:
                self._runs[source] = self._runs.get(source, 0) + 1
                part = pread(self.handle(source).fileno(), end - start, start)
                if len(part) != end - start:
                    raise _changed(self.paths[source])
                if not part.endswith(b"\n"):
                    if end != runs.sizes[source]:  # its last line when indexed, grown since
                        raise _changed(self.paths[source])
                    bare = True
            parts.append(part)
            if bare:
                parts.append(b"\n")
        return b"".join(parts)

    def _size(self, source: int) -> int:
        return os.fstat(self.handle(source).fileno()).st_size

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
        self.release()


class _Runs:
    """Runs of lines that follow each other in their file (numpy arrays, in the order asked),
    grouped into pieces of about _PIECE bytes."""

    def __init__(self, sources: Any, starts: Any, ends: Any, sizes: Any, piece: Any) -> None:
        import numpy as np

        self.sources, self.starts, self.ends, self.sizes = sources, starts, ends, sizes
        self.piece = piece
        self.bare = np.zeros(len(sources), dtype=bool)  # a file's last line without a line feed

    def pieces(self) -> Iterator[slice]:
        """The runs of each piece, as slices."""
        import numpy as np

        bounds = np.flatnonzero(self.piece[1:] != self.piece[:-1]) + 1
        edges = [0, *bounds.tolist(), len(self.piece)]
        for start, stop in itertools.pairwise(edges):
            yield slice(start, stop)

    def check(self, piece: slice, whole: list[memoryview | None], paths: list[Path]) -> bool:
        """Whether every run of the piece is cut from a file held whole and ends in a line
        feed. A run that ends without one must be its file's last line (it gets one: `bare`);
        anything else means the file changed."""
        import numpy as np

        sources, ends = self.sources[piece], self.ends[piece]
        cut_only = True
        for source in np.unique(sources).tolist():
            held = whole[source]
            if held is None:
                cut_only = False
                continue
            mine = np.flatnonzero(sources == source)
            bare = np.frombuffer(held, dtype=np.uint8)[ends[mine] - 1] != ord("\n")
            if bare.any():
                if (ends[mine[bare]] != len(held)).any():  # its last line when indexed, grown
                    raise _changed(paths[source])
                self.bare[piece.start + mine[bare]] = True
                cut_only = False
        return cut_only

    def cut(self, piece: slice, whole: list[memoryview | None]) -> bytes:
        """A piece whose runs all come from files held whole and end in a line feed."""
        views = map(whole.__getitem__, self.sources[piece].tolist())
        spans = map(slice, self.starts[piece].tolist(), self.ends[piece].tolist())
        return b"".join(map(operator.getitem, views, spans))  # type: ignore[arg-type]


def _changed(path: Path) -> BatchError:
    return BatchError(
        f"the result file {path} changed while its results were being read",
        hint="run the command again (the downloads are kept; nothing is downloaded twice)",
    )
