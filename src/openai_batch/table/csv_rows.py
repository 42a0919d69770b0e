"""What a row of a CSV/TSV file is: what Python's `csv` module reads.

A line that is truly empty is not a row; a line of spaces is (in a one-column file, a row whose
cell is those spaces; in a wider file, a row with too few fields). A row with fewer or more
fields than the header is an error naming it, unless the user accepts ragged rows (then short
rows get empty cells and extra fields are ignored).

pandas' fast reader drops lines of spaces and pads short rows silently, so before it reads a
file, a structural pass (pyarrow's multi-threaded reader, counting fields only) finds the rows
it would get wrong. Files without them are read by pandas as before; files with them, by the
`csv` module, which is the definition.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, quoted
from openai_batch.ui.console import plural

RAGGED_HINT = (
    "fix that row (a cell holding the delimiter must be in double quotes), or give "
    "--ragged-rows to read short rows with empty cells and ignore extra fields"
)


@dataclass(frozen=True)
class Structure:
    """What the structural pass found."""

    ragged: bool  # some row has fewer or more fields than the header
    spaces_only: bool  # a one-column file has a row of only spaces/tabs
    lone_cr: bool = False  # a "\r" not followed by "\n": pandas reads some such files wrongly

    @property
    def needs_csv_module(self) -> bool:
        return self.ragged or self.spaces_only or self.lone_cr


@dataclass(frozen=True)
class CsvFormat:
    """How to split the file into fields, as the table reader uses it."""

    path: Path
    delimiter: str
    encoding: str | None
    skip_spaces: bool
    limit: int | None


# Arrow's block size for the pass: its read-ahead grows with the block size, and with 1 MiB
# blocks the peak grew with the file (+50 MB at 19 MB, +90 MB at 94 MB); with 256 KiB it is
# flat (+38 MB) at the same CPU. A row longer than a block can stop Arrow ("straddling
# object"): that file is read again with bigger blocks.
_BLOCK_SIZES = (1 << 18, 1 << 20, 1 << 24)


def arrow_parse_options(delimiter: str | None, invalid: Any = None) -> Any:
    """How Arrow must split a CSV to read the rows the csv module reads (one rule for all)."""
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        ignore_empty_lines=True,
        invalid_row_handler=invalid,
    )


def scan(fmt: CsvFormat, columns: int, accept_ragged: bool) -> Structure:
    """Find ragged rows and rows of only spaces; a ragged row is an error naming it unless
    `accept_ragged`. A file this pass cannot read is left to the reader (its errors are
    clearer)."""
    import pyarrow as pa

    if fmt.skip_spaces:
        return _scan_spaced(fmt, columns, accept_ragged)
    found: tuple[list[Any], bool] | None = None
    try:
        for block_size in _BLOCK_SIZES:
            try:
                found = _scan_blocks(fmt, columns, block_size)
                break
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc) or block_size == _BLOCK_SIZES[-1]:
                    raise
    except (pa.ArrowException, OSError, LookupError, ValueError):
        return Structure(ragged=False, spaces_only=False)
    finally:
        pa.default_memory_pool().release_unused()  # the pass's buffers: not kept for the join
    assert found is not None
    ragged, spaces_only = found
    if fmt.limit is not None:
        ragged = [r for r in ragged if r.number is None or r.number - 1 <= fmt.limit]
    if ragged and not accept_ragged:
        raise _ragged_error(fmt, ragged)
    return Structure(bool(ragged), spaces_only, _has_lone_cr(fmt))


def _scan_blocks(fmt: CsvFormat, columns: int, block_size: int) -> tuple[list[Any], bool]:
    """(the ragged rows, whether a one-column file has a row of only spaces), read by Arrow
    in blocks of `block_size` bytes."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    ragged: list[Any] = []

    def invalid(row: Any) -> str:
        ragged.append(row)
        return "skip"

    threads = fmt.limit is None  # with a limit, read in order and stop early
    reader = pacsv.open_csv(
        pa.input_stream(str(fmt.path), compression="detect"),
        read_options=pacsv.ReadOptions(
            use_threads=threads,
            block_size=block_size,
            encoding=_pyarrow_encoding(fmt.encoding),
        ),
        parse_options=arrow_parse_options(fmt.delimiter, invalid),
        convert_options=pacsv.ConvertOptions(
            include_columns=[] if columns > 1 else None,
            column_types=None,
            strings_can_be_null=False,
            null_values=[],
        ),
    )
    spaces_only = False
    seen = 0
    with reader:
        for block in reader:
            if columns == 1 and block.num_columns:
                spaces_only = spaces_only or _spaces_only(block.column(0))
            seen += block.num_rows
            if fmt.limit is not None and seen + len(ragged) >= fmt.limit:
                break
    return ragged, spaces_only


