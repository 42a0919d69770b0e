"""The results joined back to the input rows: one table row per data row, written as it streams.

Every data row (or, without data, every custom_id in request order) gets the result columns:
custom_id, status (`ok`, `error`, `missing`), content, finish_reason, refusal, token counts,
error, and one column per key of JSON answers. Rows are written a block at a time: the answers
of a block read back from the index in one go (at most ANSWER_BYTES of them, so 1 MB
embeddings come a few at a time), and for CSV/TSV the block's text built by Arrow a column at
a time (results/csvblock.py, byte-identical to the per-row writer, which writes the other
formats and whatever Arrow cannot hold).

JSON answer columns come from the response schema of the request file when it has one (in the
schema's order, typed in Parquet), else from the keys that at least a tenth of the JSON answers
share, at most MAX_JSON_COLUMNS of them, with a note saying what was left out (the whole answer
is always in `content`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import quoted
from openai_batch.requestfile.fallback import Fallback
from openai_batch.results import answers, answerstore
from openai_batch.results.answers import cell_text
from openai_batch.results.csvblock import BlockText, DelimitedBlocks, decimal_text
from openai_batch.results.index import id_text
from openai_batch.results.joinplan import DataRows, KeptRows
from openai_batch.results.merge import LOOKUP_BLOCK, batched
from openai_batch.results.tablewriter import (
    FORMULA_FIRST,
    TableTarget,
    TableWriter,
    looks_like_formula,
)
from openai_batch.ui import console
from openai_batch.ui.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd

    from openai_batch.results.index import ResultIndex

RESULT_COLUMNS = answerstore.COLUMNS  # the spilled answers are the table's result cells
TOKEN_COLUMNS = tuple(name for name in RESULT_COLUMNS if name in answerstore.TOKENS)
MAX_JSON_COLUMNS = 100
COMMON_SHARE = 0.1  # a key becomes a column when at least this share of JSON answers has it
_DROPPED = -2  # a data row not in these request files (keep_row said no)
ANSWER_BYTES = 4 << 20  # spilled answers read at once (a block of rows, fewer when long)
_SCHEMA_TYPES = {"integer": "int", "number": "float", "boolean": "bool"}
# the text cells of a row without a result (MISSING's), taken with the answers: its custom_id
# is the one asked and its token counts are empty, as they are in the answers without one
_ABSENT = {
    name: cell
    for name, cell in zip(RESULT_COLUMNS[1:], answers.MISSING.cells(), strict=True)
    if name not in answerstore.TOKENS
}


@dataclass
class CsvSummary:
    """What a result table holds (any format; the name is from when it was always CSV)."""

    path: Path
    rows: int
    ok: int
    error: int
    missing: int
    unmatched: int  # results whose custom_id matches no data row
    columns: list[str]
    formulas: int = 0  # result cells a spreadsheet would evaluate (CSV, TSV only)
    notes: list[str] = field(default_factory=list)
    kind: str = "csv"


@dataclass
class JsonColumns:
    """Which keys of JSON answers get a column, their types, and what to tell the user."""

    keys: list[str]
    types: dict[str, str] = field(default_factory=dict)  # key -> int, float, bool
    note: str | None = None


def result_column_names(taken: Iterable[str], json_keys: Iterable[str]) -> list[str]:
    """Our columns after the data's; a clash gets `_result` appended, so no column is lost."""
    used = set(taken)
    names = []
    for name in (*RESULT_COLUMNS, *json_keys):
        unique = name
        n = 1
        while unique in used:
            unique = f"{name}_result" if n == 1 else f"{name}_result{n}"
            n += 1
        used.add(unique)
        names.append(unique)
    return names


def response_schema(request_file: Path | None) -> dict[str, str] | None:
    """The top-level properties of the request file's response schema (first line), each with
    its Parquet type ("int", "float", "bool" or "" for text), or None when there is none."""
    if request_file is None:
        return None
    try:
        with open(request_file, "rb") as fh:
            first = next((line for line in fh if line.strip()), b"")
        body = answers.parse_line(first).get("body") or {}
        fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
        if fmt.get("type") != "json_schema":
            return None
        schema = (fmt.get("json_schema") or fmt).get("schema") or {}
        properties = schema.get("properties")
    except (answers.MalformedResult, AttributeError, OSError):
        return None
    if not isinstance(properties, dict) or not properties:
        return None
    return {
        str(key): _SCHEMA_TYPES.get(str(spec.get("type")), "") if isinstance(spec, dict) else ""
        for key, spec in properties.items()
    }


