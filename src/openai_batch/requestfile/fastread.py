"""The fast path's input: a CSV/TSV (UTF-8, not .gz) or Parquet table read as Arrow blocks
of string columns, with every check that keeps its rows identical to what the general path
(pandas, `table/read.py`) reads; where they could differ it raises `Fallback`.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.requestfile.fallback import Fallback
from openai_batch.table.csv_rows import arrow_parse_options

if TYPE_CHECKING:
    import pyarrow as pa

    from openai_batch.table.read import Table

BLOCK_BYTES = 1 << 19  # CSV bytes per block: ~7 MB of lines, so memory stays low and pages warm
PARQUET_ROWS = 8192


def readable(table: Table) -> bool:
    """Whether these blocks can be read of this table: a CSV/TSV in UTF-8 (not .gz), Parquet."""
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


def blocks(table: Table, needed: list[str]) -> Iterator[pa.RecordBatch]:
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
    parse = arrow_parse_options(table.delimiter)
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True)
    with (
        _CarriageReturnCheck(table.path) as raw,
        pacsv.open_csv(
            raw, read_options=read, parse_options=parse, convert_options=convert
        ) as reader,
    ):
        if reader.schema.names != header:
            raise Fallback  # the header reads differently (BOM, quoting): let pandas decide
        if table.skip_spaces and _quote_without_space(table.path, table.delimiter or ","):
            raise Fallback
        for block in reader:
            raw.check()
            yield _skip_spaces(block, table.columns) if table.skip_spaces else block
        raw.check(end=True)


def _quote_without_space(path: Path, delimiter: str) -> bool:
    """Whether a quote opens a cell right at a line's start or right after a delimiter, in a
    file written with `, `: pandas keeps the spaces inside such a quoted cell (`" a"`), and
    pyarrow, which has unquoted it, cannot tell them from the layout's spaces `_skip_spaces`
    drops. Such files (small, hand-made) are left to pandas; the scan runs at memchr speed."""
    import mmap
    import re

    if path.stat().st_size == 0:
        return False
    pattern = re.compile(rb"(?:\A|[\r\n" + re.escape(delimiter.encode()) + rb'])"')
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return pattern.search(view) is not None  # type: ignore[call-overload]


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
