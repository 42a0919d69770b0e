"""The vectorised make-batch-file: whole blocks of rows at a time, at about the speed of the disk.

When every placeholder of a template is a plain column inside a JSON string
(`Template.columns_only`), each request line is the same literal text with escaped cells in
between. So instead of rendering row by row, we read the table in ~1 MB Arrow blocks, JSON-escape
each used column once per block with `pyarrow.compute`, join literals and columns into every line
with `binary_join_element_wise`, and hand the resulting buffer to a writer thread. The shards
follow `batchfile.ShardWriter`'s rules exactly; nothing is kept per row.

The promise is byte-identical output to the general path. Whenever this path cannot keep it (a
parse problem, an empty or repeated custom_id, a line over the size limit, a file pandas would
refuse) it raises `Fallback`: what was written is discarded and the general path renders the
table, producing the same files or the precise error naming the row. CSV/TSV in UTF-8 (not .gz)
and Parquet take this path; other tables, Jinja expressions, blocks and images do not.

`OPENAI_BATCH_RENDERER` chooses the renderer: `auto` (default), `general` (never this path) or
`fast` (falling back is an error: the tests use it to know which path wrote the files).
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import queue
import threading
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError
from openai_batch.local import files
from openai_batch.requestfile.make import ShardWriter, _Shard
from openai_batch.template.prompt import Expr, StringSlot, json_escape

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from openai_batch.requestfile.make import MakeOptions, MakeResult
    from openai_batch.table.read import Table
    from openai_batch.template.prompt import Template

RENDERER_ENV = "OPENAI_BATCH_RENDERER"
BLOCK_BYTES = 1 << 19  # CSV bytes per block: ~7 MB of lines, so memory stays low and pages warm
PARQUET_ROWS = 8192
RENDER_BYTES = 4 << 20  # template text rendered per piece of a block: bounds memory per block
_QUEUE_BLOCKS = 3  # blocks waiting for the writer thread (bounds memory)
_RARE_CONTROL = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"  # control characters besides \t \n \r
_SIMPLE_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


class Fallback(Exception):
    """The fast path cannot promise the general path's bytes here: render the general way."""


def renderer_choice() -> str:
    """`auto` (the default), `general` (never the fast path) or `fast` (for tests: falling back
    to the general path is an error, so a test knows which path wrote the files)."""
    choice = os.environ.get(RENDERER_ENV, "").strip().lower() or "auto"
    if choice not in ("auto", "general", "fast"):
        raise BatchError(
            f"{RENDERER_ENV}={choice!r} is not a renderer.", hint="use auto, general or fast."
        )
    return choice


def render_fast(
    table: Table, template: Template, template_path: Path, data_path: Path, opts: MakeOptions
) -> MakeResult | None:
    """The request files made the fast way, or None when the general path must make them."""
    choice = renderer_choice()
    if choice == "general":
        return None
    if applies(table, template):
        try:
            return make_fast(table, template, template_path, data_path, opts)
        except Fallback:
            pass
    if choice == "fast":
        raise BatchError(f"{RENDERER_ENV}=fast, but the fast renderer cannot render this table.")
    return None


def applies(table: Table, template: Template) -> bool:
    """True when the fast path may try: plain-column placeholders, a CSV/TSV/Parquet table."""
    if not template.columns_only:
        return False
    if table.kind == "parquet":
        return True
    if table.kind not in ("csv", "tsv") or table.path.suffix.lower() == ".gz":
        return False
    if table.delimiter is None or table.delimiter in '"\r\n':
        return False
    return _is_utf8(table.options.encoding)


def _is_utf8(encoding: str | None) -> bool:
    if encoding is None:
        return True
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False  # the general path names the unknown encoding


