"""The ledger: migrations, records, lookups, and two processes using it at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from fake_openai import FakeOpenAI
from helpers import cli_json, read_jsonl, run_cli
from openai_batch.errors import BatchError
from openai_batch.ledger import paths as ledger_paths
from openai_batch.ledger import schema as ledger_schema
from openai_batch.ledger.paths import home_dir
from openai_batch.ledger.requestfiles import RequestFileFacts as Facts
from openai_batch.ledger.schema import MIGRATIONS
from openai_batch.ledger.store import open_ledger
from openai_batch.table.spec import TableSpec

SERVICE = "http://127.0.0.1:1/v1"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def fake_batch(batch_id: str, status: str = "validating", **kw: object) -> SimpleNamespace:
    counts = SimpleNamespace(total=3, completed=1, failed=0)
    base = dict(
        id=batch_id,
        input_file_id="file-1",
        endpoint="/v1/chat/completions",
        metadata={"description": "batch job"},
        status=status,
        created_at=100,
        output_file_id=None,
        error_file_id=None,
        request_counts=counts,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_home_dir_follows_env_and_defaults_to_platform_dir(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert home_dir() == home
    monkeypatch.delenv("OPENAI_BATCH_HOME")
    from platformdirs import user_data_dir

    assert home_dir() == Path(user_data_dir("openai-batch", appauthor=False))


def test_migrations_are_recorded_once_and_wal_is_on(home: Path) -> None:
    with open_ledger() as led:
        assert led.schema_version() == MIGRATIONS[-1][0]
    with open_ledger() as led:  # opening again applies nothing twice
        rows = led.db.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
        assert led.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (home / "ledger.sqlite3").is_file()


def test_a_ledger_from_a_newer_version_is_refused(home: Path) -> None:
    with open_ledger():
        pass
    db = sqlite3.connect(home / "ledger.sqlite3")
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    db.commit()
    db.close()
    with pytest.raises(BatchError, match="newer openai-batch"):
        open_ledger()


def test_a_ledger_from_before_the_first_release_is_named_as_such(home: Path) -> None:
    """Its history was squashed into version 1: calling it "newer" (schema 5 > 1) was wrong."""
    home.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(home / "ledger.sqlite3")
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    names = ["request files, uploads, batches, locks", "jobs", "sha256", "digest", "service"]
    db.executemany(
        "INSERT INTO schema_migrations VALUES (?, ?, 0)", list(enumerate(names, start=1))
    )
    db.commit()
    db.close()
    with pytest.raises(BatchError, match="development version") as caught:
        open_ledger()
    assert "newer" not in str(caught.value)
    assert "mv " in caught.value.hint and ".pre-release" in caught.value.hint


def test_request_files_keep_known_facts_and_follow_retry_parents(
    home: Path, tmp_path: Path
) -> None:
    with open_ledger() as led:
        led.record_request_file(
            Facts(
                tmp_path / "a.jsonl",
                "digest-a",
                requests=10,
                table=TableSpec(str(tmp_path / "d.csv"), id_prefix="row_", sheet="S", limit=5),
                first_row=0,
            )
        )
        # re-recording the same file without data (e.g. upload) keeps what make recorded
        again = led.record_request_file(Facts(tmp_path / "a.jsonl", "digest-a", bytes=99))
        assert again.data == str((tmp_path / "d.csv").resolve())
        assert again.table == TableSpec(
            str((tmp_path / "d.csv").resolve()), id_prefix="row_", sheet="S", limit=5
        )
        assert again.bytes == 99 and again.requests == 10
        led.record_request_file(Facts(tmp_path / "r1.jsonl", "digest-r1", parent_digest="digest-a"))
        led.record_request_file(
            Facts(tmp_path / "r2.jsonl", "digest-r2", parent_digest="digest-r1")
        )
        root = led.root_request_file("digest-r2")
        assert root is not None and root.digest == "digest-a"
        derived = {r.digest for r in led.request_files_derived_from("digest-a")}
        assert derived == {"digest-r1", "digest-r2"}
        assert led.request_file(path=tmp_path / "nope.jsonl") is None


def test_uploads_and_batches_are_scoped_to_a_service(home: Path) -> None:
    up = SimpleNamespace(id="file-1", bytes=5, purpose="batch", created_at=1, expires_at=2)
    with open_ledger() as led:
        led.record_upload(SERVICE, up, "digest", "x.jsonl")
        assert [u.file_id for u in led.uploads_for(SERVICE, "digest")] == ["file-1"]
        assert led.uploads_for("https://other/v1", "digest") == []
        led.mark_upload_gone(SERVICE, "file-1")
        assert led.uploads_for(SERVICE, "digest") == []

        led.record_batch(SERVICE, fake_batch("batch_1"))  # digest found through the upload
        record = led.batch(SERVICE, "batch_1")
        assert record is not None and record.digest == "digest"
        assert record.description == "batch job" and record.total == 3
        led.record_batch(SERVICE, fake_batch("batch_1", "completed", output_file_id="file-o"))
        record = led.batch(SERVICE, "batch_1")
        assert record is not None
        assert (record.status, record.output_file_id, record.digest) == (
            "completed",
            "file-o",
            "digest",
        )
        assert [b.batch_id for b in led.batches_for(SERVICE, digests=["digest"])] == ["batch_1"]
        assert [b.batch_id for b in led.batches_for(SERVICE, input_file_id="file-1")] == ["batch_1"]
        assert led.batches_for("https://other/v1", digests=["digest"]) == []


def test_the_ledger_holds_no_secrets(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key-123456")
    up = SimpleNamespace(id="file-1", bytes=5, purpose="batch", created_at=1, expires_at=2)
    with open_ledger() as led:
        led.record_upload(SERVICE, up, "digest", "x.jsonl")
        led.record_batch(SERVICE, fake_batch("batch_1"))
    data = b"".join(p.read_bytes() for p in home.glob("ledger.sqlite3*"))
    assert b"sk-test-secret" not in data


def test_lock_is_exclusive_across_processes_and_released(home: Path, tmp_path: Path) -> None:
    """A second process waits for the lock; a lock left by a dead process is taken over."""
    marker = tmp_path / "order.txt"
    script = textwrap.dedent(
        f"""
        import sys, time
        from openai_batch.ledger.store import open_ledger
        with open_ledger() as led:
            with led.lock("start:x"):
                with open({str(marker)!r}, "a") as fh:
                    fh.write(sys.argv[1] + " in\\n")
                    fh.flush()
                    time.sleep(0.3)
                    fh.write(sys.argv[1] + " out\\n")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, name], env=_env(home))
        for name in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    lines = marker.read_text().splitlines()
    assert sorted(lines) == ["a in", "a out", "b in", "b out"]
    # never interleaved: each "in" is directly followed by the same process's "out"
    first, second = lines[0].split()[0], lines[2].split()[0]
    assert lines == [f"{first} in", f"{first} out", f"{second} in", f"{second} out"]

    # a holder that died without releasing does not block forever
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    with open_ledger() as led:
        import socket

        led.db.execute(
            "INSERT INTO locks VALUES ('start:y', ?, 0)", (f"{socket.gethostname()}:{pid}",)
        )
        with led.lock("start:y", wait_seconds=5):
            pass


