"""Input tables, read in chunks with every cell as the text the user wrote.

`NA`, `null`, `007` and empty cells must reach the prompt unchanged, so pandas' NA detection and
type inference are turned off everywhere. Memory stays flat: rows arrive `chunk_rows` at a time.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, quoted, quoted_list
from openai_batch.jsondepth import MAX_DEPTH, too_deep
from openai_batch.table import csv_rows, surrogates

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 10_000
_SNIFF_BYTES = 256 * 1024

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class TableOptions:
    """How to read a data file; recorded so the same rows can be read again for the join."""

    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    limit: int | None = None
    keep_spaces: bool = False  # read `a, b` as " b" even when every field is written that way
    ragged_rows: bool = False  # rows with fewer/more fields than the header: pad/cut, not refuse

    @classmethod
    def of(cls, source: object) -> TableOptions:
        """The options `source` holds in fields of the same names (make-batch-file's arguments,
        a recorded TableSpec): copied here only, so no new option is left behind on the way."""
        return cls(**{field.name: getattr(source, field.name) for field in fields(cls)})

    def named(self) -> dict[str, Any]:
        """Each option by its name, to give a TableSpec (`TableSpec(path, **options.named())`)."""
        return asdict(self)


@dataclass
class Table:
    """An opened data file: its columns now, its rows chunk by chunk."""

    path: Path
    kind: str
    columns: list[str]
    options: TableOptions
    delimiter: str | None = None
    total_rows: int | None = None  # known up front for Parquet, else None
    # A CSV written with ", " between all fields: the space after each delimiter is not data.
    skip_spaces: bool = False
    header_as_written: list[str] | None = None  # the header before that space was skipped

    def chunks(self, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        """DataFrames of str cells (no NaN), in file order, honouring `limit`."""
        reader = {
            "csv": self._csv_chunks,
            "tsv": self._csv_chunks,
            "excel": self._excel_chunks,
            "parquet": self._parquet_chunks,
            "jsonl": self._jsonl_chunks,
        }[self.kind]
        remaining = self.options.limit
        for chunk in reader(chunk_rows):
            if remaining is not None:
                if remaining <= 0:
                    return
                if len(chunk) > remaining:
                    chunk = chunk.iloc[:remaining]
                remaining -= len(chunk)
            if len(chunk):
                yield chunk

    # -- CSV / TSV --------------------------------------------------------------------------
    def _csv_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        assert self.delimiter is not None
        fmt = csv_rows.CsvFormat(
            self.path, self.delimiter, self.options.encoding, self.skip_spaces, self.options.limit
        )
        width = len(self.columns)
        found = csv_rows.scan(fmt, width, self.options.ragged_rows)
        if found.needs_csv_module:  # rows pandas would pad or drop: read exactly
            yield from self._csv_module_chunks(fmt, chunk_rows)
            return
        try:
            reader = pd.read_csv(
                self.path,
                sep=self.delimiter,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding=self.options.encoding or "utf-8-sig",
                chunksize=chunk_rows,
                engine="c",
                compression="infer",
                header=0,
                index_col=False,
                skip_blank_lines=True,
                quoting=csv.QUOTE_MINIMAL,
                skipinitialspace=self.skip_spaces,
                nrows=self.options.limit,
            )
            with reader:
                while (chunk := _next_chunk(reader)) is not None:
                    chunk.columns = self.columns  # pandas renames repeated headers; we refuse them
                    yield chunk.fillna("")
        except UnicodeDecodeError as exc:
            raise _encoding_error(self.path, exc) from None
        except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
            if "out of memory" in str(exc):  # the C tokenizer's MemoryError (localfaults)
                raise MemoryError(f"reading {self.path}: {exc}") from None
            raise BatchError(
                f"cannot read {self.path}: {exc}",
                hint="a cell that holds the delimiter or a line break must be in double quotes"
                + ("" if self.options.delimiter else "; or give --delimiter"),
            ) from None

    def _csv_module_chunks(
        self, fmt: csv_rows.CsvFormat, chunk_rows: int
    ) -> Iterator[pd.DataFrame]:
        import pandas as pd

        try:
            records = csv_rows.rows(fmt, len(self.columns))
            while batch := list(itertools.islice(records, chunk_rows)):
                yield pd.DataFrame(batch, columns=self.columns, dtype=object)
        except UnicodeDecodeError as exc:
            raise _encoding_error(self.path, exc) from None
        except csv.Error as exc:
            raise BatchError(f"cannot read {self.path}: {exc}.") from None

    # -- Excel ----------------------------------------------------------------------------
    def _excel_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        workbook, sheet = _open_sheet(self.path, self.options.sheet)
        try:
            rows = sheet.iter_rows(values_only=True)
            next(rows, None)  # header
            width = len(self.columns)
            batch: list[list[str]] = []
            for values in rows:
                cells = [_excel_text(v) for v in values[:width]]
                if not any(cells):
                    continue
                cells += [""] * (width - len(cells))
                batch.append(cells)
                if len(batch) >= chunk_rows:
                    yield pd.DataFrame(batch, columns=self.columns, dtype=object)
                    batch = []
            if batch:
                yield pd.DataFrame(batch, columns=self.columns, dtype=object)
        finally:
            workbook.close()

    # -- Parquet --------------------------------------------------------------------------
    def _parquet_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            arrays = [
                arrow_text(batch.column(i), self.columns[i]) for i in range(batch.num_columns)
            ]
            table = pa.Table.from_arrays(arrays, names=self.columns)
            yield table.to_pandas().fillna("")

    # -- JSON Lines -----------------------------------------------------------------------
    def _jsonl_chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        import pandas as pd

        batch: list[list[str]] = []
        for number, record in _jsonl_records(self.path, self.options.encoding):
            del number
            batch.append([_json_text(record.get(c)) for c in self.columns])
            if len(batch) >= chunk_rows:
                yield pd.DataFrame(batch, columns=self.columns, dtype=object)
                batch = []
        if batch:
            yield pd.DataFrame(batch, columns=self.columns, dtype=object)


def _next_chunk(reader: Any) -> pd.DataFrame | None:
    """The next chunk; a row with more cells than the header is an error, not silent data loss."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return next(reader, None)


