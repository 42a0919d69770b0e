"""The CSV/TSV text of a block of joined rows, built a column at a time by Arrow.

The per-row writer (tablewriter._Delimited) spends Python work on every cell; a million rows
of a dozen cells made that most of the join's table time. Here each column of a block is
turned into text, quoted and joined by Arrow compute, and the block's lines reach the file as
one bytes object. The rules are the per-row writer's, so the bytes are the same: a cell is
its str (None is empty, any other value `str()`), quoted when it holds a character the
`csv` module quotes for that delimiter (or a carriage return), with its quotes doubled.
Where Arrow cannot promise that (a cell that is no UTF-8 text: a lone surrogate; a block
over Arrow's 2 GB string limit) `DelimitedBlocks.text` returns None and the caller writes
those rows one at a time. The statuses and the formula-like cells (`_Counter`'s counts) are
counted here too, a column at a time, by the same rule (tablewriter.looks_like_formula).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from openai_batch.results.tablewriter import FORMULA_FIRST, looks_like_formula

_FORMULA_BYTES = FORMULA_FIRST.encode("ascii")  # ASCII: a UTF-8 cell's first byte tells


def _formula_table() -> Any:
    """Per byte value, whether a cell starting with it may be a formula (numpy bools)."""
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(_FORMULA_BYTES)] = True
    return table


_FORMULA_TABLE = _formula_table()


@dataclass
class BlockText:
    """One block's lines as bytes, and what they hold."""

    data: bytes | memoryview
    rows: int
    statuses: Counter[str] = field(default_factory=Counter)
    formulas: int = 0


class DelimitedBlocks:
    """Blocks of joined rows as CSV/TSV text: the data cells as read, then the result cells
    (custom_id, status, then the cells counted for formulas)."""

    def __init__(self, delimiter: str, special: str, check_formulas: bool) -> None:
        """`special`: the characters that make a cell quoted (tablewriter._Delimited's)."""
        self._delimiter = delimiter
        self._special = "[" + "".join(f"\\x{{{ord(c):02x}}}" for c in special) + "]"
        self._special_bytes = [bytes([b]) for b in special.encode("ascii")]  # ASCII, as in UTF-8
        self._check = check_formulas

    def text(
        self, data: Sequence[pa.Array], results: Sequence[pa.Array | Sequence[Any]]
    ) -> BlockText | None:
        """The lines of rows made of `data` (string columns, one item per row) followed by
        the `results` columns (custom_id, status, ...: Arrow string arrays without nulls, as
        the index's answers come, or any cells, as JSON key columns come), or None when only
        the per-row writer can."""
        columns = [*data, *results]
        rows = len(columns[0]) if columns else 0
        if not rows or not results:
            return None
        block = BlockText(b"", rows)
        texts = []
        try:
            for number, values in enumerate(columns):
                result_column = number - len(data)
                if isinstance(values, pa.Array):
                    if values.null_count or values.type != pa.string():
                        return None
                    text, plain = values, True
                else:
                    text, plain = _text(values)
                if result_column == 1:
                    block.statuses.update(_counts(values))
                elif result_column >= 2 and self._check:
                    block.formulas += _formulas(text) if plain else _formulas_of(values)
                texts.append(self._quoted(text))
            texts[-1] = pc.binary_join_element_wise(texts[-1], "\n", "")
            lines = pc.binary_join_element_wise(*texts, self._delimiter)
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            return None
        block.data = _characters(lines)
        return block

    def _quoted(self, column: pa.Array) -> pa.Array:
        """Cells with a special character in quotes, their quotes doubled (QUOTE_MINIMAL).
        Whether any cell needs it is asked of the column's bytes first (memchr per special
        character: an Arrow call costs ~0.1 ms even on a short column): most need nothing."""
        chars = bytes(_characters(column))
        if not any(c in chars for c in self._special_bytes):
            return column
        quote = pc.match_substring_regex(column, self._special)
        if b'"' in chars:
            column = pc.replace_substring(column, '"', '""')
        if pc.all(quote).as_py():
            return pc.binary_join_element_wise('"', column, '"', "")
        mark = pc.if_else(quote, '"', "")  # a quote or nothing, per cell: one copy of the column
        return pc.binary_join_element_wise(mark, column, mark, "")


def decimal_text(column: pa.Array) -> pa.Array:
    """An int64 column (token counts) as its decimal text, "" for a null: numbers from 0 to
    _SMALL - 1, nearly every count, are looked up in a table of Arrow's own text for them (a
    take of short strings: a third of the time of Arrow's cast); a column with any other
    number is cast."""
    bounds = pc.min_max(column)  # of the numbers, nulls left out
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is not None and (low < 0 or high >= _SMALL):
        return pc.fill_null(pc.cast(column, pa.string()), "")
    return _small_numbers().take(pc.fill_null(column, _SMALL))  # a null: the last entry, ""


_SMALL = 1 << 16


@functools.cache
def _small_numbers() -> pa.Array:
    """The text of 0 .. _SMALL - 1 as Arrow casts them, then "" (made once: ~400 KB)."""
    import numpy as np

    numbers = pc.cast(pa.array(np.arange(_SMALL, dtype=np.int64)), pa.string())
    return pa.concat_arrays([numbers, pa.array([""], type=pa.string())])


def _counts(values: pa.Array | Sequence[Any]) -> Counter[str]:
    """How many cells hold each value (the status column)."""
    if isinstance(values, pa.Array):
        counts = pc.value_counts(values).to_pylist()
        return Counter({item["values"]: item["counts"] for item in counts})
    return Counter(values)


def _text(values: Sequence[Any]) -> tuple[pa.Array, bool]:
    """A column's cells as Arrow text, and whether every cell was a str (no None, no number).
    Raises UnicodeEncodeError for a lone surrogate."""
    try:
        column = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    else:
        if not column.null_count:
            return column, True
    texts = [v if type(v) is str else "" if v is None else str(v) for v in values]
    return pa.array(texts, type=pa.string()), False


def _formulas(column: pa.Array) -> int:
    """Cells a spreadsheet would evaluate, of a column of str cells: numpy finds the few
    whose first byte is a formula character (a table of 256 flags, looked up by each cell's
    first byte: np.isin cost three times as much); Python's rule decides each of those."""
    import numpy as np

    _, offsets, data = column.buffers()
    chars = np.frombuffer(data, dtype=np.uint8) if data is not None else None
    if chars is None or not len(chars) or not len(column):
        return 0
    ends = np.frombuffer(offsets, dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    starts = ends[:-1]
    # an empty cell's "first byte" is the next cell's (or past the end): skipped
    hit = _FORMULA_TABLE[chars[np.minimum(starts, len(chars) - 1)]]
    hit &= ends[1:] > starts
    rows = np.flatnonzero(hit)
    if not len(rows):
        return 0
    return sum(map(looks_like_formula, column.take(rows).to_pylist()))


def _formulas_of(values: Sequence[Any]) -> int:
    """The same count over cells of any type (only str cells can be formulas)."""
    return sum(
        1
        for v in values
        if type(v) is str and v and v[0] in FORMULA_FIRST and looks_like_formula(v)
    )


def _characters(column: pa.Array) -> memoryview:
    """A string array's characters end to end, as they are in its data buffer (no copy)."""
    import numpy as np

    _, offsets, data = column.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)
    start, end = int(ends[column.offset]), int(ends[column.offset + len(column)])
    return memoryview(data)[start:end] if data is not None else memoryview(b"")
