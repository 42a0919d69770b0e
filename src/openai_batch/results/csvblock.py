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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from openai_batch.results.tablewriter import FORMULA_FIRST, looks_like_formula

# RE2 (Arrow's regex engine): a cell starting with a character a spreadsheet may evaluate.
_FORMULA_START_RE2 = "^[" + "".join(f"\\x{{{ord(c):02x}}}" for c in FORMULA_FIRST) + "]"


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
        self._check = check_formulas

    def text(self, data: Sequence[pa.Array], results: list[list[Any]]) -> BlockText | None:
        """The lines of rows made of `data` (string columns, one item per row) followed by
        `results` (each row's result cells), or None when only the per-row writer can."""
        rows = len(results)
        columns = [*data, *([] if not results else (list(c) for c in zip(*results, strict=True)))]
        if not rows or not columns:
            return None
        block = BlockText(b"", rows)
        pieces: list[Any] = []  # cells, their quotes, delimiters: joined by one Arrow call
        try:
            for number, values in enumerate(columns):
                result_column = number - len(data)
                if isinstance(values, pa.Array):
                    if values.null_count:
                        return None
                    text, plain = values, True
                else:
                    text, plain = _text(values)
                if result_column == 1:
                    block.statuses.update(values)
                elif result_column >= 2 and self._check:
                    block.formulas += _formulas(text) if plain else _formulas_of(values)
                pieces += [self._delimiter] if number else []
                pieces += self._quoted(text)
            lines = pc.binary_join_element_wise(*pieces, "\n", "")
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            return None
        block.data = _characters(lines)
        return block

    def _quoted(self, column: pa.Array) -> list[Any]:
        """The column as pieces of the line: cells with a special character between quotes,
        their quotes doubled (QUOTE_MINIMAL); the quotes are pieces of their own (a string
        per row, or one for all), so the long cells are copied once, by the final join."""
        quote = pc.match_substring_regex(column, self._special)
        quoted = pc.sum(quote).as_py() or 0
        if not quoted:
            return [column]
        if pc.any(pc.match_substring(column, '"')).as_py():
            column = pc.replace_substring(column, '"', '""')
        mark = '"' if quoted == len(column) else pc.if_else(quote, '"', "")
        return [mark, column, mark]


def _text(values: list[Any]) -> tuple[pa.Array, bool]:
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
    """Cells a spreadsheet would evaluate, of a column of str cells: Arrow finds the few
    starting with a formula character; Python's rule decides each of those."""
    starts = pc.match_substring_regex(column, _FORMULA_START_RE2)
    if not pc.any(starts).as_py():
        return 0
    return sum(map(looks_like_formula, column.filter(starts).to_pylist()))


def _formulas_of(values: list[Any]) -> int:
    """The same count over cells of any type (only str cells can be formulas)."""
    return sum(
        1
        for v in values
        if type(v) is str and v and v[0] in FORMULA_FIRST and looks_like_formula(v)
    )


def _characters(lines: pa.Array) -> memoryview:
    """A string array's characters end to end, as they are in its data buffer (no copy)."""
    import numpy as np

    _, offsets, data = lines.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)
    start, end = int(ends[lines.offset]), int(ends[lines.offset + len(lines)])
    return memoryview(data)[start:end]
