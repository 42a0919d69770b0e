"""Issue 10 (lost or shifted rows) and 14 (ragged rows): rows are what Python's `csv` module
reads, in every table format and through both renderers; a row with fewer or more fields than
the header is an error naming it unless --ragged-rows accepts it."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, read_csv, read_jsonl, run_cli, write

Capsys = pytest.CaptureFixture[str]
RENDERERS = ["auto", "general"]
PLAIN = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "<<text>>"}]}'
JINJA = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "<<text | string>>"}]}'


def contents(path: Path) -> list[tuple[str, str]]:
    return [(r["custom_id"], r["body"]["messages"][0]["content"]) for r in read_jsonl(path)]


def make(capsys: Capsys, monkeypatch, tmp: Path, template: str, data: Path, how: str, *args):
    monkeypatch.setenv("OPENAI_BATCH_RENDERER", how)
    t = write(tmp / "t.json", template)
    out = tmp / f"out-{how}.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", t, data, "-o", out, "-q", *args)
    return code, err, out


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def _xlsx(path: Path, rows: list[list[str]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def _parquet(path: Path, rows: list[list[str]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({rows[0][0]: [r[0] for r in rows[1:]]}), path)
    return path


FORMATS = {
    "csv": lambda p: write(p / "d.csv", "text\na\n   \nb\n"),
    "csv-crlf": lambda p: write(p / "d.csv", "text\r\na\r\n   \r\nb\r\n"),
    "tsv": lambda p: write(p / "d.tsv", "text\na\n   \nb\n"),
    "csv.gz": lambda p: _gz(p / "d.csv.gz", b"text\na\n   \nb\n"),
    "jsonl": lambda p: write(p / "d.jsonl", '{"text": "a"}\n{"text": "   "}\n{"text": "b"}\n'),
    "xlsx": lambda p: _xlsx(p / "d.xlsx", [["text"], ["a"], ["   "], ["b"]]),
    "parquet": lambda p: _parquet(p / "d.parquet", [["text"], ["a"], ["   "], ["b"]]),
}


@pytest.mark.parametrize("how", RENDERERS)
@pytest.mark.parametrize("template", [PLAIN, JINJA], ids=["plain", "jinja"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_row_of_spaces_is_a_row(tmp_path, capsys, monkeypatch, fmt, template, how):
    """`text\\na\\n   \\nb\\n` lost its middle row and `b` became id_1."""
    data = FORMATS[fmt](tmp_path)
    code, err, out = make(capsys, monkeypatch, tmp_path, template, data, how)
    assert code == 0, err
    assert contents(out) == [("id_0", "a"), ("id_1", "   "), ("id_2", "b")]


# -- the csv module is the definition ------------------------------------------------------------

cell = st.text(alphabet=st.sampled_from(list('ab ,"\n\t\r;é')), max_size=6)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=8),
    blank_lines=st.lists(st.integers(0, 8), max_size=3),
    crlf=st.booleans(),
)
def test_rows_are_what_the_csv_module_reads(tmp_path, capsys, monkeypatch, rows, blank_lines, crlf):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n").writerows([["text", "n"], *rows])
    lines = buffer.getvalue().splitlines(keepends=True)
    for at in sorted(blank_lines, reverse=True):  # truly empty lines between records
        if 1 <= at < len(lines) and lines[at - 1].endswith("\n") and _between_records(lines, at):
            lines.insert(at, "\r\n" if crlf else "\n")
    text = "".join(lines)
    data = tmp_path / "d.csv"
    data.write_bytes(text.encode("utf-8"))
    expected = [r for r in csv.reader(io.StringIO(text, newline="")) if r][1:]
    ragged = [n for n, r in enumerate(expected, 1) if len(r) != 2]  # an unquoted "\r" splits
    for how in RENDERERS:
        for template in (PLAIN, JINJA):
            code, err, out = make(capsys, monkeypatch, tmp_path, template, data, how)
            if ragged:
                assert_clean_error(code, err, f"row {ragged[0]}:", "--ragged-rows")
                continue
            assert code == 0, (err, ascii(text), how, template)
            got = contents(out)
            assert [c for _, c in got] == [r[0] for r in expected], (how, text)
            assert [i for i, _ in got] == [f"id_{n}" for n in range(len(expected))]


def _between_records(lines: list[str], at: int) -> bool:
    """The physical line break before `at` ends a record (not one inside quotes)."""
    head = "".join(lines[:at])
    return head.count('"') % 2 == 0


# -- ragged rows ---------------------------------------------------------------------------------

TWO = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "<<a>>-<<b>>"}]}'


@pytest.mark.parametrize("how", RENDERERS)
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("a,b\n1,2\n3\n4,5\n", "row 2: 1 field where the header has 2: '3'"),
        ("a,b\n1,2\n4,5\n6,7,8\n", "row 3: 3 fields where the header has 2: '6,7,8'"),
        ('a,b\n"x\ny",2\n   \n', "row 2: 1 field where the header has 2: '   '"),
    ],
    ids=["fewer", "more", "spaces"],
)
def test_ragged_rows_are_errors_naming_the_row(tmp_path, capsys, monkeypatch, how, body, needle):
    """Fewer fields than the header silently became empty cells; more was an error."""
    data = write(tmp_path / "d.csv", body)
    code, err, out = make(capsys, monkeypatch, tmp_path, TWO, data, how)
    assert_clean_error(code, err, needle, "--ragged-rows")
    assert code == 1 and not out.exists()


def test_a_ragged_row_after_a_cell_longer_than_arrows_blocks(tmp_path, capsys, monkeypatch):
    """A quoted cell of 3 MB over many lines stopped the structural pass (Arrow: "straddling
    object"), which then let the short row after it through as a padded row."""
    long_cell = "line of a long cell\n" * 150_000
    data = write(tmp_path / "d.csv", f'a,b\n1,"{long_cell}"\n3\n4,5\n')
    code, err, out = make(capsys, monkeypatch, tmp_path, TWO, data, "auto")
    assert_clean_error(code, err, "1 field where the header has 2: '3'", "--ragged-rows")
    assert not out.exists()


@pytest.mark.parametrize("how", RENDERERS)
def test_ragged_rows_accepted_on_request(tmp_path, capsys, monkeypatch, how):
    data = write(tmp_path / "d.csv", "a,b\n1,2\n3\n4,5,6\n\n   \n")
    code, err, out = make(capsys, monkeypatch, tmp_path, TWO, data, how, "--ragged-rows")
    assert code == 0, err
    assert contents(out) == [("id_0", "1-2"), ("id_1", "3-"), ("id_2", "4-5"), ("id_3", "   -")]


def test_ragged_rows_join_back_to_the_rows_they_came_from(
    fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = write(tmp_path / "d.csv", "a,b\n1,2\n3\n4,5,6\n")
    template = write(tmp_path / "t.json", TWO)
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-q", "--ragged-rows")
    assert code == 0, err
    code, _, err = (
        run_cli(
            capsys,
            "get-batch-results",
            "batch-requests.jsonl",
            "--csv",
            "out.csv",
            "--wait",
            "--poll-interval",
            "0.01",
            "--quiet",
        )
        if run_cli(capsys, "start-batch", "batch-requests.jsonl")[0] == 0
        else (1, "", "start")
    )
    assert code == 0, err
    rows = read_csv(tmp_path / "out.csv")
    assert [(r["a"], r["b"], r["status"]) for r in rows] == [
        ("1", "2", "ok"), ("3", "", "ok"), ("4", "5", "ok"),
    ]  # fmt: skip
    requests = [json.loads(line) for line in Path("batch-requests.jsonl").read_text().splitlines()]
    assert [r["body"]["messages"][0]["content"] for r in requests] == ["1-2", "3-", "4-5"]


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=12).map(lambda b: bytes(b"\r\na"[x % 3] for x in b)),
    block=st.integers(min_value=1, max_value=5),
)
def test_a_lone_carriage_return_is_found_across_blocks(data: bytes, block: int) -> None:
    """csv_rows._has_lone_cr (which sends a file to the csv module): a \\r with no \\n right
    after it anywhere in the file, whichever block it falls in (or at the very end)."""
    import tempfile

    from openai_batch.table.csv_rows import CsvFormat, _has_lone_cr

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.csv"
        path.write_bytes(data)
        fmt = CsvFormat(path, ",", None, False, None)
        lone = any(data[i + 1 : i + 2] != b"\n" for i, c in enumerate(data) if c == 0x0D)
        assert _has_lone_cr(fmt, block) == lone


@pytest.mark.parametrize("how", RENDERERS)
def test_cells_longer_than_the_csv_modules_default_limit_are_read(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Python's csv module stops at 131,072 characters a cell unless told otherwise: a long
    email in one cell (a carriage return in it sends the file through the csv module) and a
    header name as long were refused with "field larger than field limit"."""
    long_cell = "a\rb " + "x" * 200_000
    long_name = "n" * 140_000
    data = tmp_path / "d.csv"
    data.write_text(f'text,{long_name}\n"{long_cell}",1\nshort,2\n', encoding="utf-8", newline="")
    code, err, out = make(capsys, monkeypatch, tmp_path, PLAIN, data, how)
    assert code == 0, err
    assert contents(out) == [("id_0", long_cell), ("id_1", "short")]
