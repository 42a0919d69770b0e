"""Result tables in the format the file name asks for, written row by row in flat memory.

`.csv` (also the format of `--csv` whatever the name), `.tsv`, `.jsonl`, `.parquet` (typed:
token counts as integers, structured-output columns typed from the response schema) and `.xlsx`
(every cell stored as text, so a spreadsheet never evaluates a model's `=HYPERLINK(...)`).
Every writer is atomic: the file appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError, quoted
from openai_batch.local import files
from openai_batch.local.writer import OrderedWriter

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".xlsx": "xlsx"}
EXCEL_MAX_ROWS = 1_048_576  # rows of a worksheet, the header row included
EXCEL_MAX_CELL = 32_767  # characters in one cell; openpyxl would cut a longer one silently
INT64 = range(-(2**63), 2**63)
PARQUET_BATCH_ROWS = 10_000
# Cells a spreadsheet would read as a formula (OWASP's list): = + - @ tab, carriage return.
FORMULA_FIRST = "=+-@\t\r"
_FORMULA_START = re.compile("[" + re.escape(FORMULA_FIRST) + "]")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Characters XML 1.0 (and so .xlsx) cannot hold.
_CARRIAGE_RETURN = re.compile("\r\n?")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Lone UTF-16 surrogates: valid in JSON text ("\\ud800"), impossible in any UTF-8 file.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class TableTarget:
    """Where a result table goes and in which format."""

    path: Path
    kind: str  # csv, tsv, jsonl, parquet, xlsx

    @property
    def flag(self) -> str:
        """The option that names it, for messages."""
        return "--csv" if self.kind == "csv" else "--table"

    @property
    def label(self) -> str:
        return {"csv": "CSV", "tsv": "TSV", "jsonl": "JSONL", "xlsx": "Excel"}.get(
            self.kind, self.kind.capitalize()
        )


def table_target(path: Path | None, *, csv_path: Path | None = None) -> TableTarget | None:
    """`--table PATH` (format from the extension) or `--csv PATH` (always CSV), not both."""
    if path is not None and csv_path is not None:
        raise BatchError(
            "give either --csv or --table, not both",
            hint="--table takes the format from the extension: .csv .tsv .jsonl .parquet .xlsx",
        )
    if csv_path is not None:
        return TableTarget(Path(csv_path), "csv")
    if path is None:
        return None
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise BatchError(
            f"--table {path}: unknown table format {Path(path).suffix or '(no extension)'!r}",
            hint="name it .csv, .tsv, .jsonl, .parquet or .xlsx",
        )
    return TableTarget(Path(path), kind)


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet would evaluate this cell (a plain signed number would not)."""
    return bool(_FORMULA_START.match(text)) and not _PLAIN_NUMBER.fullmatch(text)


class TableWriter:
    """Rows in, one file out. Use as a context manager; the file exists only after a clean exit."""

    def __init__(
        self,
        target: TableTarget,
        columns: Sequence[str],
        types: dict[str, str] | None = None,
        ready: Callable[[], object] | None = None,
    ) -> None:
        """`types`: Parquet/JSONL types of some columns by name ("int", "float", "bool").
        `ready`: called once the file is finished, before it takes its name; if it raises,
        the file is dropped (the join's table waits there for the responses file)."""
        self.target = target
        self._ready = ready
        self.columns = list(columns)
        self.types = types or {}
        self.rows = 0
        self.replaced_characters = 0  # .xlsx: control characters as U+FFFD, CR (LF) as LF
        self.surrogates = 0  # lone surrogates written as U+FFFD (no UTF-8 file holds them)
        self.untyped: dict[str, int] = {}  # Parquet: cells of a typed column that did not fit
        self._stack = contextlib.ExitStack()
        self._impl: _Impl

    def __enter__(self) -> TableWriter:
        kind = self.target.kind
        if kind in ("csv", "tsv"):
            fh = self._stack.enter_context(files.atomic_write(self.target.path, "w"))
            self._impl = _Delimited(fh, "," if kind == "csv" else "\t", self.columns)
        elif kind == "jsonl":
            fh = self._stack.enter_context(files.atomic_write(self.target.path, "w"))
            self._impl = _Jsonl(fh, self.columns, self.types)
        elif kind == "parquet":
            temp = self._stack.enter_context(_atomic_path(self.target.path))
            self._impl = _Parquet(temp, self.columns, self.types, self)
        else:
            temp = self._stack.enter_context(_atomic_path(self.target.path))
            self._impl = _Excel(temp, self.columns, self)
        return self

    def write(self, cells: Sequence[Any]) -> None:
        self.rows += 1
        try:
            self._impl.write(cells)
        except UnicodeEncodeError:  # rare: checked only when encoding fails, off the hot path
            self._impl.write([self.without_surrogates(value) for value in cells])

    def delimited(self) -> tuple[str, str] | None:
        """CSV/TSV: (delimiter, the characters that make a cell quoted), for writing blocks
        of rows as text with write_text (csvblock); None for the other formats."""
        if not isinstance(self._impl, _Delimited):
            return None
        return self._impl.delimiter, self._impl.special

    def write_text(self, text: bytes | memoryview, rows: int) -> None:
        """`rows` whole CSV/TSV lines already written as UTF-8 text (csvblock)."""
        assert isinstance(self._impl, _Delimited)
        self.rows += rows
        self._impl.write_text(text)

    def without_surrogates(self, value: Any) -> Any:
        """A cell with each lone surrogate as U+FFFD, counted for the summary's note."""
        if not isinstance(value, str):
            return value
        text, replaced = _SURROGATE.subn("\ufffd", value)
        self.surrogates += replaced
        return text

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool | None:
        """Commit only after the format's own finishing step succeeded (Parquet footers,
        the .xlsx archive): a failure there drops the temp file like any other error."""
        try:
            if kind is None:
                self._impl.close()
                if self._ready is not None:
                    self._ready()
            else:
                self._impl.abort()
        except BaseException as error:
            with contextlib.suppress(Exception):
                self._impl.abort()
            if not self._stack.__exit__(type(error), error, error.__traceback__):
                raise
            return None
        return self._stack.__exit__(kind, value, tb)


