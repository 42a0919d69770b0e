"""The fast path's rendering: every request line of a block built as one Arrow string array
(literal text and JSON-escaped cells, joined by `pyarrow.compute`), and the custom_id checks
that send a table with empty or repeated ids to the general path.
"""

from __future__ import annotations

from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from openai_batch.requestfile.fallback import Fallback
from openai_batch.template.prompt import Expr, StringSlot, json_escape

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from openai_batch.template.prompt import Template

_RARE_CONTROL = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"  # control characters besides \t \n \r
_SIMPLE_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


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

    offsets = array_offsets(array)
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    return bool((data < 0x20).any() or (data == 0x22).any() or (data == 0x5C).any())


def array_offsets(array: pa.StringArray) -> np.ndarray:
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


# custom_ids from a column: empty or repeated values send us to the general path


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

        offsets = array_offsets(array)
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
