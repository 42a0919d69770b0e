"""Result tables round-trip: every input row and every answer comes back exactly, in every
format, read by the same reader make-batch-file uses (tables.open_table)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.errors import BatchError
from openai_batch.results.join import write_table
from openai_batch.results.merge import ResultIndex
from openai_batch.results.tablewriter import EXCEL_MAX_ROWS, TableTarget, TableWriter, _Delimited
from openai_batch.table.read import TableOptions, open_table

# Text a spreadsheet cell can hold: XML 1.0 characters (no lone surrogates, no C0 controls
# other than tab/newline/carriage return).
CELL = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")
        + "\ufffe\uffff",
    ),
    max_size=40,
)
FORMATS = ["csv", "tsv", "jsonl", "parquet", "xlsx"]


def _join(folder: Path, kind: str, names: list[str], answers: list[str]) -> list[dict[str, str]]:
    data = folder / "data.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for i, name in enumerate(names):
            fh.write(json.dumps({"Name": name, "n": str(i)}) + "\n")
    out = folder / "o.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        for i, answer in enumerate(answers):
            body = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": i, "completion_tokens": 1}}  # fmt: skip
            line = {"custom_id": f"id_{i}", "response": {"status_code": 200, "body": body}}
            fh.write(json.dumps(line) + "\n")
    from openai_batch.requestfile.make import iter_identified_chunks

    target = TableTarget(folder / f"t.{kind}", kind)
    with ResultIndex() as index:
        index.add_file(out, 0)
        write_table(index, target, chunks=iter_identified_chunks(data))
    table = open_table(target.path, TableOptions())
    return [row for chunk in table.chunks() for row in chunk.to_dict("records")]


@pytest.mark.parametrize("kind", FORMATS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=6))
def test_every_format_round_trips_rows_and_answers(kind: str, rows: list[tuple[str, str]]) -> None:
    names = [r[0] for r in rows]
    answers = [r[1] for r in rows]
    with tempfile.TemporaryDirectory(prefix="results-rt.") as folder:
        back = _join(Path(folder), kind, names, answers)
    if kind == "xlsx":  # XML has no bare carriage return: written as a line feed, and said so
        names = [n.replace("\r\n", "\n").replace("\r", "\n") for n in names]
        answers = [a.replace("\r\n", "\n").replace("\r", "\n") for a in answers]
    assert [r["Name"] for r in back] == names
    assert [r["content"] for r in back] == answers
    assert [r["status"] for r in back] == ["ok"] * len(rows)
    assert [str(r["prompt_tokens"]) for r in back] == [str(i) for i in range(len(rows))]


def test_parquet_token_counts_are_integers(tmp_path: Path) -> None:
    _join(tmp_path, "parquet", ["a", "b"], ["x", "y"])
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column("prompt_tokens").to_pylist() == [0, 1]
    assert str(table.schema.field("Name").type) == "string"


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=5),
       delimiter=st.sampled_from([",", "\t"]))  # fmt: skip
def test_the_fast_delimited_writer_writes_what_csv_writes(cells: list, delimiter: str) -> None:
    """The same bytes as csv.writer, except that a field with a carriage return is quoted."""
    ours, theirs = io.StringIO(), io.StringIO()
    _Delimited(ours, delimiter, ["h"]).write(cells)
    writer = csv.writer(theirs, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["h"])
    writer.writerow([f"{c}\n" if isinstance(c, str) and "\r" in c else c for c in cells])
    expected = theirs.getvalue()
    for c in cells:  # the marker newline made csv quote it: take it out again
        if isinstance(c, str) and "\r" in c:
            expected = expected.replace(f"{c}\n".replace('"', '""'), c.replace('"', '""'), 1)
    assert ours.getvalue() == expected


def test_xlsx_refuses_more_rows_than_excel_holds(tmp_path: Path, monkeypatch) -> None:
    import openai_batch.results.tablewriter as tw

    monkeypatch.setattr(tw, "EXCEL_MAX_ROWS", 3)
    target = TableTarget(tmp_path / "t.xlsx", "xlsx")
    with pytest.raises(BatchError, match="more than 2 rows"), TableWriter(target, ["a"]) as w:
        for i in range(5):
            w.write([str(i)])
    assert not target.path.exists() and not list(tmp_path.iterdir())
    assert EXCEL_MAX_ROWS == 1_048_576


def test_a_failed_finishing_step_leaves_no_table(tmp_path: Path, monkeypatch) -> None:
    """A disk that fills while Parquet writes its footer: an error, and no file at the path."""
    import errno

    import pyarrow.parquet as pq

    def full_disk(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "close", full_disk)
    target = TableTarget(tmp_path / "out.parquet", "parquet")
    with pytest.raises(OSError), TableWriter(target, ["n"], {"n": "int"}) as writer:
        writer.write(["1"])
    assert not target.path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", FORMATS)
def test_a_lone_surrogate_in_an_answer_is_replaced_and_said(tmp_path: Path, kind: str) -> None:
    """Valid JSON ("\\ud800") that no UTF-8 file can hold: U+FFFD, a note, every row written."""
    from openai_batch.requestfile.make import iter_identified_chunks

    data = tmp_path / "data.jsonl"
    data.write_text('{"Name": "a"}\n{"Name": "b"}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    lines = []
    for i, answer in enumerate(["bad \ud800 here", "fine"]):
        body = {"choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": answer}}]}  # fmt: skip
        lines.append(json.dumps({"custom_id": f"id_{i}", "response": {"status_code": 200,
                                 "body": body}}))  # fmt: skip
    out.write_text("\n".join(lines) + "\n", encoding="ascii")
    target = TableTarget(tmp_path / f"t.{kind}", kind)
    with ResultIndex() as index:
        index.add_file(out, 0)
        summary = write_table(index, target, chunks=iter_identified_chunks(data))
    rows = [r for chunk in open_table(target.path, TableOptions()).chunks()
            for r in chunk.to_dict("records")]  # fmt: skip
    assert [r["content"] for r in rows] == ["bad \ufffd here", "fine"]
    assert any("U+FFFD" in note for note in summary.notes)


def test_xlsx_refuses_a_cell_longer_than_excel_holds(tmp_path: Path) -> None:
    """openpyxl would cut a 3072-dimension embedding at 32,767 characters without a word."""
    target = TableTarget(tmp_path / "t.xlsx", "xlsx")
    with pytest.raises(BatchError, match="at most 32,767"), TableWriter(target, ["a"]) as w:
        w.write(["short"])
        w.write(["x" * 40_000])
    assert not target.path.exists()


def test_typed_columns_keep_or_count_what_does_not_fit(tmp_path: Path) -> None:
    """JSONL keeps an off-type answer as sent; Parquet stores null and counts it for a note."""
    import pyarrow.parquet as pq

    values = ["30.0", "thirty", str(2**70), "7"]
    jsonl = TableTarget(tmp_path / "t.jsonl", "jsonl")
    with TableWriter(jsonl, ["n"], {"n": "int"}) as writer:
        for value in values:
            writer.write([value])
    read = [json.loads(line)["n"] for line in jsonl.path.read_text().splitlines()]
    assert read == [30, "thirty", 2**70, 7]
    parquet = TableTarget(tmp_path / "t.parquet", "parquet")
    with TableWriter(parquet, ["n"], {"n": "int"}) as writer:
        for value in values:
            writer.write([value])
    assert pq.read_table(parquet.path).column("n").to_pylist() == [30, None, None, 7]
    assert writer.untyped == {"n": 2}


@pytest.mark.parametrize("kind", ["csv", "tsv"])
def test_a_lone_carriage_return_is_quoted(tmp_path: Path, kind: str) -> None:
    """Python 3.11's csv leaves a bare CR unquoted; every reader then splits the row there."""
    target = TableTarget(tmp_path / f"t.{kind}", kind)
    with TableWriter(target, ["a", "b"]) as writer:
        writer.write(["one\rtwo", "x"])
    delimiter = "," if kind == "csv" else "\t"
    assert target.path.read_bytes() == f'a{delimiter}b\n"one\rtwo"{delimiter}x\n'.encode()
    with open(target.path, newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh, delimiter=delimiter))[1] == ["one\rtwo", "x"]