def json_columns(key_counts: dict[str, int], answers_with_keys: int,
                 schema: dict[str, str] | None) -> JsonColumns:  # fmt: skip
    """The schema's keys when there is a schema, else the keys common to the JSON answers."""
    if schema is not None:
        keys = list(schema)[:MAX_JSON_COLUMNS]
        note = None
        if len(schema) > MAX_JSON_COLUMNS:
            note = (f"the response schema has {len(schema):,} properties: columns for the "
                    f"first {MAX_JSON_COLUMNS} (every answer is whole in `content`)")  # fmt: skip
        return JsonColumns(keys, {k: t for k, t in schema.items() if t and k in keys}, note)
    least = answers_with_keys * COMMON_SHARE
    common = [k for k, n in key_counts.items() if n >= least]
    keys = common[:MAX_JSON_COLUMNS]
    note = None
    if len(keys) < len(key_counts):
        note = (
            f"the JSON answers have {len(key_counts):,} different keys: columns for the "
            f"{len(keys):,} that at least {COMMON_SHARE:.0%} of them share"
            + (f" (the first {MAX_JSON_COLUMNS})" if len(common) > MAX_JSON_COLUMNS else "")
            + "; every answer is whole in `content`"
        )
    return JsonColumns(keys, {}, note)


class _Counter:
    """Counts statuses and formula-like result cells as rows go by."""

    def __init__(self, check_formulas: bool) -> None:
        self.counts = {"ok": 0, "error": 0, "missing": 0}
        self.formulas = 0
        self.check = check_formulas

    def add_result(self, cells: list[Any], at: int = 0) -> None:
        """Count the result cells starting at `at` (custom_id, status, ...)."""
        self.counts[cells[at + 1]] += 1
        if self.check:
            for value in cells[at + 2 :]:  # the first character decides most cells
                if (
                    type(value) is str
                    and value
                    and value[0] in FORMULA_FIRST
                    and looks_like_formula(value)
                ):
                    self.formulas += 1

    def add_block(self, block: BlockText) -> None:
        """The counts of a block written as text (csvblock counted them)."""
        for status, count in block.statuses.items():
            self.counts[status] += count
        self.formulas += block.formulas


def write_table(
    index: ResultIndex,
    target: TableTarget,
    *,
    chunks: Iterable[tuple[list[str], pd.DataFrame]] | None = None,
    order: Iterable[str] | None = None,
    keep_row: Callable[[int, str], bool] | None = None,
    schema: dict[str, str] | None = None,
    progress: bool = False,
    ready: Callable[[], object] | None = None,
) -> CsvSummary:
    """The results as a table: every data row (or every custom_id) plus the result columns.

    `chunks` are the data rows with their custom_ids (batchfile.iter_identified_chunks);
    `keep_row(row_number, custom_id)` drops rows that were not in these request files (other
    shards, rows beyond --limit; joinplan.KeptRows answers for a block at once). Without
    data, one row per custom_id in `order`. `ready` is called before the finished table
    takes its name (TableWriter): if it raises, no table.
    """
    plan = json_columns(index.json_key_counts, index.json_answers, schema)
    keys = plan.keys
    types = {**dict.fromkeys(TOKEN_COLUMNS, "int"), **plan.types}
    seen = index.new_mask()  # per result: joined to a row
    if chunks is None:
        columns = result_column_names((), keys)
        counter = _Counter(target.kind in ("csv", "tsv"))
        with TableWriter(target, columns, _named(types, columns, 0, keys), ready) as written:
            out = _Rows(index, written, counter, keys)
            ids = order if order is not None else index.natural_order()
            done: set[str] = set()  # custom_ids without a result, already listed
            for block in batched(ids, LOOKUP_BLOCK):
                out.write(*_first_listing(block, index.found(block), seen, done))
        rows = written.rows
    else:
        with _bar(progress, len(index)) as bar:
            blocks = None
            if isinstance(chunks, DataRows) and target.kind in ("csv", "tsv"):
                blocks = chunks.arrow_blocks()  # the data as Arrow reads it, when it can
            try:
                if blocks is None:
                    raise Fallback
                rows, columns, counter, written = _write_joined(
                    index, target, blocks, keep_row, keys, types, seen, bar.update, ready
                )
            except Fallback:  # nothing was written: the general reader's rows, from the start
                seen[:] = False
                bar.reset()
                rows, columns, counter, written = _write_joined(
                    index, target, chunks, keep_row, keys, types, seen, bar.update, ready
                )
    unmatched = int(len(seen) - seen.sum())
    counts = counter.counts
    notes = [plan.note] if plan.note else []
    if written.replaced_characters:
        notes.append(
            f"{console.plural(written.replaced_characters, 'character')} an .xlsx cell cannot "
            "hold, "
            "replaced (control characters by U+FFFD, carriage returns by line feeds); "
            "the responses file has them as sent"
        )
    notes.extend(writer_notes(written))
    return CsvSummary(target.path, rows, counts["ok"], counts["error"], counts["missing"],
                      unmatched, columns, counter.formulas, notes, target.kind)  # fmt: skip


