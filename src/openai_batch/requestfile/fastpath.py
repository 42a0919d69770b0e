"""The vectorised make-batch-file: whole blocks of rows at a time, at about the speed of the disk.

When every placeholder of a template is a plain column inside a JSON string
(`Template.columns_only`), each request line is the same literal text with escaped cells in
between. So instead of rendering row by row, we read the table in ~1 MB Arrow blocks, JSON-escape
each used column once per block with `pyarrow.compute`, join literals and columns into every line
with `binary_join_element_wise`, and hand the resulting buffer to a writer thread. The shards
follow `shards.ShardWriter`'s rules exactly; nothing is kept per row.

The promise is byte-identical output to the general path. Whenever this path cannot keep it (a
parse problem, an empty or repeated custom_id, a line over the size limit, a file pandas would
refuse) it raises `Fallback`: what was written is discarded and the general path renders the
table, producing the same files or the precise error naming the row. CSV/TSV in UTF-8 (not .gz)
and Parquet take this path; other tables, Jinja expressions, blocks and images do not.

`OPENAI_BATCH_RENDERER` chooses the renderer: `auto` (default), `general` (never this path) or
`fast` (falling back is an error: the tests use it to know which path wrote the files).

This module drives the path and writes the shards; `fastread.py` reads the table's blocks,
`fastlines.py` turns a block into request lines.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch import settings
from openai_batch.errors import BatchError
from openai_batch.local import files, interrupts
from openai_batch.local.writer import OrderedWriter
from openai_batch.requestfile.fallback import Fallback
from openai_batch.requestfile.fastlines import IdChecker, LineRenderer, array_offsets
from openai_batch.requestfile.fastread import blocks as read_blocks
from openai_batch.requestfile.fastread import readable
from openai_batch.requestfile.firstline import check_first_line
from openai_batch.requestfile.shards import MakeResult, ShardWriter, _Shard

if TYPE_CHECKING:
    import pyarrow as pa

    from openai_batch.requestfile.options import MakeOptions
    from openai_batch.table.read import Table
    from openai_batch.template.prompt import Template

RENDERER_ENV = settings.RENDERER
RENDER_BYTES = 4 << 20  # template text rendered per piece of a block: bounds memory per block
_QUEUE_BLOCKS = 3  # blocks waiting for the writer thread (bounds memory)


def renderer_choice() -> str:
    """`auto` (the default), `general` (never the fast path) or `fast` (for tests: falling back
    to the general path is an error, so a test knows which path wrote the files)."""
    choice = settings.renderer()
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
    return template.columns_only and readable(table)


def make_fast(
    table: Table, template: Template, template_path: Path, data_path: Path, opts: MakeOptions
) -> MakeResult:
    """Render every row into request files, block by block; raises Fallback when unsure."""
    import pyarrow as pa

    renderer = LineRenderer(template, opts.endpoint, opts.id_prefix, opts.id_column)
    writer = BlockShardWriter(opts.output, opts.max_requests, opts.max_bytes)
    ids = IdChecker() if opts.id_column is not None else None
    start = 0
    first: _Background | None = None
    blocks = read_blocks(table, renderer.columns())
    rows = max(1, RENDER_BYTES // renderer.literal_bytes())  # a long template: fewer rows
    bar = opts.rows_progress(table.total_rows)
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
        if first is not None and opts.checker is not None:
            opts.checker.abandon()  # its answer is not wanted: first.wait() must not wait for it
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


# Writing: ShardWriter's rules, applied to whole blocks, with file I/O in a thread


class BlockShardWriter(ShardWriter):
    """A `shards.ShardWriter` that takes a block of lines at once.

    Splitting is decided here with the sizes of the lines, exactly as `ShardWriter.add` would
    line by line (a new shard when the current one has max_requests lines or the next line would
    pass max_bytes). Writing runs in a thread of its own (it releases the GIL), so rendering
    the next block overlaps it.
    """

    def __init__(self, output: Path, max_requests: int, max_bytes: int) -> None:
        super().__init__(output, max_requests, max_bytes)
        self._writer = OrderedWriter("batch-writer", _QUEUE_BLOCKS)

    def add_block(self, lines: pa.StringArray, first_row: int) -> None:
        import numpy as np

        offsets = array_offsets(lines)
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
        with interrupts.deferred():  # a temp file made is a temp file `abort` knows
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


def _write_all(handle: Any, chunk: Any) -> None:
    view = memoryview(chunk)
    written = 0
    while written < len(view):
        written += handle.write(view[written:])