def _has_lone_cr(fmt: CsvFormat, block: int = 1 << 24) -> bool:
    """Whether the file holds a carriage return that does not start a CRLF (old Mac line ends,
    or a stray one in a cell): pandas can drop the row after one (`\r,` reads as no row)."""
    encoding = (fmt.encoding or "utf-8").lower().replace("-", "").replace("_", "")
    if encoding.startswith(("utf16", "utf32")):
        return False  # not ASCII-compatible; such files are rare and read as before
    opener: Any = gzip.open if fmt.path.suffix.lower() == ".gz" else open
    try:
        with opener(fmt.path, "rb") as fh:
            carry = b""
            while chunk := fh.read(block):
                data = carry + chunk
                if b"\r" in data:
                    end = len(data) - 1 if data.endswith(b"\r") else len(data)
                    # every \r before `end` starts a \r\n: as many of those as of \r (C speed)
                    if data.count(b"\r", 0, end) != data.count(b"\r\n", 0, end + 1):
                        return True
                    carry = b"\r" if end < len(data) else b""
                else:
                    carry = b""
            return carry == b"\r"
    except (OSError, EOFError):
        return False


@dataclass(frozen=True)
class _Row:
    """A ragged row as pyarrow's invalid-row handler describes one."""

    expected_columns: int
    actual_columns: int
    number: int  # 1 is the header
    text: str


def _scan_spaced(fmt: CsvFormat, columns: int, accept_ragged: bool) -> Structure:
    """pyarrow cannot skip the space before a quoted cell (`1, "cats, dogs"` would be three
    fields to it): files written with `, ` (small, hand-made tables) are checked by the csv
    module itself, which reads them."""
    ragged: list[_Row] = []
    spaces_only = False
    try:
        for number, record in enumerate(_records(fmt), start=2):
            if fmt.limit is not None and number - 1 > fmt.limit:
                break
            if len(record) != columns:
                ragged.append(_Row(columns, len(record), number, fmt.delimiter.join(record)))
            elif columns == 1 and record[0].strip(" \t") == "" and record[0]:
                spaces_only = True
    except (OSError, UnicodeDecodeError, csv.Error):
        return Structure(ragged=False, spaces_only=False)  # the reader says it better
    if ragged and not accept_ragged:
        raise _ragged_error(fmt, ragged)
    return Structure(ragged=bool(ragged), spaces_only=spaces_only)


def _pyarrow_encoding(encoding: str | None) -> str:
    return "utf8" if encoding is None or encoding.lower().replace("-", "_") in (
        "utf_8", "utf8", "utf_8_sig",
    ) else encoding  # fmt: skip


def _spaces_only(column: Any) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(pc.match_substring_regex(column, "^[ \t]+$")).as_py())


def _ragged_error(fmt: CsvFormat, ragged: list[Any]) -> BatchError:
    first = ragged[0]
    if first.number is None:  # read in parallel: find the row by reading in order
        first = _first_ragged_in_order(fmt) or first
    row = f"row {first.number - 1}" if first.number is not None else "a row"
    more = f" ({len(ragged):,} rows in all)" if len(ragged) > 1 else ""
    return BatchError(
        f"{fmt.path}, {row}: {plural(first.actual_columns, 'field')} where the header has "
        f"{first.expected_columns}: {quoted(first.text)}{more}.",
        hint=RAGGED_HINT,
    )


def _first_ragged_in_order(fmt: CsvFormat) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    found: list[Any] = []

    def invalid(row: Any) -> str:
        found.append(row)
        return "error"

    try:
        with pacsv.open_csv(
            pa.input_stream(str(fmt.path), compression="detect"),
            read_options=pacsv.ReadOptions(
                use_threads=False, encoding=_pyarrow_encoding(fmt.encoding)
            ),
            parse_options=arrow_parse_options(fmt.delimiter, invalid),
            convert_options=pacsv.ConvertOptions(include_columns=[]),
        ) as reader:
            for _ in reader:
                pass
    except (pa.ArrowException, OSError, ValueError):
        pass
    return found[0] if found else None


def rows(fmt: CsvFormat, columns: int) -> Iterator[list[str]]:
    """Every data row as the `csv` module reads it (the header skipped, truly empty lines
    skipped), cut or padded to `columns` fields."""
    for record in _records(fmt):
        if len(record) < columns:
            record += [""] * (columns - len(record))
        yield record[:columns]


FIELD_LIMIT = 2**31 - 1  # the most the `csv` module takes on every platform (a C long)


def allow_long_fields() -> None:
    """Let the `csv` module read a cell of any length (its default stops at 131,072
    characters: a long email or document in one cell made the file unreadable). The limit is
    the process's: raised, never lowered."""
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)


def _records(fmt: CsvFormat) -> Iterator[list[str]]:
    """Every data record as the `csv` module reads it: the header and truly empty lines
    skipped."""
    opener: Any = gzip.open if fmt.path.suffix.lower() == ".gz" else open
    raw = opener(fmt.path, "rb")
    text = io.TextIOWrapper(raw, encoding=fmt.encoding or "utf-8-sig", newline="")
    allow_long_fields()
    with text:
        reader = csv.reader(
            text,
            delimiter=fmt.delimiter,
            quotechar='"',
            doublequote=True,
            skipinitialspace=fmt.skip_spaces,
            strict=False,
        )
        next(reader, None)
        for record in reader:
            if record:
                yield record
