"""The join's CSV/TSV rows written a block at a time (results/csvblock.py) are byte for byte
the rows the per-row writer (tablewriter._Delimited) writes, with the same counts."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fake_openai import chat_completion_body
from openai_batch.errors import BatchError
from openai_batch.results import csvblock
from openai_batch.results.csvblock import DelimitedBlocks
from openai_batch.results.join import _Counter, write_table
from openai_batch.results.joinplan import KeptRows
from openai_batch.results.merge import ResultIndex
from openai_batch.results.tablewriter import TableTarget, _Delimited, looks_like_formula

# Characters that decide quoting and formulas, and a few that are merely unusual.
SPECIAL = ',"\n\r\t #=+-@.eE0123456789\x00 é\u2028\U0001f600\u0661'
TEXT = st.text(
    st.sampled_from(SPECIAL) | st.characters(blacklist_categories=("Cs",)), max_size=12
) | st.sampled_from(["-1", "+2.5e3", "-.5", "-\u0661", "=1", "\t", "-", "+1e", "@a,b"])
SURROGATE = st.sampled_from(["\ud800", "a\udfff", "\udc80,"])
# What a result cell may be: the spill holds str and int; any JSON value is tried too.
CELL = (
    TEXT
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.none()
)
STATUS = st.sampled_from(["ok", "error", "missing"])


@st.composite
def blocks(draw: Any) -> tuple[list[list[str]], list[list[Any]]]:
    rows = draw(st.integers(min_value=1, max_value=8))
    width = draw(st.integers(min_value=0, max_value=3))
    data = [draw(st.lists(TEXT, min_size=rows, max_size=rows)) for _ in range(width)]
    extra = draw(st.integers(min_value=0, max_value=2))  # JSON key columns
    result_cell = draw(st.sampled_from([TEXT, CELL, CELL | SURROGATE]))  # TEXT: Arrow counts
    cells = st.lists(result_cell, min_size=6 + extra, max_size=6 + extra)
    results = [[draw(TEXT), draw(STATUS), *draw(cells)] for _ in range(rows)]
    return data, results


def _per_row(delimiter: str, data: list[list[str]], results: list[list[Any]]) -> tuple[str, Any]:
    buffer = io.StringIO()
    writer = _Delimited(buffer, delimiter, ["header"])
    counter = _Counter(True)
    for n, result in enumerate(results):
        counter.add_result(result)
        writer.write([*(column[n] for column in data), *result])
    return buffer.getvalue().split("\n", 1)[1], counter


def _columns(results: list[list[Any]]) -> list[list[Any]]:
    return [list(column) for column in zip(*results, strict=True)]


def _has_surrogate(cells: list[Any]) -> bool:
    return any(isinstance(c, str) and any("\ud800" <= ch <= "\udfff" for ch in c) for c in cells)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=blocks(), delimiter=st.sampled_from([",", "\t"]))
def test_a_block_is_the_rows_the_per_row_writer_writes(
    block: tuple[list[list[str]], list[list[Any]]], delimiter: str
) -> None:
    data, results = block
    want, counter = _per_row(delimiter, data, results)
    writer = _Delimited(io.StringIO(), delimiter, [])
    columns = [pa.array(c, type=pa.string()) for c in data]
    text = DelimitedBlocks(delimiter, writer.special, True).text(columns, _columns(results))
    if any(_has_surrogate(r) for r in results):
        assert text is None  # only the per-row writer can say what it did with them
        return
    assert text is not None
    assert bytes(text.data) == want.encode("utf-8")
    assert text.rows == len(results)
    assert {k: v for k, v in text.statuses.items() if v} == {
        k: v for k, v in counter.counts.items() if v
    }
    assert text.formulas == counter.formulas


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(TEXT, max_size=12), start=st.integers(0, 12), count=st.integers(0, 12))
def test_formula_cells_of_any_slice_are_counted_by_the_per_row_rule(
    cells: list[str], start: int, count: int
) -> None:
    """Counted from each cell's first byte in the column's buffers: a slice (an offset into
    them), empty cells (whose first byte is the next cell's) and empty cells last."""
    column = pa.array(cells, type=pa.string()).slice(start, count)
    want = sum(1 for c in column.to_pylist() if c and looks_like_formula(c))
    assert csvblock._formulas(column) == want


NUMBER = st.one_of(
    st.integers(0, 400), st.integers(65530, 65540), st.integers(-3, 3),
    st.integers(-(2**63), 2**63 - 1), st.none(),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(numbers=st.lists(NUMBER, max_size=12), start=st.integers(0, 12))
@example(numbers=[65536, None, 7], start=0)  # the first number past the table, and a null
@example(numbers=[65535, None, 0], start=0)
@example(numbers=[None, None], start=0)
def test_token_counts_read_as_arrow_casts_them(numbers: list[int | None], start: int) -> None:
    """Counts looked up in a table of their text where every one is small, else cast: the
    text Arrow's cast gives, "" for a null, in any slice."""
    column = pa.array(numbers, type=pa.int64()).slice(start)
    want = pc.fill_null(pc.cast(column, pa.string()), "")
    assert csvblock.decimal_text(column).to_pylist() == want.to_pylist()


def test_a_block_without_formula_checks_counts_none() -> None:
    writer = _Delimited(io.StringIO(), ",", [])
    results = [["id_0", "ok", "=1+1", "", "", 1, 2, ""]]
    text = DelimitedBlocks(",", writer.special, False).text([], _columns(results))
    assert text is not None and text.formulas == 0
    assert bytes(text.data) == b"id_0,ok,=1+1,,,1,2,\n"


@settings(max_examples=50, deadline=None)
@given(
    ranges=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=4),
    start=st.integers(0, 30),
    count=st.integers(0, 20),
)
def test_kept_rows_of_a_block_are_kept_rows_one_by_one(
    ranges: list[tuple[int, int]], start: int, count: int
) -> None:
    kept = KeptRows(ranges)
    assert kept.block(start, count).tolist() == [kept(start + n, "") for n in range(count)]


def test_long_answers_are_joined_in_parts_and_rows_stay_in_order(tmp_path: Path) -> None:
    """Answers over the block budget are read a few at a time: every row still in order."""
    from openai_batch.requestfile.make import iter_identified_chunks

    data = tmp_path / "d.csv"
    data.write_text("Name\n" + "".join(f"n{i}\n" for i in range(12)), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        for i in reversed(range(12)):
            if i == 5:
                continue  # one row without a result
            body = chat_completion_body("m", f"{i}," + "y" * 400_000)
            line = {"custom_id": f"id_{i}", "response": {"status_code": 200, "body": body}}
            fh.write(json.dumps(line) + "\n")
    with ResultIndex() as index:
        index.add_file(out, 0)
        summary = write_table(
            index,
            TableTarget(tmp_path / "t.csv", "csv"),
            chunks=iter_identified_chunks(data),
            keep_row=KeptRows([(0, 10)]),
        )
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [f"n{i}" for i in range(10)]
    assert [line.split(",")[2] for line in lines[1:]] == [
        "missing" if i == 5 else "ok" for i in range(10)
    ]
    assert lines[1].split(",")[3] == '"0'
    assert (summary.rows, summary.ok, summary.missing, summary.unmatched) == (10, 9, 1, 2)


# Cells of a data file as people write them, and as they should not (a lone carriage return,
# spaces after the delimiter, quotes inside): the join reads the file with Arrow where
# make-batch-file's fast path would, else with pandas; both write the same table.
FILE_CELL = st.text(st.sampled_from('ab ,"\n\r\t=é'), max_size=5)


def _csv_text(rows: list[list[str]], delimiter: str, spaced: bool) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    text = buffer.getvalue()
    return text.replace(delimiter, delimiter + " ") if spaced else text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.tuples(FILE_CELL, FILE_CELL), min_size=1, max_size=6),
    delimiter=st.sampled_from([",", "\t"]),
    spaced=st.booleans(),
    limit=st.sampled_from([None, 2]),
)
def test_the_table_read_by_arrow_is_the_table_read_by_pandas(
    cells: list[tuple[str, str]], delimiter: str, spaced: bool, limit: int | None
) -> None:
    from openai_batch.requestfile.make import iter_identified_chunks
    from openai_batch.results.joinplan import DataRows
    from openai_batch.table.spec import TableSpec

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("d.csv" if delimiter == "," else "d.tsv")
        rows = [["Name", "Note"], *([a, b] for a, b in cells)]
        path.write_text(_csv_text(rows, delimiter, spaced), encoding="utf-8")
        out = Path(folder) / "o.jsonl"
        with open(out, "w", encoding="utf-8") as fh:
            for i in range(0, len(cells), 2):  # every other row answered
                body = chat_completion_body("m", f"answer, {i}")
                line = {"custom_id": f"id_{i}", "response": {"status_code": 200, "body": body}}
                fh.write(json.dumps(line) + "\n")
        spec = TableSpec(str(path), limit=limit)
        written = []
        with ResultIndex() as index:
            index.add_file(out, 0)
            for n, chunks in enumerate([DataRows(spec), iter_identified_chunks(spec)]):
                target = TableTarget(Path(folder) / f"t{n}.csv", "csv")
                try:
                    summary = write_table(index, target, chunks=chunks)
                except BatchError as exc:  # a file neither reader takes: the same error
                    written.append(str(exc))
                    continue
                written.append((target.path.read_bytes(), summary.rows, summary.unmatched))
        assert written[0] == written[1]


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("Name,Note\r\na,b\r\nc,d\r\n", {}),  # Arrow reads it
        ('Name,Note\na,"x\ry"\nc,d\n', {}),  # a lone carriage return: pandas decides
        ('Name, Note\na, "b, c"\nd, e\n', {}),  # spaces after delimiters, then a quote
        ("Name,Note\na,b,extra\nc\n", {"ragged_rows": True}),  # rows padded and cut
        ('Name,Note\na,b\nc,"d\n', {}),  # ends inside a quoted cell: pandas refuses it
        ("\ufeffName,Note\na,b\n", {}),  # a byte order mark
    ],
)
def test_tables_arrow_leaves_to_pandas_join_as_pandas_reads_them(
    tmp_path: Path, text: str, options: dict[str, Any]
) -> None:
    from openai_batch.requestfile.make import iter_identified_chunks
    from openai_batch.results.joinplan import DataRows
    from openai_batch.table.spec import TableSpec

    path = tmp_path / "d.csv"
    path.write_bytes(text.encode("utf-8"))
    out = tmp_path / "o.jsonl"
    body = chat_completion_body("m", "an answer")
    line = {"custom_id": "id_1", "response": {"status_code": 200, "body": body}}
    out.write_text(json.dumps(line) + "\n", encoding="utf-8")
    spec = TableSpec(str(path), **options)
    written: list[Any] = []
    with ResultIndex() as index:
        index.add_file(out, 0)
        for n, chunks in enumerate([DataRows(spec), iter_identified_chunks(spec)]):
            target = TableTarget(tmp_path / f"t{n}.csv", "csv")
            try:
                write_table(index, target, chunks=chunks)
            except BatchError as exc:
                written.append(str(exc))
            else:
                written.append(target.path.read_bytes())
    assert written[0] == written[1]
    assert not (tmp_path / "t0.csv").exists() or isinstance(written[0], bytes)