def _first_listing(
    block: list[str], found: Any, seen: Any, done: set[str]
) -> tuple[list[str], Any]:
    """The custom_ids of `block` that get a row (each result and each missing id once),
    with their positions (-1: no result); marks them in `seen` and `done`."""
    import numpy as np

    ids, positions = [], []
    for custom_id, at in zip(block, found.tolist(), strict=True):
        if at < 0:
            if custom_id in done:
                continue
            done.add(custom_id)
        elif seen[at]:
            continue
        else:
            seen[at] = True
        ids.append(custom_id)
        positions.append(at)
    return ids, np.array(positions, dtype=np.int64)


def _write_joined(
    index: ResultIndex,
    target: TableTarget,
    chunks: Iterable[tuple[list[str], pd.DataFrame]],
    keep_row: Callable[[int, str], bool] | None,
    keys: list[str],
    types: dict[str, str],
    seen: Any,
    advance: Callable[[int], object],
    ready: Callable[[], object] | None = None,
) -> tuple[int, list[str], _Counter, TableWriter]:
    """Data rows in file order, each followed by its result cells; the data cells as read."""
    iterator = iter(chunks)
    first = next(iterator, None)
    data_columns = _names(first[1]) if first is not None else []
    ours = result_column_names(data_columns, keys) if data_columns else []
    columns = [*data_columns, *ours] if data_columns else result_column_names((), keys)
    counter = _Counter(target.kind in ("csv", "tsv"))
    named = _named(types, columns, len(data_columns), keys)
    row_number = 0
    with TableWriter(target, columns, named, ready) as writer:
        out = _Rows(index, writer, counter, keys)
        for ids, frame in _chain(first, iterator):
            found = index.found(ids)
            if keep_row is not None:  # rows of other request files have no result here
                found[~_kept(keep_row, row_number, ids)] = _DROPPED
            seen[found[found >= 0]] = True
            out.write(ids, found, frame)
            row_number += len(ids)
            advance(len(ids))
        rows_written = writer.rows
    return rows_written, columns, counter, writer


def _kept(keep_row: Callable[[int, str], bool], start: int, ids: list[str]) -> Any:
    """keep_row of each of these rows (numpy bools): for a whole block when it can."""
    import numpy as np

    if isinstance(keep_row, KeptRows):
        return keep_row.block(start, len(ids))
    return np.array([keep_row(start + n, c) for n, c in enumerate(ids)], dtype=bool)