def open_table(path: Path, options: TableOptions | None = None) -> Table:
    """Open a data file and read its header; errors here name the file and the fix."""
    options = options or TableOptions()
    if not path.exists():
        raise BatchError(f"data file not found: {path}")
    if path.is_dir():
        raise BatchError(f"{path} is a folder, not a data file.")
    kind = table_kind(path)
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise BatchError(
                f"unknown encoding {options.encoding!r}.", hint="e.g. utf-8, cp1252, latin-1."
            ) from None
    if options.limit is not None and options.limit < 1:
        raise BatchError("--limit must be at least 1.")
    if kind in ("csv", "tsv"):
        table = _open_csv(path, kind, options)
    elif kind == "excel":
        table = _open_excel(path, options)
    elif kind == "parquet":
        table = _open_parquet(path, options)
    else:
        table = _open_jsonl(path, options)
    _check_columns(table)
    return table


def table_kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in FORMATS:
        return FORMATS[suffix]
    if suffix == ".xls":
        raise BatchError(f"{path}: old .xls workbooks are not supported.", hint="save as .xlsx.")
    raise BatchError(
        f"{path}: unknown data file type {suffix or '(no extension)'!r}.",
        hint="use .csv, .tsv, .xlsx, .parquet or .jsonl (CSV and JSONL may be .gz).",
    )


def _check_columns(table: Table) -> None:
    # Spreadsheets often export columns with no header (`Name,Age,,`): name them, don't refuse.
    table.columns = [c if c.strip() else f"(column {i})" for i, c in enumerate(table.columns, 1)]
    seen: dict[str, int] = {}
    for index, name in enumerate(table.columns, start=1):
        if name in seen:
            raise BatchError(
                f"{table.path}: column {quoted(name)} appears twice "
                f"(columns {seen[name]} and {index}).",
                hint="give every column a distinct header.",
            )
        seen[name] = index
    if not table.columns:
        raise BatchError(
            f"{table.path} has no header row.", hint="the first row names the columns."
        )


def _open_text(path: Path, encoding: str | None) -> io.TextIOBase:
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    raw = opener(path, "rb")
    return io.TextIOWrapper(raw, encoding=encoding or "utf-8-sig", newline="")