class _Impl:
    def write(self, cells: Sequence[Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file."""

    def abort(self) -> None:
        """Give up (the temp file is removed by the atomic writer)."""


class _Delimited(_Impl):
    """csv.writer's QUOTE_MINIMAL with "\\n" line ends (what the join always wrote), ~4x
    faster, and also quoting a lone carriage return, which Python 3.11's csv leaves bare and
    every reader then takes for a line end (a row split in two)."""

    def __init__(self, fh: IO[str], delimiter: str, columns: list[str]) -> None:
        self._fh = fh
        self._thread: OrderedWriter | None = None  # writing the blocks of text (write_text)
        self.delimiter = delimiter
        self.special = "".join(dict.fromkeys((*_quoted_characters(delimiter), "\r")))
        # One regex search per cell (C speed), not one `in` test per special character.
        self._needs_quotes = re.compile("[" + re.escape(self.special) + "]").search
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerow(columns)

    def write(self, cells: Sequence[Any]) -> None:
        self._written()
        out = self._texts(cells)
        if len(out) == 1 and not out[0]:
            out[0] = '""'  # a lone empty field, as csv writes it
        self._fh.write(self.delimiter.join(out) + "\n")

    def write_text(self, text: bytes | memoryview) -> None:
        """Lines already encoded: after the text written so far, straight to the bytes, by a
        writer thread (the next block is built meanwhile)."""
        if self._thread is None:
            self._fh.flush()  # the header and any rows written one by one go first
            self._thread = OrderedWriter("table-writer", depth=1)
        self._thread.submit(functools.partial(self._fh.buffer.write, text))  # type: ignore[attr-defined]

    def _written(self) -> None:
        """Wait for the blocks handed to the writer thread (a row written here comes after)."""
        if self._thread is not None:
            thread, self._thread = self._thread, None
            thread.stop()

    def close(self) -> None:
        self._written()

    def abort(self) -> None:
        if self._thread is not None:
            thread, self._thread = self._thread, None
            thread.stop(discard=True)

    def _texts(self, cells: Sequence[Any]) -> list[str]:
        needs_quotes = self._needs_quotes
        out = []
        for value in cells:
            text = value if type(value) is str else "" if value is None else str(value)
            if needs_quotes(text):
                text = '"' + text.replace('"', '""') + '"'
            out.append(text)
        return out


def _quoted_characters(delimiter: str) -> tuple[str, ...]:
    """The characters that make this Python's csv.writer quote a field."""
    import io

    found = []
    for char in dict.fromkeys((delimiter, '"', "\n", "\r", "\t", " ", ",", "#", "\x00")):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow([f"a{char}b", "x"])
        if buffer.getvalue().startswith('"'):
            found.append(char)
    return tuple(found)


class _Jsonl(_Impl):
    """Each row as `json.dumps(row, ensure_ascii=False)` writes it, built from its pieces: the
    keys' JSON written once, text cells by the json module's own string encoder (what dumps
    calls for them), typed cells by dumps itself."""

    def __init__(self, fh: IO[str], columns: list[str], types: dict[str, str]) -> None:
        self._fh = fh
        self._keys = [json.dumps(c, ensure_ascii=False) + ": " for c in columns]
        self._typed = [types.get(c) for c in columns]

    def write(self, cells: Sequence[Any]) -> None:
        encode = _encode_text
        pieces = []
        for key, value, kind in zip(self._keys, cells, self._typed, strict=True):
            if kind is None:  # _typed(value, None), inline: most cells
                text = "" if value is None else value if isinstance(value, str) else str(value)
                pieces.append(key + encode(text))
                continue
            typed = _typed(value, kind)
            sent = _as_sent(value) if typed is _UNFIT else typed
            pieces.append(key + _json_value(sent))
        self._fh.write("{" + ", ".join(pieces) + "}\n")


class _Parquet(_Impl):
    """Row groups of PARQUET_BATCH_ROWS rows: memory holds one batch, never the table."""

    def __init__(
        self, path: Path, columns: list[str], types: dict[str, str], owner: TableWriter
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow_types = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        self._schema = pa.schema(
            [pa.field(c, arrow_types.get(types.get(c) or "", pa.string())) for c in columns]
        )
        self._typed = [types.get(c) for c in columns]
        self._batch: list[list[Any]] = [[] for _ in columns]
        self._writer = pq.ParquetWriter(path, self._schema)
        self._owner = owner

    def write(self, cells: Sequence[Any]) -> None:
        for name, column, value, kind in zip(
            self._schema.names, self._batch, cells, self._typed, strict=True
        ):
            if kind is None:  # _typed(value, None), inline: most cells
                column.append(
                    "" if value is None else value if isinstance(value, str) else str(value)
                )
                continue
            typed = _typed(value, kind)
            if typed is _UNFIT:
                self._owner.untyped[name] = self._owner.untyped.get(name, 0) + 1
                typed = None
            column.append(typed)
        if len(self._batch[0]) >= PARQUET_BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:

        if self._batch and self._batch[0]:
            try:
                table = self._table()
            except UnicodeEncodeError:  # a lone surrogate somewhere in this batch
                self._batch = [[self._owner.without_surrogates(v) for v in c] for c in self._batch]
                table = self._table()
            self._writer.write_table(table)
            self._batch = [[] for _ in self._batch]

    def _table(self) -> Any:
        import pyarrow as pa

        columns = dict(zip(self._schema.names, self._batch, strict=True))
        return pa.Table.from_pydict(columns, schema=self._schema)

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        self._writer.close()


class _Excel(_Impl):
    """openpyxl's write-only workbook; every cell a string cell, never a formula."""

    def __init__(self, path: Path, columns: list[str], owner: TableWriter) -> None:
        from openpyxl import Workbook

        self._path = path
        self._owner = owner
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet("results")
        self._rows = 0
        self.write(columns)

    def write(self, cells: Sequence[Any]) -> None:
        from openpyxl.cell import WriteOnlyCell

        self._rows += 1
        if self._rows > EXCEL_MAX_ROWS:
            raise BatchError(
                f"{self._owner.target.path}: the table has more than {EXCEL_MAX_ROWS - 1:,} "
                "rows, the most an Excel worksheet holds (nothing was written)",
                hint="write it as .csv, .parquet or .jsonl instead",
            )
        row = []
        for number, value in enumerate(cells):
            text = "" if value is None else str(value)
            if len(text) > EXCEL_MAX_CELL:
                raise BatchError(
                    f"{self._owner.target.path}: row {self._rows - 1:,}, column "
                    f"{quoted(self._owner.columns[number])} holds {len(text):,} characters; an "
                    f"Excel cell holds at most {EXCEL_MAX_CELL:,} (nothing was written)",
                    hint="write it as .csv, .parquet or .jsonl instead, which keep every character",
                )
            if _XML_ILLEGAL.search(text):
                text, n = _XML_ILLEGAL.subn("\ufffd", text)
                self._owner.replaced_characters += n
            if "\r" in text:  # XML reads a carriage return as a line feed: say so, do it here
                text, n = _CARRIAGE_RETURN.subn("\n", text)
                self._owner.replaced_characters += n
            cell = WriteOnlyCell(self._sheet, value=text or None)
            if text:
                cell.data_type = "s"  # a string, even when it starts with "="
            row.append(cell)
        self._sheet.append(row)

    def close(self) -> None:
        self._book.save(self._path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # finish the sheet's writer; the file is dropped
            self._sheet.close()
        self._book.close()


_UNFIT = object()  # a cell that does not fit its column's type
# The json module's encoder of a str when ensure_ascii is off (what json.dumps uses for one).
_encode_text = json.encoder.encode_basestring


def _json_value(value: Any) -> str:
    """json.dumps(value, ensure_ascii=False), without its call for what typed cells mostly
    hold (an integer, null, a boolean)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


def _typed(value: Any, kind: str | None) -> Any:
    """A cell as its column's type; empty is null; a value that does not fit is `_UNFIT`
    (Parquet stores null and the summary counts it; JSONL keeps the value as sent)."""
    if kind is None:
        return "" if value is None else value if isinstance(value, str) else str(value)
    if value is None or value == "":
        return None
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return _UNFIT
    if isinstance(parsed, bool):
        return parsed if kind == "bool" else _UNFIT
    if kind == "int" and isinstance(parsed, float) and parsed.is_integer():
        parsed = int(parsed)  # 30.0 is the integer 30 (JSON Schema's "integer")
    if kind == "int" and isinstance(parsed, int):
        return parsed if parsed in INT64 else _UNFIT
    if kind == "float" and isinstance(parsed, int | float):
        return float(parsed)
    return _UNFIT


def _as_sent(value: Any) -> Any:
    """A JSONL cell that did not fit its type: the JSON value it was, else its text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@contextlib.contextmanager
def _atomic_path(final: Path) -> Iterator[Path]:
    """A temp path beside `final` that a library writes by name; renamed into place on success."""
    temp = files.temp_path_for(final)
    try:
        yield temp
        files.commit(temp, final)
    except BaseException:
        files.discard(temp)
        raise