JSON_CELL = (
    st.text(max_size=6)
    | st.sampled_from(["5", "-2", "1.5", "30.0", "true", "null", "[1]", '{"a": 1}', "NaN", "1e400"])
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.booleans()
    | st.none()
)


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(JSON_CELL, min_size=3, max_size=3),
    kinds=st.lists(st.sampled_from([None, "int", "float", "bool"]), min_size=3, max_size=3),
)
def test_a_jsonl_row_is_what_json_dumps_writes(cells: list[Any], kinds: list[str | None]) -> None:
    """The JSONL writer builds each line from pieces: the same text as json.dumps of the row
    (the writer's rule before: a typed cell as its type, one that does not fit as sent)."""
    from openai_batch.results.tablewriter import _UNFIT, _as_sent, _Jsonl, _typed

    columns = ["a", 'b"', "é\n"]
    buffer = io.StringIO()
    _Jsonl(buffer, columns, {c: k for c, k in zip(columns, kinds, strict=True) if k}).write(cells)
    row = {}
    for name, value, kind in zip(columns, cells, kinds, strict=True):
        typed = _typed(value, kind)
        row[name] = _as_sent(value) if typed is _UNFIT else typed
    assert buffer.getvalue() == json.dumps(row, ensure_ascii=False) + "\n"


class _SlowFile(io.BytesIO):
    """A file whose writes from the writer thread take a while (a slow disk)."""

    def write(self, data: Any) -> int:  # type: ignore[override]
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.05)
        return super().write(data)


def test_a_row_written_after_blocks_follows_them_however_slow_the_disk() -> None:
    """Blocks of text go to the file through a writer thread (local/writer.py); a row the
    per-row writer writes (an answer Arrow cannot hold) waits for the blocks before it, and
    the blocks after it come after it."""
    raw = _SlowFile()
    fh = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
    table = _Delimited(fh, ",", ["a"])
    for n in range(3):
        table.write_text(f"block{n}\n".encode())
        table.write([f"row{n}" + "x" * (n * 10_000)])  # short rows stay in the text buffer
    table.write_text(b"last\n")
    table.close()
    fh.flush()
    assert raw.getvalue().decode().split("\n")[:-1] == [
        "a", "block0", "row0", "block1", "row1" + "x" * 10_000, "block2",
        "row2" + "x" * 20_000, "last",
    ]  # fmt: skip
