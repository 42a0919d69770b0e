"""Content digests (xxh3-128), and ledgers that recorded SHA-256 before schema 4.

A batch runs for up to a day, so users upgrade while one is in flight. The ledger's rows from
before keep their SHA-256 values (migration 4 only renames the columns): starting the same file
again must still find its batch (not pay twice), a job must still be found by rerunning the
command, and a join must not call an unchanged file "changed".
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import read_csv, run_cli
from openai_batch.ledger import digests
from openai_batch.ledger import store as ledger_module
from openai_batch.ledger.jobstore import job_names
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}
# every column that holds a content hash, as (table, column)
CONTENT_COLUMNS = [
    ("request_files", "digest"),
    ("request_files", "parent_digest"),
    ("request_files", "data_digest"),
    ("uploads", "digest"),
    ("batches", "digest"),
    ("job_shards", "digest"),
]


def old_hash(path: Path) -> str:
    """What openai-batch before ledger schema 4 recorded for a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# The digest itself


def test_a_digest_is_xxh3_128_of_the_bytes_streamed_in_blocks(tmp_path: Path) -> None:
    import xxhash

    data = os.urandom(digests.BLOCK * 2 + 12345)  # crosses block boundaries
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert digests.ALGORITHM == "xxh3_128"
    assert digests.digest_of(path) == digests.digest_bytes(data) == expected
    assert len(expected) == 32 and len(expected) != digests.LEGACY_HEX_LENGTH
    hasher = digests.new_digest()
    for start in range(0, len(data), 1000_003):  # any split, any buffer type
        hasher.update(memoryview(data)[start : start + 1000_003])
    assert hasher.hexdigest() == expected
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert digests.digest_of(empty) == digests.digest_bytes(b"") != expected


def test_matches_checks_a_new_digest_or_an_old_sha256_as_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"custom_id": "id_0"}\n')
    new, old = digests.digest_of(path), old_hash(path)
    assert digests.matches(path, new) and digests.matches(path, old)
    path.write_bytes(b'{"custom_id": "id_1"}\n')  # same size, other content
    assert not digests.matches(path, new) and not digests.matches(path, old)


def test_make_batch_file_json_names_the_digest(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\nann\nbob\n", encoding="utf-8")
    code, out, err = run_cli(
        capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "--json"
    )
    assert code == 0, err
    (shard,) = json.loads(out)["files"]
    assert shard["digest"] == digests.digest_of(Path("r.jsonl")) and "sha256" not in shard


# ---------------------------------------------------------------------------------------------
# A ledger from before schema 4, through the real CLI


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    return fake_api


def make(capsys: Capsys, rows: str, *extra: str) -> None:
    Path("d.csv").write_text(rows, encoding="utf-8")
    code, _, err = run_cli(
        capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "-q", *extra
    )
    assert code == 0, err


def as_before_schema_4(files: list[Path]) -> None:
    """Put the ledger's content hashes back to what an older openai-batch recorded (SHA-256):
    after migration 4 renamed the columns, the values are exactly these."""
    home = Path(os.environ["OPENAI_BATCH_HOME"])
    db = sqlite3.connect(home / ledger_module.DB_NAME)
    with db:
        for path in files:
            new, old = digests.digest_of(path), old_hash(path)
            for table, column in CONTENT_COLUMNS:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (old, new))
    db.close()


def legacy_values() -> int:
    """How many content hashes in the ledger are still SHA-256."""
    home = Path(os.environ["OPENAI_BATCH_HOME"])
    db = sqlite3.connect(home / ledger_module.DB_NAME)
    try:
        return sum(
            db.execute(f"SELECT COUNT(*) FROM {t} WHERE length({c}) = 64").fetchone()[0]
            for t, c in CONTENT_COLUMNS
        )
    finally:
        db.close()


