"""Where the join's answers live on disk: Arrow IPC blobs in the index's spill file.

Each part of a result file (at most PART_ROWS lines, about BLOB_CHARS characters of answers,
so a file of 1 MB embeddings makes blobs of a few rows) becomes one self-contained Arrow IPC
stream of the table's result cells as columns (COLUMNS: custom_id, status, content,
finish_reason, refusal, prompt_tokens, completion_tokens, error). An index record points at
(blob, row). The table takes a block's answers by Arrow `take`, each blob it touches read once
per block and kept in a small cache bounded by bytes (the table walks the data in request
order, so its working set is one shard's answers): no Python object per cell, no JSON parsed.

Cells Arrow's types cannot hold are kept exactly all the same: a text column of a part with a
lone surrogate (valid in JSON, impossible in UTF-8) is stored as binary (UTF-8 with
surrogatepass), and a token column of a part with a count beyond int64 as decimal text. The
Python readers (`python_rows`) give them back as they were; the CSV block writer leaves such
blocks to the per-row writer, which writes them as it always did.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
from xxhash import xxh3_64_intdigest

from openai_batch.errors import BatchError
from openai_batch.results import arrowpool

COLUMNS = (
    "custom_id",
    "status",
    "content",
    "finish_reason",
    "refusal",
    "prompt_tokens",
    "completion_tokens",
    "error",
)
TOKENS = frozenset({"prompt_tokens", "completion_tokens"})
PART_ROWS = 1 << 16  # rows of a blob (a record's row number is 16 bits)
BLOB_CHARS = 4 << 20  # characters of answers in a blob: a part ends once it has this many
CACHE_BYTES = 24 << 20  # blobs kept read (a shard's answers, for a table in request order)


def _damaged() -> BatchError:
    """A blob that cannot be read back as written: an error, never a crash or a changed cell."""
    return BatchError(
        "the results index's spill file cannot be read back (removed, changed, or the disk full?)",
        hint="run the command again (the downloads are kept)",
    )


def encode(
    ids: list[str],
    oks: bytes,
    contents: list[str],
    finishes: list[str],
    prompts: list[Any],
    completions: list[Any],
    extras: dict[int, tuple[str, str]],
) -> tuple[pa.Buffer, Any]:
    """One part's answers as an Arrow IPC stream, and each row's size in bytes (numpy).

    `oks`: a byte per row, 1 for a success (status `ok`, else `error`); tokens are int or "";
    `extras`: (refusal, error) of the rows that have either (most rows have neither)."""
    import numpy as np

    rows = len(ids)
    ok = pa.array(np.frombuffer(oks, dtype=np.uint8).astype(bool), type=pa.bool_())
    status = pc.if_else(ok, "ok", "error")
    texts = [_text(values) for values in (ids, contents, finishes)]
    if extras:
        refusals, errors = [""] * rows, [""] * rows
        for row, (refusal, error) in extras.items():
            refusals[row], errors[row] = refusal, error
        texts.extend((_text(refusals), _text(errors)))
    else:  # the usual part: no refusal, no error
        texts.extend((pa.repeat("", rows), pa.repeat("", rows)))
    arrays = [texts[0], status, texts[1], texts[2], texts[3],
              _tokens(prompts), _tokens(completions), texts[4]]  # fmt: skip
    batch = pa.RecordBatch.from_arrays(arrays, names=list(COLUMNS))
    sizes = np.zeros(rows, dtype=np.int64)
    for text in texts:
        sizes += pc.binary_length(text).to_numpy(zero_copy_only=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue(), sizes


def _text(values: list[str]) -> pa.Array:
    """A text column: UTF-8 strings, or binary (surrogatepass) when one holds a lone surrogate."""
    try:
        return pa.array(values, type=pa.string())
    except UnicodeEncodeError:
        return pa.array([v.encode("utf-8", "surrogatepass") for v in values], type=pa.binary())


def _tokens(values: list[Any]) -> pa.Array:
    """Token counts (int or ""): int64 with nulls, or decimal text when one is beyond int64."""
    try:
        return pa.array(values, type=pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    present = [None if v == "" else v for v in values]
    try:
        return pa.array(present, type=pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in present], type=pa.string())


class AnswerStore:
    """The spill file of one index: blobs appended by the readers, taken back by row."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._others: list[IO[bytes]] = []  # a second reader's spill files, kept as written
        self._offsets: list[int] = []
        self._lengths: list[int] = []
        self._digests: list[int] = []  # XXH3-64 of each blob as written
        self._homes: list[int] = []  # per blob: 0 in self._file, n in self._others[n - 1]
        self._cache: OrderedDict[int, pa.RecordBatch] = OrderedDict()  # least recently used first
        self._cached = 0
        self._round = 0  # take() calls so far
        self._used: dict[int, int] = {}  # blob -> the take() that last used it
        self.reads = 0  # blobs read from the file (a blob in the cache is not read again)
        self._holding = False  # this store holds Arrow's system pool (results/arrowpool.py)

    def file(self, folder: Path) -> IO[bytes]:
        """The spill file, beside the downloads (else in the temp folder); made once, when
        the reading starts (so Arrow's memory is the system's from then on, until close())."""
        if self._file is None:
            if not self._holding:
                arrowpool.hold()
                self._holding = True
            try:
                self._file = tempfile.TemporaryFile(prefix=".results-index.", dir=folder)  # noqa: SIM115
            except OSError:
                self._file = tempfile.TemporaryFile(prefix="openai-batch-results.")  # noqa: SIM115
        return self._file

    def add(self, spans: Sequence[tuple[int, int, int]], file: IO[bytes] | None = None) -> int:
        """Blobs written at (offset, length, XXH3-64 of their bytes) each, in the spill file or
        in `file` (a second reader's spill, closed with this store); the number of the first."""
        home = 0
        if file is not None:
            if not any(other is file for other in self._others):
                self._others.append(file)
            home = next(n for n, other in enumerate(self._others, start=1) if other is file)
        first = len(self._offsets)
        for offset, length, digest in spans:
            self._offsets.append(offset)
            self._lengths.append(length)
            self._digests.append(digest)
            self._homes.append(home)
        return first

    def ready(self) -> None:
        """Writing is over: reads go by os.pread, around the file object's buffer."""
        if self._file is not None:
            self._file.flush()

    def take(
        self,
        blobs: Any,
        rows: Any,
        present: Any = None,
        columns: Sequence[str] = COLUMNS,
        absent: Mapping[str, str] | None = None,
    ) -> pa.Table:
        """The answers at (blobs[i], rows[i]) in that order (numpy ints) as a table of
        `columns`; where `present` (numpy bools) is False, a row of nulls, or of `absent`'s
        text in the columns it names (taken from a row of its own: no column is filled in
        afterwards, a copy of each). Each blob touched is read once; rows of one blob are
        taken together, in the order they lie in it (a block's rows are scattered over a
        blob: read in order, a fifth cheaper), then put in the order asked by one more take."""
        import numpy as np

        self._round += 1
        blobs, rows = np.asarray(blobs, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        count = len(blobs)
        where = None if present is None or present.all() else np.flatnonzero(present)
        if where is not None:
            blobs, rows = blobs[where], rows[where]
        filler = None if where is None or not absent else _filler(tuple(columns), absent)
        if filler is None and len(blobs) and blobs.min() == blobs.max():
            batch = self._blob(int(blobs[0])).select(list(columns))  # one take, as asked
            return pa.Table.from_batches([batch.take(_indices(rows, count, where, present))])
        order = _by_blob_and_row(blobs, rows)
        chosen = blobs[order]
        starts = np.flatnonzero(np.append(True, chosen[1:] != chosen[:-1])).tolist()
        ends = [*starts[1:], len(chosen)] if len(chosen) else []
        pieces = []
        for start, end in zip(starts[: len(ends)], ends, strict=True):
            batch = self._blob(int(chosen[start])).select(list(columns))
            pieces.append(batch.take(pa.array(rows[order[start:end]], type=pa.int64())))
        if filler is not None:
            pieces.append(filler)  # row len(order): every absent row's
        table = pa.Table.from_batches(_unified(pieces)) if pieces else _empty(columns)
        # one more take puts the rows (taken blob by blob) in the order asked, nulls between
        slots = np.empty(len(order), dtype=np.int64)
        slots[order] = np.arange(len(order))
        if filler is not None:
            back = np.full(count, len(order), dtype=np.int64)
            back[where] = slots
            return table.take(pa.array(back))
        return table.take(_indices(slots, count, where, present))

    def row(self, blob: int, row: int) -> list[Any]:
        """One answer's cells as Python values (custom_id first; tokens int or "")."""
        return python_rows(self.take([blob], [row]))[0]

    def _blob(self, number: int) -> pa.RecordBatch:
        """Blob `number`, from the cache or read (os.pread: no seek, no buffer)."""
        self._used[number] = self._round
        batch = self._cache.get(number)
        if batch is not None:
            self._cache.move_to_end(number)
            return batch
        home = self._homes[number]
        spill = self._file if home == 0 else self._others[home - 1]
        assert spill is not None
        length = self._lengths[number]
        try:
            data = os.pread(spill.fileno(), length, self._offsets[number])
            # Arrow trusts the offsets in the bytes it reads: damaged bytes could crash the
            # process or change a cell, so they are compared with what was written first
            if len(data) != length or xxh3_64_intdigest(data) != self._digests[number]:
                raise _damaged()
            batch = pa.ipc.open_stream(data).read_next_batch()
        except (OSError, pa.ArrowException, StopIteration):
            raise _damaged() from None
        self.reads += 1
        self._cache[number] = batch
        self._cached += length
        while self._cached > CACHE_BYTES and len(self._cache) > 1:
            self._evict(number)
        return batch

    def _evict(self, keep: int) -> None:
        """Drop the blob least recently used, unless this take() used every blob kept: its
        blobs (a shard's, each block touching all of them) outgrow the cache, and dropping the
        least recent would drop each just before the next block asks for it again; then the
        most recent other than `keep` goes, so the next block finds all but the overflow."""
        victim = next(iter(self._cache))
        if self._used.get(victim) == self._round:
            victim = next(n for n in reversed(self._cache) if n != keep)
        del self._cache[victim]
        del self._used[victim]
        self._cached -= self._lengths[victim]

    def close(self) -> None:
        self._cache.clear()
        self._used.clear()
        self._cached = 0
        for other in self._others:
            other.close()
        self._others = []
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._holding:  # the last index open gives the process its own pool back
            self._holding = False
            arrowpool.release()


def _filler(columns: tuple[str, ...], absent: Mapping[str, str]) -> pa.RecordBatch:
    """One row of `columns`: `absent`'s text where it names the column, else null."""
    key = (columns, tuple(sorted(absent.items())))
    filler = _FILLERS.get(key)
    if filler is None:
        arrays = [
            pa.array([None if name in TOKENS else absent.get(name)],
                     type=pa.int64() if name in TOKENS else pa.string())
            for name in columns
        ]  # fmt: skip
        filler = _FILLERS[key] = pa.RecordBatch.from_arrays(arrays, names=list(columns))
    return filler


_FILLERS: dict[tuple[Any, ...], pa.RecordBatch] = {}  # made once per columns and text


def _by_blob_and_row(blobs: Any, rows: Any) -> Any:
    """The order of (blob, row) pairs (numpy ints), by blob, then row: two stable sorts of
    16-bit keys (numpy sorts them by radix: a quarter of the time of one sort of 64-bit
    keys), rows first, then the blobs counted from the block's first, where they span fewer
    than 65,536 blobs (a block's few nearly always do)."""
    import numpy as np

    if not len(blobs):
        return np.empty(0, dtype=np.intp)
    first = blobs.min()
    if blobs.max() - first >= 1 << 16:
        return np.argsort((blobs << 16) | rows)  # a row is 16 bits
    by_row = np.argsort(rows.astype(np.uint16), kind="stable")
    return by_row[np.argsort((blobs - first).astype(np.uint16)[by_row], kind="stable")]


def _indices(rows: Any, count: int, where: Any, present: Any) -> pa.Array:
    """`rows` (numpy ints) as take() indices, with a null where `present` is False (the
    places `where` it is True get `rows`, in order) when some are."""
    import numpy as np

    if where is None:
        return pa.array(rows, type=pa.int64())
    back = np.zeros(count, dtype=np.int64)
    back[where] = rows
    return pa.array(back, mask=~present, type=pa.int64())


def _empty(columns: Sequence[str]) -> pa.Table:
    types = [pa.int64() if name in TOKENS else pa.string() for name in columns]
    return pa.table([pa.array([], type=t) for t in types], names=list(columns))


def _unified(pieces: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """The pieces with one schema: a column binary in one piece is binary in all, a token
    column that is text in one is text in all."""
    if len({piece.schema for piece in pieces}) == 1:
        return pieces
    fields = []
    for n, name in enumerate(pieces[0].schema.names):
        kinds = {piece.column(n).type for piece in pieces}
        if pa.binary() in kinds:
            kind = pa.binary()
        elif pa.string() in kinds:
            kind = pa.string()
        else:
            kind = next(iter(kinds))
        fields.append(pa.field(name, kind))
    schema = pa.schema(fields)
    return [piece.cast(schema) for piece in pieces]


def python_column(column: pa.Array | pa.ChunkedArray, name: str) -> list[Any]:
    """A taken column as the Python values the answers were: text as str, tokens int or ""
    (a null, an answer without one or a row without an answer, reads as "" for tokens and
    None for text)."""
    kind = column.type
    values = column.to_pylist()
    if name in TOKENS:
        if kind == pa.string():
            return ["" if v is None else int(v) for v in values]
        return ["" if v is None else v for v in values]
    if kind == pa.binary():
        return [None if v is None else v.decode("utf-8", "surrogatepass") for v in values]
    return values  # type: ignore[no-any-return]


def python_rows(table: pa.Table) -> list[list[Any]]:
    """Each row of a taken table as a list of cells in COLUMNS order."""
    columns = [python_column(table.column(name), name) for name in COLUMNS]
    return [list(row) for row in zip(*columns, strict=True)]


def is_plain(table: pa.Table) -> bool:
    """Whether every text column is UTF-8 string (no lone surrogate) and both token columns
    int64: what the CSV block writer can turn into text exactly."""
    return all(
        table.column(name).type == (pa.int64() if name in TOKENS else pa.string())
        for name in COLUMNS
    )
