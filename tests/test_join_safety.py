"""No answer joined to the wrong row: unrelated request files, edited tables, identical files.

Regression tests for the join-safety review: results of request files made from different
tables never merge by custom_id; a table edited in place (same size) is refused; byte-identical
request files join to their own table; a vanished table does not stop the responses file; the
retry hint names only files with something to retry. All through the real CLI and the fake.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, chat_request_line, jsonl_bytes
from helpers import assert_clean_error, read_csv, read_jsonl, run_cli
from openai_batch.ledger import paths as ledger_paths
from openai_batch.ledger import schema as ledger_schema
from openai_batch.ledger.jobstore import job_names
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    return fake_api


def make(capsys: Capsys, data: str, rows: str, output: str, *extra: str) -> None:
    Path(data).write_text(rows, encoding="utf-8")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", data, "-o", output, "-q", *extra)
    assert code == 0, err


def answered(path: Path) -> list[tuple[str, str]]:
    """(custom_id, the name the fake's answer was about) for each responses line."""
    out = []
    for line in read_jsonl(path):
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        out.append((line["custom_id"], content.rsplit(": ", 1)[-1]))
    return out


def two_tables(capsys: Capsys) -> None:
    make(capsys, "a.csv", "Name\nann\namy\n", "ra.jsonl")
    make(capsys, "b.csv", "Name\nbob\nben\n", "rb.jsonl")


# ---------------------------------------------------------------------------------------------
# 1. Request files from different tables


def test_files_from_two_tables_start_as_separate_batches_and_never_merge(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    two_tables(capsys)
    code, out, err = run_cli(capsys, "start-batch", "ra.jsonl", "rb.jsonl")
    assert code == 0, err
    assert "Job " not in out + err and "not made by one make-batch-file run" in err
    assert out.count("Started batch:") == 2 and len(fake.batches) == 2
    with open_ledger() as led:
        assert job_names(led) == []

    for extra in ((), ("--data", "a.csv")):
        code, _, err = run_cli(
            capsys, "get-batch-results", "ra.jsonl", "rb.jsonl", "--csv", "out.csv", *extra, *WAIT
        )
        assert_clean_error(code, err, "ra.jsonl and rb.jsonl", "'id_0', 'id_1'", "separately")
        assert "get-batch-results ra.jsonl -o ra-responses.jsonl" in err
        assert not Path("batch-responses.jsonl").exists() and not Path("out.csv").exists()

    # fetched one at a time, as the hint says, each joins its own table
    for name, rows in (("ra", ["ann", "amy"]), ("rb", ["bob", "ben"])):
        out_file = f"{name}-responses.jsonl"
        code, _, err = run_cli(
            capsys, "get-batch-results", f"{name}.jsonl", "-o", out_file, "--csv", f"{name}.csv",
            *WAIT,
        )  # fmt: skip
        assert code == 0, err
        assert answered(Path(out_file)) == [("id_0", rows[0]), ("id_1", rows[1])]
        table = read_csv(Path(f"{name}.csv"))
        assert [(r["Name"], r["content"].rsplit(": ", 1)[-1]) for r in table] == [
            (n, n) for n in rows
        ]


def test_the_same_custom_ids_given_by_batch_id_are_refused_too(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    two_tables(capsys)
    assert run_cli(capsys, "start-batch", "ra.jsonl", "rb.jsonl")[0] == 0
    ids = list(fake.batches)
    code, _, err = run_cli(capsys, "get-batch-results", *ids, *WAIT)
    assert_clean_error(code, err, "different request files", "ra.jsonl", "rb.jsonl")
    assert not Path("batch-responses.jsonl").exists()


def test_a_job_of_files_sharing_custom_ids_is_refused_before_anything_starts(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    two_tables(capsys)
    for option in (("--job", "mix"), ("--max-enqueued-tokens", "1000")):
        code, _, err = run_cli(capsys, "start-batch", "ra.jsonl", "rb.jsonl", *option)
        assert_clean_error(code, err, "both have custom_id 'id_0'", "--id-prefix")
    assert fake.batches == {} and fake.files == {}


def test_unrelated_files_with_disjoint_ids_may_form_a_job_and_merge(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, "a.csv", "Name\nann\namy\n", "ra.jsonl", "--id-prefix", "a_")
    make(capsys, "b.csv", "Name\nbob\n", "rb.jsonl", "--id-prefix", "b_")
    code, _, err = run_cli(capsys, "start-batch", "ra.jsonl", "rb.jsonl", "--job", "mix")
    assert code == 0, err
    assert "Job mix: 2 request files" in err
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "mix", *WAIT)
    assert code == 0, err
    assert answered(Path("batch-responses.jsonl")) == [
        ("a_0", "ann"), ("a_1", "amy"), ("b_0", "bob"),
    ]  # fmt: skip


def test_shards_of_one_make_run_still_form_a_job(fake: FakeOpenAI, capsys: Capsys) -> None:
    rows = "Name\n" + "".join(f"P{i}\n" for i in range(5))
    make(capsys, "d.csv", rows, "r.jsonl", "--max-requests", "2")
    shards = sorted(str(p) for p in Path().glob("r-*.jsonl"))
    code, _, err = run_cli(capsys, "start-batch", *shards)
    assert code == 0, err
    assert "Job d: 3 request files" in err
    code, _, err = run_cli(capsys, "get-batch-results", *shards, "--csv", "out.csv", *WAIT)
    assert code == 0, err
    table = read_csv(Path("out.csv"))
    assert [(r["Name"], r["content"].rsplit(": ", 1)[-1]) for r in table] == [
        (f"P{i}", f"P{i}") for i in range(5)
    ]


def test_batches_started_elsewhere_merge_only_when_the_request_file_is_named(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    """An original and its retry started outside this machine: the ledger cannot tell them
    from two unrelated files, so they merge only once --requests names their one file."""
    original = jsonl_bytes(chat_request_line(f"id_{i}", f"N{i}") for i in range(3))
    Path("r.jsonl").write_bytes(original)
    fake.plan(fail_custom_ids={"id_1"}, error_status=500)
    client = fake.client()
    ids = []
    for name, body in (("r.jsonl", original), ("retry.jsonl", original.splitlines(True)[1])):
        upload = client.files.create(file=(name, body), purpose="batch")
        batch = client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        fake.finish(batch.id)
        ids.append(batch.id)
    code, _, err = run_cli(capsys, "get-batch-results", *ids, *WAIT)
    assert_clean_error(code, err, "same custom_ids ('id_1')", "--requests FILE", ids[0], ids[1])
    assert not Path("batch-responses.jsonl").exists()
    code, _, err = run_cli(capsys, "get-batch-results", *ids, "--requests", "r.jsonl", *WAIT)
    assert code == 0, err
    assert answered(Path("batch-responses.jsonl")) == [
        ("id_0", "N0"),
        ("id_1", "N1"),
        ("id_2", "N2"),
    ]


# ---------------------------------------------------------------------------------------------
# 2. A table edited in place, same size


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_a_table_sorted_in_place_is_refused_unless_given_with_data(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, "d.csv", "Name\nbob\namy\ncat\n", "r.jsonl")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    with open_ledger() as led:
        record = led.request_file(path="r.jsonl", digest=led.request_file_versions("r.jsonl")[0])
        assert record is not None and record.data_digest and record.make_run
        assert led.schema_version() == ledger_schema.MIGRATIONS[-1][0]
    Path("d.csv").write_text("Name\namy\nbob\ncat\n", encoding="utf-8")  # same size
    bump_mtime(Path("d.csv"))

    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT)
    assert_clean_error(code, err, "d.csv changed", "same size", "--data")
    assert not Path("out.csv").exists()

    # the user's own table is trusted as given
    Path("orig.csv").write_text("Name\nbob\namy\ncat\n", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", "--data", "orig.csv", *WAIT
    )
    assert code == 0, err
    assert [(r["Name"], r["content"].rsplit(": ", 1)[-1]) for r in read_csv(Path("out.csv"))] == [
        ("bob", "bob"), ("amy", "amy"), ("cat", "cat"),
    ]  # fmt: skip


def test_a_table_touched_but_not_changed_still_joins(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, "d.csv", "Name\nbob\namy\n", "r.jsonl")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    bump_mtime(Path("d.csv"))
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT)
    assert code == 0, err
    assert "modified" not in err
    assert [r["Name"] for r in read_csv(Path("out.csv"))] == ["bob", "amy"]


def test_a_ledger_from_before_data_hashes_is_migrated_and_still_warns(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    """Schema 2 ledgers get the new columns; their records, with no hash, keep the warning."""
    home = Path(os.environ["OPENAI_BATCH_HOME"])
    db = sqlite3.connect(home / ledger_paths.DB_NAME)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for version, name, statements in ledger_schema.MIGRATIONS[:2]:
        for statement in statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    db.commit()
    db.close()
    make(capsys, "d.csv", "Name\nbob\namy\n", "r.jsonl")
    with open_ledger() as led:
        assert led.schema_version() == ledger_schema.MIGRATIONS[-1][0]
        led.db.execute("UPDATE request_files SET data_digest = NULL, make_run = NULL")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    Path("d.csv").write_text("Name\namy\nbob\n", encoding="utf-8")
    bump_mtime(Path("d.csv"))
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT)
    assert code == 0, err
    assert "was modified since the request file was made (same size)" in err


# ---------------------------------------------------------------------------------------------
# 3. Byte-identical request files made from two tables


def test_identical_request_files_join_to_their_own_table(fake: FakeOpenAI, capsys: Capsys) -> None:
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    make(capsys, "a.csv", "Name,Email\nann,ann@a\namy,amy@a\n", "ra.jsonl")
    assert run_cli(capsys, "start-batch", "ra.jsonl")[0] == 0
    make(capsys, "b.csv", "Name,Email\nann,zed@b\namy,yan@b\n", "rb.jsonl")
    assert Path("ra.jsonl").read_bytes() == Path("rb.jsonl").read_bytes()

    code, _, err = run_cli(capsys, "get-batch-results", "ra.jsonl", "--csv", "out.csv", *WAIT)
    assert code == 0, err
    assert [r["Email"] for r in read_csv(Path("out.csv"))] == ["ann@a", "amy@a"]

    # by batch id: the file it was uploaded from decides, and the ambiguity is said
    (batch_id,) = fake.batches
    code, _, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "id.csv", *WAIT)
    assert code == 0, err
    assert [r["Email"] for r in read_csv(Path("id.csv"))] == ["ann@a", "amy@a"]
    assert "made, byte for byte, from" in err and "b.csv" in err


# ---------------------------------------------------------------------------------------------
# 4. The data file gone: the responses file does not need it


def test_responses_are_written_without_the_table_and_the_csv_says_what_is_missing(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, "d.csv", "Name\nann\namy\n", "r.jsonl")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    Path("d.csv").unlink()
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", *WAIT)
    assert code == 0, err
    assert answered(Path("batch-responses.jsonl")) == [("id_0", "ann"), ("id_1", "amy")]
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT)
    assert_clean_error(code, err, "d.csv", "is gone", "--data")
    assert not Path("out.csv").exists()