class _Rows:
    """Rows of the table, a block at a time: the answers of a block read in one go, the
    CSV/TSV text of a block built by Arrow (csvblock) where it can promise the same bytes,
    else (other formats, cells Arrow cannot hold) row by row."""

    def __init__(
        self, index: ResultIndex, writer: TableWriter, counter: _Counter, keys: list[str]
    ) -> None:
        self._index, self._writer, self._counter, self._keys = index, writer, counter, keys
        delimited = writer.delimited()
        self._blocks = None if delimited is None else DelimitedBlocks(*delimited, counter.check)

    def write(self, ids: list[str], found: Any, frame: pd.DataFrame | None = None) -> None:
        """The rows of `ids` (positions `found`: -1 no result, _DROPPED left out), each after
        its data row of `frame` when there is one; at most ANSWER_BYTES of answers at once."""
        for start, end in _parts(self._index, found):
            part = found[start:end]
            kept = part != _DROPPED
            asked = ids[start:end]
            if not kept.all():
                asked = [c for c, k in zip(asked, kept.tolist(), strict=True) if k]
                part = part[kept]
            text = id_text(asked)
            taken = self._index.answers_for(part, asked, text, _ABSENT)
            data = None if frame is None else _kept_rows(frame, start, end, kept)
            if self._blocks is not None and self._block(data, taken, text):
                continue
            counter, writer = self._counter, self._writer
            results = _python_results(taken, asked, self._keys)
            for cells, result in zip(_rows(data, len(results)), results, strict=True):
                counter.add_result(result)
                writer.write([*cells, *result])

    def _block(self, data: pd.DataFrame | None, taken: Any, asked: Any) -> bool:
        """Write the rows as one block of text; False when the per-row writer must
        (`asked`: the custom_ids as Arrow text, None when they cannot be)."""
        assert self._blocks is not None
        columns = [] if data is None else _arrow_columns(data)
        if columns is None or not answerstore.is_plain(taken):
            return False
        results = _arrow_results(taken, asked, self._keys)
        if results is None:
            return False
        text = self._blocks.text(columns, results)
        if text is None:
            return False
        self._writer.write_text(text.data, text.rows)
        self._counter.add_block(text)
        return True


def _arrow_results(taken: Any, asked: Any, keys: list[str]) -> list[Any] | None:
    """The result columns of a block as Arrow text (JSON key columns as Python cells): rows
    without an answer get MISSING's cells; tokens as their decimal text. None when a
    custom_id is no UTF-8 text (`asked` None, a lone surrogate: the per-row writer says what
    it did)."""
    import pyarrow.compute as pc

    columns: list[Any] = []
    for name in answerstore.COLUMNS:
        column = taken.column(name).combine_chunks()
        if name == "custom_id" and column.null_count:  # rows without an answer: the ids asked
            if asked is None:
                return None
            column = asked
        elif name in answerstore.TOKENS:
            column = decimal_text(column)
        elif column.null_count:
            column = pc.fill_null(column, "missing" if name == "status" else "")
        columns.append(column)
    if keys:
        columns.extend(_key_columns(columns[1].to_pylist(), columns[2].to_pylist(), keys))
    return columns


def _python_results(taken: Any, asked: list[str], keys: list[str]) -> list[list[Any]]:
    """Each row's result cells as Python values (the per-row writer's): custom_id, status,
    content, finish_reason, refusal, tokens (int or ""), error, then one per JSON key."""
    columns = [answerstore.python_column(taken.column(n), n) for n in answerstore.COLUMNS]
    columns[0] = asked  # equal where there is an answer (answers_for checked)
    statuses = columns[1] = ["missing" if v is None else v for v in columns[1]]
    for n in (2, 3, 4, 7):
        columns[n] = ["" if v is None else v for v in columns[n]]
    if keys:
        columns.extend(_key_columns(statuses, columns[2], keys))
    return [list(row) for row in zip(*columns, strict=True)]


def _key_columns(statuses: list[str], contents: list[str], keys: list[str]) -> list[list[str]]:
    """One column per JSON key: the key's value in each successful answer's JSON object."""
    rows = []
    for status, content in zip(statuses, contents, strict=True):
        fields = (answers.json_object(content) if status == "ok" else None) or {}
        rows.append([cell_text(fields[k]) if k in fields else "" for k in keys])
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in keys]


def _parts(index: ResultIndex, found: Any) -> list[tuple[int, int]]:
    """Row ranges of a block whose answers add up to at most ANSWER_BYTES each (one row at
    least): long answers (1 MB embeddings) never gather thousands at a time."""
    import numpy as np

    sizes = np.zeros(len(found), dtype=np.int64)
    have = found >= 0
    sizes[have] = index.answer_sizes(found[have])
    ends = np.cumsum(sizes)
    if not len(found) or ends[-1] <= ANSWER_BYTES:
        return [(0, len(found))]
    parts, start = [], 0
    while start < len(found):
        base = int(ends[start - 1]) if start else 0
        end = int(np.searchsorted(ends, base + ANSWER_BYTES, side="right"))
        end = min(max(end, start + 1), len(found))
        parts.append((start, end))
        start = end
    return parts