def _open_csv(path: Path, kind: str, options: TableOptions) -> Table:
    try:
        with _open_text(path, options.encoding) as fh:
            sample = fh.read(_SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, exc) from None
    if not sample.strip():
        raise BatchError(f"{path} is empty.", hint="the first row names the columns.")
    delimiter = options.delimiter
    if delimiter == "\\t" or delimiter == "tab":
        delimiter = "\t"
    if delimiter is None:
        delimiter = "\t" if kind == "tsv" else _sniff_delimiter(sample)
    _check_delimiter(delimiter)
    csv_rows.allow_long_fields()
    try:
        header = next(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise BatchError(f"cannot read the header row of {path}: {exc}.") from None
    if options.keep_spaces or not _spaced_fields(sample, delimiter):
        return Table(path, kind, header, options, delimiter=delimiter)
    columns = [name.lstrip(" ") for name in header]
    return Table(
        path, kind, columns, options, delimiter, skip_spaces=True, header_as_written=header
    )


def _spaced_fields(sample: str, delimiter: str, rows: int = 100) -> bool:
    """True when the author put a space after every delimiter (`ID, Age, College`): every
    header name after the first starts with one, and so does every non-empty cell after the
    first in the first rows. Such a space is layout, not data. Read as `csv` reads with
    `skipinitialspace`: a quoted cell after the space (`, "cats, dogs"`) is one cell."""
    if delimiter in (" ", '"'):
        return False
    text = sample
    if len(sample) >= _SNIFF_BYTES:
        text = sample[: sample.rfind("\n") + 1]  # the last line may be cut off by the sample
    lines = _fields_after_delimiters(text, delimiter, rows + 1)
    if not lines or len(lines[0]) < 1:
        return False
    header, data = lines[0], lines[1:]
    if not all(start == " " for start in header):
        return False
    return all(start in (" ", "") for line in data for start in line)


def _fields_after_delimiters(text: str, delimiter: str, lines: int) -> list[list[str]]:
    """For each record, the first character of every field after the first (`""` for an
    empty one), quotes followed as the csv module follows them."""
    found: list[list[str]] = []
    record: list[str] = []
    i, n = 0, len(text)
    ends = delimiter + "\r\n"
    while i < n and len(found) < lines:
        if text[i] in "\r\n" and not record:  # a blank line is no record
            i += 1
            continue
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            while i < n:
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        while i < n and text[i] not in ends:
            i += 1
        if i < n and text[i] == delimiter:
            i += 1
            record.append(text[i] if i < n and text[i] not in ends else "")
            continue
        found.append(record)
        record = []
        if i < n and text[i] == "\r" and i + 1 < n and text[i + 1] == "\n":
            i += 1
        i += 1
    if record:
        found.append(record)
    return found


def _check_delimiter(delimiter: str) -> None:
    """One ASCII character that is not a quote or a line break: what the csv module, pandas'
    C reader and Arrow (the fast paths) all split on the same way."""
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise BatchError(
            f"--delimiter must be one ASCII character other than a quote or a line break, "
            f"not {delimiter!r}.",
            hint="save the table with commas, tabs, ; or | between the cells "
            "(spreadsheet programs can), or give --delimiter one of those",
        )


def _sniff_delimiter(sample: str) -> str:
    """Comma unless the header row clearly uses `;`, tab or `|` (European Excel writes `;`)."""
    first_line = sample.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(sample[:65536], delimiters=",;\t|")
        if dialect.delimiter in first_line:
            return dialect.delimiter
    except csv.Error:
        pass
    counts = {d: first_line.count(d) for d in ",;\t|"}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _encoding_error(path: Path, exc: UnicodeDecodeError) -> BatchError:
    return BatchError(
        f"{path} is not valid UTF-8 (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}).",
        hint="save it as UTF-8, or give its encoding with --encoding (e.g. cp1252 or latin-1).",
    )


def _open_sheet(path: Path, sheet_name: str | None) -> tuple[Any, Any]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise BatchError(f"cannot open {path} as an Excel workbook: {exc}") from None
    if sheet_name is None:
        return workbook, workbook.worksheets[0]
    if sheet_name not in workbook.sheetnames:
        names = quoted_list(workbook.sheetnames)
        workbook.close()
        raise BatchError(f"{path} has no sheet {sheet_name!r}.", hint=f"its sheets are: {names}.")
    return workbook, workbook[sheet_name]


def _open_excel(path: Path, options: TableOptions) -> Table:
    workbook, sheet = _open_sheet(path, options.sheet)
    try:
        header_row = next(sheet.iter_rows(values_only=True, max_row=1), ())
    finally:
        workbook.close()
    header = [_excel_text(v) for v in header_row]
    while header and header[-1] == "":
        header.pop()
    return Table(path, "excel", header, options)


def _excel_text(value: Any) -> str:
    """A cell as Excel stores it: whole numbers without `.0`, dates in ISO form."""
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _open_parquet(path: Path, options: TableOptions) -> Table:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise BatchError(f"cannot read {path} as Parquet: {exc}") from None
    total = parquet.metadata.num_rows
    if options.limit is not None:
        total = min(total, options.limit)
    return Table(path, "parquet", list(parquet.schema_arrow.names), options, total_rows=total)


def arrow_text(array: Any, name: str = "") -> Any:
    """A Parquet column as text; nulls become empty cells (the fast path shares this)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    if pa.types.is_floating(array.type):
        # 28.0 -> "28": the number as a person would have typed it (only where that is exact).
        whole = pc.and_(
            pc.equal(array, pc.floor(array)), pc.less(pc.abs(array), float(2**53))
        ).fill_null(False)
        as_int = pc.cast(pc.if_else(whole, array, 0), pa.int64(), safe=False)
        return pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(array, pa.string()))
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        try:
            return pc.cast(array, pa.string())
        except pa.ArrowInvalid:
            raise BatchError(
                f"column {quoted(name)} holds binary data that is not UTF-8 text.",
                hint="convert it to text (or leave it out of the table).",
            ) from None
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        values = array.to_pylist()
        return pa.array([None if v is None else _dump_python(v) for v in values], pa.string())


def _dump_python(value: Any) -> str:
    """Lists, maps and structs from Parquet, as JSON text."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _jsonl_records(path: Path, encoding: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each line's object; numbers are kept as written (`1.50` stays `1.50`)."""
    try:
        with _open_text(path, encoding) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if too_deep(line):  # the json module would recurse near the limit (jsondepth)
                    raise BatchError(
                        f"{path}, line {number}: nested too deeply to read (more than "
                        f"{MAX_DEPTH} lists or objects inside each other)."
                    )
                try:
                    record = json.loads(line, parse_float=_Raw, parse_int=_Raw)
                except json.JSONDecodeError as exc:
                    raise BatchError(
                        f"{path}, line {number}: not valid JSON ({exc.msg})."
                    ) from None
                if not isinstance(record, dict):
                    raise BatchError(f"{path}, line {number}: each line must be a JSON object.")
                if surrogates.may_hold(line):
                    _refuse_surrogates(path, number, record)
                yield number, record
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, exc) from None


def _refuse_surrogates(path: Path, number: int, record: dict[str, Any]) -> None:
    for column, value in record.items():
        if surrogates.find({column: value}) is not None:
            raise BatchError(
                f"{path}, line {number}: column {quoted(column)} holds a lone UTF-16 surrogate, "
                "which is not text: no request can carry it.",
                hint=surrogates.HINT,
            )


class _Raw(str):
    """A JSON number kept as the text it was written as."""


def _json_text(value: Any) -> str:
    """A JSON Lines value as cell text: strings as they are, anything else as its JSON."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, _Raw):
        return str(value)
    return _dump(value)


def _dump(value: Any) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_dump(k)}: {_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _open_jsonl(path: Path, options: TableOptions) -> Table:
    columns: list[str] = []
    known: set[str] = set()
    for _, record in _jsonl_records(path, options.encoding):  # every key, however late it appears
        if not known.issuperset(record):
            columns += [key for key in record if key not in known]
            known.update(record)
    if not columns:
        raise BatchError(f"{path} holds no JSON objects.")
    return Table(path, "jsonl", columns, options)