def test_a_table_changed_in_size_does_not_stop_the_responses_file(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, "d.csv", "Name\nann\namy\n", "r.jsonl")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    Path("d.csv").write_text("Name\nann\namy\nnew\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", *WAIT)
    assert code == 0, err
    assert len(read_jsonl(Path("batch-responses.jsonl"))) == 2


# ---------------------------------------------------------------------------------------------
# 5. The retry hint


def test_retry_hint_names_only_the_files_with_failures(fake: FakeOpenAI, capsys: Capsys) -> None:
    rows = "Name\n" + "".join(f"P{i}\n" for i in range(6))
    make(capsys, "d.csv", rows, "r.jsonl", "--max-requests", "2")
    for _ in range(3):  # whichever batch holds id_5 fails it
        fake.plan(fail_custom_ids={"id_5"}, error_status=500)
    shards = [f"r-00{i}.jsonl" for i in (1, 2, 3)]
    assert run_cli(capsys, "start-batch", *shards, "--parallel", "1")[0] == 0
    code, _, err = run_cli(capsys, "get-batch-results", *shards, *WAIT)
    assert code == 4
    assert "utils retry-failed r-003.jsonl -o r-003-retry.jsonl" in err
    assert "r-001.jsonl -o" not in err and "r-002.jsonl -o" not in err