def make_fast(
    table: Table, template: Template, template_path: Path, data_path: Path, opts: MakeOptions
) -> MakeResult:
    """Render every row into request files, block by block; raises Fallback when unsure."""
    import pyarrow as pa

    from openai_batch.requestfile.make import MakeResult, _progress, check_first_line

    renderer = LineRenderer(template, opts.endpoint, opts.id_prefix, opts.id_column)
    writer = BlockShardWriter(opts.output, opts.max_requests, opts.max_bytes)
    ids = IdChecker() if opts.id_column is not None else None
    start = 0
    first: _Background | None = None
    blocks = _blocks(table, renderer.columns())
    rows = max(1, RENDER_BYTES // renderer.literal_bytes())  # a long template: fewer rows
    bar = _progress(table, opts.progress)
    try:
        for block in _pieces(blocks, rows):
            lines = renderer.render(block, start)
            if ids is not None:
                ids.add(block.column(opts.id_column))
            if first is None:
                # Checking the first request loads the API's types (~1 s): overlap it with
                # rendering. A problem sends us to the general path, which names it.
                check = opts.checker.check_first_line if opts.checker else check_first_line
                first = _Background(check, lines[0].as_py(), opts.endpoint, template)
            elif first.failed:
                raise Fallback
            writer.add_block(lines, start)
            start += len(block)
            bar.update(len(block))
        if first is None or (ids is not None and ids.has_duplicates()):
            raise Fallback
        model = first.result()
        shards = writer.finish()
    except (pa.ArrowException, Fallback):
        writer.abort()
        raise Fallback from None
    except BaseException:
        writer.abort()
        raise
    finally:
        getattr(blocks, "close", lambda: None)()  # the CSV file, when we stopped early
        bar.close()
        if first is not None:  # no thread outlives this call, errors included
            first.wait()
    return MakeResult(shards, template_path, data_path, opts.endpoint, model, opts)


def _pieces(blocks: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The blocks cut into pieces of at most `rows` rows (slices: no copy)."""
    for block in blocks:
        if len(block) <= rows:
            yield block
            continue
        for offset in range(0, len(block), rows):
            yield block.slice(offset, rows)


class _Background:
    """A call running in a thread; `result()` waits for it, and a BatchError means Fallback."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func, *args))
        self._thread.start()

    def _run(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = func(*args)
        except BaseException as exc:
            self._error = exc

    @property
    def failed(self) -> bool:
        return not self._thread.is_alive() and self._error is not None

    def wait(self) -> None:
        """Until the call has ended (its outcome, if any, is left for `result`)."""
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if isinstance(self._error, BatchError):
            raise Fallback
        if self._error is not None:
            raise self._error
        return self._value


# ---------------------------------------------------------------------------------------------
# Reading blocks
# ---------------------------------------------------------------------------------------------


def _blocks(table: Table, needed: list[str]) -> Iterator[pa.RecordBatch]:
    """The table's rows as Arrow record batches of string columns, honouring --limit."""
    csv = table.kind in ("csv", "tsv")
    reader = _csv_blocks(table) if csv else _parquet_blocks(table)
    remaining = table.options.limit
    last = None
    for block in reader:
        if csv and len(table.columns) == 1:
            _check_blank_lines(block.column(0))
        if remaining is not None:
            if remaining <= 0:
                return
            if len(block) > remaining:
                yield block.slice(0, remaining).select(needed)
                return
            remaining -= len(block)
        if len(block):
            last = block
            yield block.select(needed)
    if csv and last is not None:
        assert table.delimiter is not None
        _check_end(table.path, last.column(len(table.columns) - 1)[-1].as_py(), table.delimiter)


def _check_blank_lines(column: pa.StringArray) -> None:
    """pandas skips a line of only spaces or tabs; pyarrow reads it as a cell of one column."""
    import pyarrow.compute as pc

    if pc.any(pc.match_substring_regex(column, "^[ \t]+$")).as_py():
        raise Fallback


def _check_end(path: Path, last_cell: str, delimiter: str) -> None:
    """pandas refuses a file that ends inside a quoted cell ("EOF inside string"); pyarrow takes
    the rest of the file as the cell. Such a file ends with the cell as written after its opening
    quote, which stands at the start of a field."""
    tail = ('"' + last_cell.replace('"', '""')).encode("utf-8")
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < len(tail):
            return
        fh.seek(max(0, size - len(tail) - 1))
        end = fh.read()
    if end.endswith(tail) and (
        len(end) == len(tail) or end[:1] in (b"\n", b"\r", delimiter.encode())
    ):
        raise Fallback


def _csv_blocks(table: Table) -> Iterator[pa.RecordBatch]:
    """CSV read like the general path: every cell as written, no NA, quoted newlines kept."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # Every column is read as text so invalid UTF-8 anywhere fails here as it does in pandas.
    header = table.header_as_written or table.columns
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=False,
        null_values=[],
        quoted_strings_can_be_null=False,
        true_values=[],
        false_values=[],
    )
    parse = pacsv.ParseOptions(
        delimiter=table.delimiter,
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        ignore_empty_lines=True,
    )
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True)
    with (
        _CarriageReturnCheck(table.path) as raw,
        pacsv.open_csv(
            raw, read_options=read, parse_options=parse, convert_options=convert
        ) as reader,
    ):
        if reader.schema.names != header:
            raise Fallback  # the header reads differently (BOM, quoting): let pandas decide
        for block in reader:
            raw.check()
            yield _skip_spaces(block, table.columns) if table.skip_spaces else block
        raw.check(end=True)


def _skip_spaces(block: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    """The block as pandas' `skipinitialspace` reads it: the spaces at the start of each cell
    dropped. A cell that then starts with a quote was quoted after the space, which pandas
    honours and pyarrow does not: those files are left to pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [pc.utf8_ltrim(column, characters=" ") for column in block.columns]
    if any(pc.any(pc.starts_with(column, '"')).as_py() for column in columns):
        raise Fallback
    return pa.RecordBatch.from_arrays(columns, names=names)


class _CarriageReturnCheck(io.RawIOBase):
    """The CSV file's bytes on their way to pyarrow, watched for a `\r` without a `\n` after it.

    pandas and pyarrow disagree on such a lone carriage return (old Mac line ends, a stray `\r`
    before a delimiter): pandas sometimes drops the field after it. Rare, so we leave those files
    to pandas. A `\r\n` line end is fine. Scanning costs about a millisecond per MB.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with this object
        self._pending_cr = False  # the previous chunk ended in \r
        self.lone_cr = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import numpy as np

        count = self._file.readinto(buffer)
        if count and not self.lone_cr:
            data = np.frombuffer(buffer, dtype=np.uint8, count=count)
            if self._pending_cr and data[0] != 0x0A:
                self.lone_cr = True
            returns = np.flatnonzero(data[:-1] == 0x0D)
            if len(returns) and bool((data[returns + 1] != 0x0A).any()):
                self.lone_cr = True
            self._pending_cr = bool(data[-1] == 0x0D)
        return count or 0

    def check(self, end: bool = False) -> None:
        if self.lone_cr or (end and self._pending_cr):
            raise Fallback

    def close(self) -> None:
        self._file.close()
        super().close()


def _parquet_blocks(table: Table) -> Iterator[pa.RecordBatch]:
    """Parquet columns turned to text exactly as the general path does (tables.arrow_text)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from openai_batch.table.read import arrow_text

    parquet = pq.ParquetFile(table.path)
    for batch in parquet.iter_batches(batch_size=PARQUET_ROWS):
        arrays = []
        for i in range(batch.num_columns):
            text = arrow_text(batch.column(i), table.columns[i])
            if not pa.types.is_string(text.type):
                text = pc.cast(text, pa.string())
            arrays.append(pc.fill_null(text, ""))
        yield pa.RecordBatch.from_arrays(arrays, names=table.columns)


# ---------------------------------------------------------------------------------------------
# Rendering a block
# ---------------------------------------------------------------------------------------------


class LineRenderer:
    """Builds every request line of a block as one Arrow string array (each ends in a newline).

    A line is literal text and escaped cells in a fixed order:
    `{"custom_id": "<id>", "method": "POST", "url": "<endpoint>", "body": <body>}\\n`,
    where the body's string slots hold escaped literal pieces and escaped column cells.
    """

    def __init__(
        self, template: Template, endpoint: str, id_prefix: str, id_column: str | None
    ) -> None:
        self.id_column = id_column
        pieces: list[str | Expr | None] = ['{"custom_id": "' + json_escape(id_prefix), None]
        pieces.append(f'", "method": "POST", "url": {encode_basestring(endpoint)}, "body": ')
        for part in template.parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                assert isinstance(part, StringSlot) and part.columns_only
                for piece in part.pieces:
                    pieces.append(json_escape(piece) if isinstance(piece, str) else piece)
        pieces.append("}\n")
        # merge neighbouring literals: fewer arguments to join
        self.pieces: list[str | Expr | None] = []
        for item in pieces:
            if isinstance(item, str) and self.pieces and isinstance(self.pieces[-1], str):
                self.pieces[-1] += item
            elif item != "":
                self.pieces.append(item)
        self._literals: dict[str, Any] = {}

    def literal_bytes(self) -> int:
        """The bytes of a line that do not come from the table (a custom_id counts 16)."""
        return 16 + sum(len(p.encode("utf-8")) for p in self.pieces if isinstance(p, str))

    def columns(self) -> list[str]:
        """The columns a block must carry: the template's, then the id column."""
        out = [p.column for p in self.pieces if isinstance(p, Expr) and p.column is not None]
        if self.id_column is not None:
            out.append(self.id_column)
        return list(dict.fromkeys(out))

    def render(self, block: pa.RecordBatch, start: int) -> pa.StringArray:
        import pyarrow.compute as pc

        escaped: dict[str, Any] = {}

        def column(name: str) -> Any:
            if name not in escaped:
                escaped[name] = escape(block.column(name))
            return escaped[name]

        args = []
        for piece in self.pieces:
            if isinstance(piece, str):
                args.append(self._literal(piece))
            elif piece is None:
                args.append(
                    column(self.id_column) if self.id_column else _row_numbers(start, len(block))
                )
            else:
                assert piece.column is not None
                args.append(column(piece.column))
        return pc.binary_join_element_wise(*args, self._literal(""))

    def _literal(self, text: str) -> Any:
        if text not in self._literals:
            self._literals[text] = string_array([text])[0]
        return self._literals[text]


def escape(array: pa.StringArray) -> pa.StringArray:
    """`template.json_escape` of every cell, vectorised; rare control characters row by row."""
    import pyarrow.compute as pc

    if not _needs_escape(array):
        return array
    out = array
    for char, replacement in _SIMPLE_ESCAPES:
        out = pc.replace_substring(out, char, replacement)
    rare = pc.match_substring_regex(array, _RARE_CONTROL)
    if pc.any(rare).as_py():
        cells = pc.filter(array, rare).to_pylist()
        fixed = string_array([json_escape(cell) for cell in cells])
        out = pc.replace_with_mask(out, rare, fixed)
    return out


def _needs_escape(array: pa.StringArray) -> bool:
    """Whether any cell holds a byte JSON escapes (a control character, `"` or `\\`)."""
    import numpy as np

    offsets = _offsets(array)
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    return bool((data < 0x20).any() or (data == 0x22).any() or (data == 0x5C).any())


def _offsets(array: pa.StringArray) -> np.ndarray:
    """The array's int32 offsets (this slice's own) as int64."""
    import numpy as np

    start = array.offset
    raw = np.frombuffer(array.buffers()[1], dtype=np.int32)[start : start + len(array) + 1]
    return raw.astype(np.int64)


def string_array(texts: list[str]) -> pa.StringArray:
    """An Arrow string array built from buffers: `pa.array` on Python objects imports pandas."""
    import numpy as np
    import pyarrow as pa

    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)


def _row_numbers(start: int, count: int) -> pa.StringArray:
    """ "start", "start+1", ... as text (the default custom_id is the prefix and the row index)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    numbers = np.arange(start, start + count, dtype=np.int64)
    array = pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(numbers)])
    return pc.cast(array, pa.string())


# ---------------------------------------------------------------------------------------------
# custom_ids from a column: empty or repeated values send us to the general path
# ---------------------------------------------------------------------------------------------


class IdChecker:
    """Notices empty and (probably) repeated ids with 8 bytes per row, not the ids themselves.

    Each id is reduced to a 64-bit polynomial hash; equal hashes mean a repeat or, rarely, a
    collision. Either way the general path runs and decides exactly, so a collision costs time,
    never a wrong file.
    """

    _MULTIPLIER = 0x100000001B3  # FNV prime: odd, so every power is invertible mod 2**64

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._powers: np.ndarray | None = None

    def add(self, array: pa.StringArray) -> None:
        import pyarrow.compute as pc

        if pc.any(pc.equal(array, "")).as_py():
            raise Fallback
        self._hashes.append(self._hash(array))

    def _hash(self, array: pa.StringArray) -> np.ndarray:
        import numpy as np

        offsets = _offsets(array)
        data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        longest = int(lengths.max())
        if self._powers is None or len(self._powers) < longest:
            powers = np.ones(max(longest, 64), dtype=np.uint64)
            with np.errstate(over="ignore"):
                for i in range(1, len(powers)):
                    powers[i] = powers[i - 1] * np.uint64(self._MULTIPLIER)
            self._powers = powers
        # position of each byte inside its string
        position = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        with np.errstate(over="ignore"):
            terms = (data.astype(np.uint64) + np.uint64(1)) * self._powers[position]
            sums = np.add.reduceat(terms, offsets[:-1]) if len(data) else terms[:0]
            return sums ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))

    def has_duplicates(self) -> bool:
        import numpy as np

        if not self._hashes:
            return False
        hashes = np.sort(np.concatenate(self._hashes))
        self._hashes = []
        return bool(np.any(hashes[1:] == hashes[:-1]))


# ---------------------------------------------------------------------------------------------
# Writing: ShardWriter's rules, applied to whole blocks, with file I/O in a thread
# ---------------------------------------------------------------------------------------------


class BlockShardWriter(ShardWriter):
    """A `batchfile.ShardWriter` that takes a block of lines at once.

    Splitting is decided here with the sizes of the lines, exactly as `ShardWriter.add` would
    line by line (a new shard when the current one has max_requests lines or the next line would
    pass max_bytes). Writing runs in a thread of its own (it releases the GIL), so rendering
    the next block overlaps it.
    """

    def __init__(self, output: Path, max_requests: int, max_bytes: int) -> None:
        super().__init__(output, max_requests, max_bytes)
        self._writer = _Worker("batch-writer")

    def add_block(self, lines: pa.StringArray, first_row: int) -> None:
        import numpy as np

        offsets = _offsets(lines)
        data = lines.buffers()[2]
        sizes = np.diff(offsets)
        if int(sizes.max()) > self.max_bytes:
            raise Fallback  # the general path names the row that is too long
        ends = offsets[1:] - offsets[0]  # bytes of the block up to and including each line
        i, count = 0, len(sizes)
        while i < count:
            current = self.shards[-1] if self.shards else None
            if (
                current is None
                or current.requests >= self.max_requests
                or current.bytes + int(sizes[i]) > self.max_bytes
            ):
                current = self._open(first_row + i)
            before = int(ends[i - 1]) if i else 0
            limit = min(count, i + self.max_requests - current.requests)
            budget = before + self.max_bytes - current.bytes
            take = max(1, int(np.searchsorted(ends[i:limit], budget, "right")))
            nbytes = int(ends[i + take - 1]) - before
            current.requests += take
            current.bytes += nbytes
            segment = data.slice(int(offsets[0]) + before, nbytes)
            current.digest.update(segment)  # XXH3: ~0.04 s per GB, not worth a thread
            self._writer.submit(functools.partial(_write_all, current.handle, segment))
            i += take

    def _open(self, row: int) -> _Shard:
        if self.shards:
            self._writer.submit(self.shards[-1].handle.close)
        temp = files.temp_path_for(self.output)
        shard = _Shard(temp, open(temp, "wb", buffering=0), row)  # noqa: SIM115
        self.shards.append(shard)
        return shard

    def finish(self) -> Any:
        self._writer.stop()
        return super().finish()

    def abort(self) -> None:
        self._writer.stop(discard=True)
        super().abort()


class _Worker:
    """A thread running jobs in order; its first failure is raised in the submitting thread."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize=_QUEUE_BLOCKS)
        self._failure: BaseException | None = None
        self._discard = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object]) -> None:
        self._raise()
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._failure is None and not self._discard:
                try:
                    job()
                except BaseException as exc:
                    self._failure = exc

    def stop(self, discard: bool = False) -> None:
        """Wait for the queued jobs (or skip them when discarding); raise a failure."""
        self._discard = discard
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        if not discard:
            self._raise()

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure


def _write_all(handle: Any, chunk: Any) -> None:
    view = memoryview(chunk)
    written = 0
    while written < len(view):
        written += handle.write(view[written:])