def test_lock_times_out_with_a_clear_message(home: Path) -> None:
    with open_ledger() as led, led.lock("upload:z"):
        other = open_ledger()
        # same process, different owner string: simulate another live holder
        other.db.execute("UPDATE locks SET owner = 'elsewhere:1', acquired_at = 9e12")
        with (
            pytest.raises(BatchError, match="another openai-batch command"),
            other.lock("upload:z", wait_seconds=0.2),
        ):
            pass
        other.close()


def test_concurrent_writers_do_not_fail(home: Path) -> None:
    """Two processes writing at once: WAL + busy timeout, no 'database is locked'."""
    script = textwrap.dedent(
        """
        import sys
        from types import SimpleNamespace
        from openai_batch.ledger.requestfiles import RequestFileFacts
        from openai_batch.ledger.store import open_ledger
        with open_ledger() as led:
            for i in range(200):
                facts = RequestFileFacts(f"/tmp/{sys.argv[1]}-{i}.jsonl", f"{sys.argv[1]}{i}")
                led.record_request_file(facts)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, n], env=_env(home)) for n in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with open_ledger() as led:
        assert led.db.execute("SELECT COUNT(*) FROM request_files").fetchone()[0] == 400


def _env(home: Path) -> dict[str, str]:
    import os

    return {**os.environ, "OPENAI_BATCH_HOME": str(home)}


def test_module_exposes_downloads_dir_under_home(home: Path) -> None:
    assert ledger_paths.downloads_dir() == home / "downloads"


def test_a_batch_id_seen_again_for_another_input_file_is_another_batch(home: Path) -> None:
    """On one base URL two accounts (or a reset server) may reuse `batch_1`: the second one
    replaces the row and inherits nothing (else one account's content would be taken as
    started by the other's batch, and its answers joined to the wrong rows)."""
    with open_ledger() as led:
        led.record_batch(SERVICE, fake_batch("batch_1"), digest="d" * 32)
        led.record_batch(SERVICE, fake_batch("batch_1", status="completed"))  # the same batch
        same = led.batch(SERVICE, "batch_1")
        assert same is not None and (same.digest, same.status) == ("d" * 32, "completed")
        other = fake_batch("batch_1", input_file_id="file-9", created_at=500, metadata={})
        led.record_batch(SERVICE, other)
        record = led.batch(SERVICE, "batch_1")
        assert record is not None
        assert (record.input_file_id, record.created_at, record.digest, record.description) == (
            "file-9", 500, None, None,
        )  # fmt: skip
        assert led.batches_for(SERVICE, digests=["d" * 32]) == []


# ---------------------------------------------------------------------------------------------
# The schema and its migrations


def test_the_first_schema_keys_content_by_digest_with_indexes_that_are_used(home: Path) -> None:
    with open_ledger() as led:
        tables = [r[0] for r in led.db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert {"request_files", "uploads", "batches", "locks", "jobs", "job_shards"} <= set(tables)
        for table in tables:
            columns = [r[1] for r in led.db.execute(f"PRAGMA table_info({table})")]
            assert not [c for c in columns if "sha256" in c], (table, columns)
        indexes = {
            r[0]
            for r in led.db.execute("SELECT name FROM sqlite_master WHERE type='index'")
            if not r[0].startswith("sqlite_autoindex")
        }
        assert {"request_files_by_digest", "uploads_by_digest", "batches_by_digest"} <= indexes
        plan = led.db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM uploads WHERE service = ? AND digest = ?",
            (SERVICE, "a" * 32),
        ).fetchall()
        assert "uploads_by_digest" in str([tuple(r) for r in plan])


def test_a_later_migration_runs_once_in_order_with_sql_and_python_steps(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_ledger() as led:
        led.record_request_file(Facts("/x/r.jsonl", "d" * 32, requests=3))
    calls: list[int] = []

    def count_rows(db: sqlite3.Connection) -> None:
        calls.append(db.execute("SELECT COUNT(*) FROM request_files").fetchone()[0])

    nxt = MIGRATIONS[-1][0] + 1
    later = [(nxt, "a note per request file", ["ALTER TABLE request_files ADD COLUMN note TEXT",
                                               count_rows])]  # fmt: skip
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", [*MIGRATIONS, *later])
    for _ in range(2):
        with open_ledger() as led:
            assert led.schema_version() == nxt
            assert [tuple(r) for r in led.db.execute("SELECT note FROM request_files")] == [(None,)]
            applied = led.db.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in applied] == [*(m[0] for m in MIGRATIONS), nxt]
    assert calls == [1]  # once, with the rows of the first schema there


# ---------------------------------------------------------------------------------------------
# Downloads: one folder per service


def test_two_services_issuing_the_same_file_ids_keep_their_own_downloads(
    fake_api: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids are unique within one service only: two servers (seeded alike) issue `file-...` ids
    in the same order, and each one's results must stay its own."""
    monkeypatch.chdir(tmp_path)
    other = FakeOpenAI().start()
    try:
        outputs = {}
        for name, server in (("one", fake_api), ("two", other)):
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": name}]}
            line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions"}
            Path(f"{name}.jsonl").write_text(json.dumps({**line, "body": body}) + "\n")
            code, started = cli_json(capsys, "start-batch", f"{name}.jsonl")
            assert code == 0, started
            batch_id = started[0]["id"]
            server.finish(batch_id)
            outputs[name] = server.batches[batch_id].output_file_id
            code, _, err = run_cli(capsys, "get-batch-results", batch_id, "-o", f"{name}-out.jsonl")
            assert code == 0, err
        assert outputs["one"] == outputs["two"]  # the premise: the same id on both servers
        for name in ("one", "two"):
            answer = read_jsonl(Path(f"{name}-out.jsonl"))[0]["response"]["body"]
            assert name in json.dumps(answer["choices"][0]["message"]["content"])
        folders = sorted(p.name for p in ledger_paths.downloads_dir().iterdir())
        assert len(folders) == 2 and all(f.startswith("127.0.0.1_") for f in folders)
    finally:
        other.stop()