def test_a_batch_started_before_the_upgrade_is_not_started_again(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    make(capsys, "Name\nbob\namy\ncat\n")
    code, _, err = run_cli(capsys, "start-batch", "r.jsonl")
    assert code == 0, err
    as_before_schema_4([Path("r.jsonl"), Path("d.csv")])
    assert legacy_values() == 4  # the request file, its upload, its batch, its data file

    code, out, err = run_cli(capsys, "start-batch", "r.jsonl")
    assert code == 0, err
    assert "Already started" in out
    assert len(fake.batches) == 1 and len(fake.files) == 1  # neither uploaded nor paid twice
    with open_ledger() as led:  # the file's rows now carry its current digest
        record = led.request_file(path="r.jsonl", digest=digests.digest_of(Path("r.jsonl")))
        assert record is not None and record.template and record.first_row == 0
    assert legacy_values() == 1  # the data file's hash: checked as SHA-256 when needed

    # the table was touched, not changed: its old hash still vouches for it
    stat = os.stat("d.csv")
    os.utime("d.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    code, _, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "out.csv", *WAIT)
    assert code == 0, err
    assert [(r["Name"], r["content"].rsplit(": ", 1)[-1]) for r in read_csv(Path("out.csv"))] == [
        ("bob", "bob"), ("amy", "amy"), ("cat", "cat"),
    ]  # fmt: skip


def test_a_job_started_before_the_upgrade_is_found_again(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, "Name\n" + "".join(f"P{i}\n" for i in range(5)), "--max-requests", "2")
    shards = sorted(Path().glob("r-*.jsonl"))
    code, _, err = run_cli(capsys, "start-batch", *shards)
    assert code == 0, err
    assert len(fake.batches) == 3
    as_before_schema_4([*shards, Path("d.csv")])

    code, _, err = run_cli(capsys, "start-batch", *shards)  # resumes the job: nothing new
    assert code == 0, err
    with open_ledger() as led:
        assert job_names(led) == ["d"]
    assert len(fake.batches) == 3 and len(fake.files) == 3
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "d", "--csv", "out.csv", *WAIT)
    assert code == 0, err
    assert [r["Name"] for r in read_csv(Path("out.csv"))] == [f"P{i}" for i in range(5)]


def test_an_edited_file_is_not_taken_for_its_old_content(fake: FakeOpenAI, capsys: Capsys) -> None:
    make(capsys, "Name\nbob\namy\n")
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    as_before_schema_4([Path("r.jsonl")])
    make(capsys, "Name\nann\nbea\n")  # other rows, same path
    code, out, err = run_cli(capsys, "start-batch", "r.jsonl")
    assert code == 0, err
    assert "Started batch" in out and len(fake.batches) == 2


def test_files_made_from_one_table_before_and_after_the_upgrade_join_together(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    """The table's hash is SHA-256 for the file made before the upgrade and a digest for the
    one made after: the same content, so one join; an edited table is still refused."""
    Path("d.csv").write_text("Name\nbob\namy\n", encoding="utf-8")
    for name in ("a", "b"):
        code, _, err = run_cli(
            capsys, "make-batch-file", "t.json", "d.csv", "-o", f"{name}.jsonl", "-q",
            "--id-prefix", f"{name}_",
        )  # fmt: skip
        assert code == 0, err
        if name == "a":
            as_before_schema_4([Path("a.jsonl"), Path("d.csv")])
    assert run_cli(capsys, "start-batch", "a.jsonl", "b.jsonl")[0] == 0
    stat = os.stat("d.csv")  # touched since: the hashes decide
    os.utime("d.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    results = ("get-batch-results", "a.jsonl", "b.jsonl", "--csv")
    code, _, err = run_cli(capsys, *results, "out.csv", *WAIT)
    assert code == 0, err
    assert "different versions" not in err  # one table, hashed the old way and the new
    assert [(r["Name"], r["custom_id"]) for r in read_csv(Path("out.csv"))] == [
        ("bob", "a_0"),
        ("amy", "a_1"),
    ]  # fmt: skip (the rows take the first file's ids; the other file's are pointed out)
    Path("d.csv").write_text("Name\namy\nbob\n", encoding="utf-8")  # sorted: same size
    code, _, err = run_cli(capsys, *results, "o2.csv", *WAIT)
    assert code != 0 and "changed since the request file was made" in err