def _names(frame: Any) -> list[str]:
    """The column names of a chunk of data rows (pandas DataFrame, Arrow RecordBatch)."""
    names = frame.schema.names if _is_arrow(frame) else frame.columns
    return [str(c) for c in names]


def _kept_rows(frame: Any, start: int, end: int, kept: Any) -> Any:
    """Rows start .. end - 1 of a chunk, those `kept` (numpy bools) only."""
    if _is_arrow(frame):
        frame = frame.slice(start, end - start)
        return frame if kept.all() else frame.filter(kept)
    frame = frame.iloc[start:end]
    return frame if kept.all() else frame[kept]


def _arrow_columns(frame: Any) -> list[Any] | None:
    """The chunk's columns as Arrow string arrays (None when a cell is not text)."""
    import pyarrow as pa

    if _is_arrow(frame):
        return list(frame.columns)  # read as text, nulls filled (requestfile/fastread.py)
    columns = []
    try:
        for j in range(frame.shape[1]):
            column = pa.array(frame.iloc[:, j], type=pa.string())
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            columns.append(column)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None
    return columns


def _rows(frame: Any, count: int) -> Iterable[tuple[Any, ...]]:
    """The chunk's rows as tuples of cells (column lists zipped: faster than itertuples);
    without a chunk, `count` empty rows."""
    if frame is None:
        return [()] * count
    if _is_arrow(frame):
        lists = [column.to_pylist() for column in frame.columns]
    else:
        lists = [frame.iloc[:, j].tolist() for j in range(frame.shape[1])]
    return zip(*lists, strict=True) if lists else [()] * count


def _is_arrow(frame: Any) -> bool:
    return hasattr(frame, "schema")


def _bar(enabled: bool, total: int) -> Any:
    """A progress bar of data rows joined (on stderr, on a terminal; off with -q)."""
    return progress_bar(enabled=enabled, total=total or None, unit=" rows", desc="joining")


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    if first is not None:
        yield first
        yield from rest


def _named(
    types: dict[str, str], columns: Sequence[str], start: int, keys: list[str]
) -> dict[str, str]:
    """The types by the columns' final names (ours may carry a `_result` suffix)."""
    base = [*RESULT_COLUMNS, *keys]
    return {
        final: types[name]
        for final, name in zip(columns[start:], base, strict=False)
        if name in types
    }


def writer_notes(written: TableWriter) -> list[str]:
    """What the table could not hold exactly, said rather than hidden."""
    notes = []
    if written.surrogates:
        notes.append(
            f"{written.surrogates:,} lone UTF-16 surrogate(s) in the answers were written as "
            "U+FFFD (no UTF-8 file can hold them); the responses file has them as sent"
        )
    for column, count in written.untyped.items():
        notes.append(
            f"{count:,} value(s) of column {quoted(column)} did not fit its type and are "
            f"null in "
            f"{written.target.path.name}; the responses file and a .csv or .jsonl table keep them"
        )
    return notes


def formula_warning(summary: CsvSummary) -> str | None:
    """What to say when a CSV holds cells a spreadsheet would run as formulas."""
    if not summary.formulas:
        return None
    xlsx = summary.path.with_suffix(".xlsx")
    return (
        f"{console.plural(summary.formulas, 'result cell')} in {summary.path} starting with "
        "= + - @ or a tab: "
        "Excel and LibreOffice may run them as formulas when the file is opened; "
        f"--table {xlsx.name} writes every cell as text"
    )


def write_csv(
    index: ResultIndex,
    dest: Path,
    *,
    chunks: Iterable[tuple[list[str], pd.DataFrame]] | None = None,
    order: Iterable[str] | None = None,
    keep_row: Callable[[int, str], bool] | None = None,
) -> CsvSummary:
    """write_table as CSV (the library's older name)."""
    target = TableTarget(Path(dest), "csv")
    return write_table(index, target, chunks=chunks, order=order, keep_row=keep_row)
