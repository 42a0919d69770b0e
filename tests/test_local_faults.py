"""The local world breaks: the ledger, the disk, file size and memory limits, unreadable or damaged
inputs, locks of dead holders, leftovers of killed writers, Ctrl-C. Each is one `error:` line and
a hint, never a traceback, and nothing already written is lost. See docs/reliability.md.

Limits are set in subprocesses (RLIMIT_FSIZE, RLIMIT_AS through preexec_fn). Permission faults
need a process that file modes bind: run as root (as CI runs), that subprocess first gives up
the capabilities that bypass file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: see
`bound_by_file_modes`), so a read-only folder or an unreadable file is as real for it as for
any user."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from helpers import (
    HANG_SECONDS,
    assert_clean_error,
    cli_json,
    command_group,
    ctrl_c,
    kill_group,
    run_cli,
    wait_while_running,
)
from openai_batch.errors import BatchError
from openai_batch.ledger.paths import DB_NAME, downloads_dir, home_dir
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
TEMPLATE = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}'
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_SETPCAP = 24, 1, 2, 8


def _may_drop_capabilities() -> bool:
    """Whether this (Linux) process may drop capabilities from its children's bounding set."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            effective = next(line for line in fh if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return False
    return bool(int(effective.split()[1], 16) & (1 << CAP_SETPCAP))


needs_file_modes = pytest.mark.skipif(
    ROOT and not _may_drop_capabilities(), reason="root here cannot give up ignoring file modes"
)


def bound_by_file_modes() -> None:
    """In a child (preexec_fn): as root, drop the capabilities that bypass file modes from the
    bounding set, so after exec this root is refused what file modes refuse; else nothing."""
    if not ROOT:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "d.csv").write_text("q\n" + "".join(f"row {i}\n" for i in range(50)), "utf-8")
    return tmp_path


@pytest.fixture
def fake(fake_api: FakeOpenAI, work: Path) -> FakeOpenAI:
    return fake_api


def request_file(path: Path, n: int = 3) -> Path:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    lines = [
        json.dumps(
            {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(
    *args: str | Path,
    cwd: Path,
    limits: dict[int, int] | None = None,
    timeout: float = 120,
    file_modes: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, under resource limits (soft and hard); with `file_modes`,
    bound by file modes even when the tests run as root."""

    def preexec() -> None:
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))
        if file_modes:
            bound_by_file_modes()

    return subprocess.run(
        [sys.executable, "-m", "openai_batch", *map(str, args)],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
    )


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.part"))


def _size(path: Path) -> int:
    """0 for a file gone meanwhile (a part renamed into place)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------- the ledger


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_ledger_is_named_with_what_to_do(
    fake: FakeOpenAI, capsys: Capsys, work: Path, damage: str
) -> None:
    request_file(work / "r.jsonl")
    assert run_cli(capsys, "upload-batch-file", "r.jsonl")[0] == 0
    ledger = home_dir() / DB_NAME
    with open_ledger() as led:  # fold the WAL in, so the file alone is the ledger
        led.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = ledger.read_bytes()
    if damage == "garbage":
        ledger.write_bytes(os.urandom(len(data)))
    else:
        ledger.write_bytes(data[: len(data) // 3])
    before = ledger.read_bytes()
    for args in (("upload-batch-file", "r.jsonl"), ("get-batch-results", "r.jsonl"),
                 ("start-batch", "r.jsonl")):  # fmt: skip
        code, _out, err = run_cli(capsys, *args)
        assert_clean_error(code, err, f"the ledger {ledger} is damaged", "hint: move it aside")
    assert ledger.read_bytes() == before  # left as it was, for the user to look at
    assert fake.upload_count == 1 and fake.batch_create_count == 0


def test_openai_batch_home_that_is_a_file_or_under_one(
    capsys: Capsys, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / "home").write_text("not a folder", encoding="utf-8")
    request_file(work / "r.jsonl")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-used-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(work / "home"))
    code, _, err = run_cli(capsys, "upload-batch-file", "r.jsonl")
    assert_clean_error(code, err, "OPENAI_BATCH_HOME", "is a file, not a folder")
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(work / "home" / "sub"))
    code, _, err = run_cli(capsys, "upload-batch-file", "r.jsonl")
    assert_clean_error(code, err, "cannot use the ledger folder", "OPENAI_BATCH_HOME")


@needs_file_modes
def test_a_read_only_ledger_or_home(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request_file(work / "r.jsonl")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-used-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with open_ledger():
        pass
    ledger = home_dir() / DB_NAME
    for p in home_dir().iterdir():
        p.chmod(0o444)
    home_dir().chmod(0o555)
    try:
        proc = cli("upload-batch-file", "r.jsonl", cwd=work, file_modes=True)
        assert_clean_error(proc.returncode, proc.stderr, str(ledger))
        monkeypatch.setenv("OPENAI_BATCH_HOME", str(home_dir() / "inner"))
        proc = cli("upload-batch-file", "r.jsonl", cwd=work, file_modes=True)
        assert_clean_error(proc.returncode, proc.stderr, "cannot use the ledger folder")
    finally:
        monkeypatch.setenv("OPENAI_BATCH_HOME", str(ledger.parent))
        home_dir().chmod(0o755)
        for p in home_dir().iterdir():
            p.chmod(0o644)


def test_a_ledger_that_cannot_grow_says_why(fake: FakeOpenAI, work: Path) -> None:
    request_file(work / "r.jsonl")
    proc = cli("upload-batch-file", "r.jsonl", cwd=work,
               limits={resource.RLIMIT_FSIZE: 16 * 1024})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert_clean_error(proc.returncode, proc.stderr, "the ledger", "disk I/O error", "ulimit -f")


def test_an_older_version_whose_ledger_is_upgraded_while_it_waits(
    fake: FakeOpenAI, capsys: Capsys, work: Path
) -> None:
    code, started = cli_json(capsys, "start-batch", request_file(work / "r.jsonl"))
    assert code == 0
    batch_id = started[0]["id"]
    fake.auto_advance = False

    def upgrade_when_polled() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(1 for m, p, _ in fake.log if m == "GET" and p.endswith(batch_id)) >= 2:
                break
            time.sleep(0.01)
        db = sqlite3.connect(home_dir() / DB_NAME, isolation_level=None)
        db.execute("ALTER TABLE batches RENAME COLUMN digest TO content_digest")
        db.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
        db.close()

    thread = threading.Thread(target=upgrade_when_polled)
    thread.start()
    code, _out, err = run_cli(capsys, "get-batch-results", batch_id, "--wait",
                             "--poll-interval", "0.01", "--quiet")  # fmt: skip
    thread.join()
    assert_clean_error(code, err, "was upgraded by a newer openai-batch while this command ran")
    assert "pip install -U openai-batch" in err


# ------------------------------------------------------------------- outputs and the disk


def test_output_onto_a_folder_or_under_a_file(fake: FakeOpenAI, capsys: Capsys, work: Path) -> None:
    code, started = cli_json(capsys, "start-batch", request_file(work / "r.jsonl"))
    fake.finish(started[0]["id"])
    (work / "folder.csv").mkdir()
    (work / "afile").write_text("x", encoding="utf-8")
    for args in (("--csv", "folder.csv"), ("-o", "folder.csv"), ("--csv", "afile/t.csv"),
                 ("-o", "afile/out.jsonl")):  # fmt: skip
        code, _out, err = run_cli(capsys, "get-batch-results", "r.jsonl", *args)
        assert_clean_error(code, err)
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "afile/r.jsonl")
    assert_clean_error(code, err, "afile")
    assert parts(work) == []


@needs_file_modes
def test_output_into_a_read_only_folder(fake: FakeOpenAI, capsys: Capsys, work: Path) -> None:
    code, started = cli_json(capsys, "start-batch", request_file(work / "r.jsonl"))
    assert code == 0, started
    fake.finish(started[0]["id"])
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = cli("make-batch-file", "t.json", "d.csv", "-o", "ro/r.jsonl", cwd=work,
                   file_modes=True)  # fmt: skip
        assert_clean_error(proc.returncode, proc.stderr, "permission denied", "ro")
        proc = cli("get-batch-results", "r.jsonl", "--csv", "ro/t.csv", cwd=work, file_modes=True)
        assert_clean_error(proc.returncode, proc.stderr, "permission denied", "ro")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_file_size_limit_while_writing_keeps_what_was_there(work: Path) -> None:
    (work / "d.csv").write_text(
        "q\n" + "".join(f"row {i} {'x' * 200}\n" for i in range(2000)), "utf-8"
    )
    previous = work / "r.jsonl"
    previous.write_text("earlier output\n", encoding="utf-8")
    proc = cli("make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", cwd=work,
               limits={resource.RLIMIT_FSIZE: 64 * 1024})  # fmt: skip
    assert_clean_error(proc.returncode, proc.stderr, "file size limit", "ulimit -f")
    assert previous.read_text(encoding="utf-8") == "earlier output\n"
    assert parts(work) == []


def test_a_file_size_limit_while_the_table_is_written_keeps_the_earlier_table(
    fake: FakeOpenAI, work: Path
) -> None:
    """The table's blocks of text are written by a thread (local/writer.py): a write that
    fails there is the command's one clean error all the same, and the table it would have
    replaced is kept."""
    (work / "d.csv").write_text(
        "q\n" + "".join(f"row {i} {'x' * 2000}\n" for i in range(2000)), "utf-8"
    )  # a table of ~5 MB; the download and the responses file ~2.7 MB each
    made = cli("make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "-q", cwd=work)
    assert made.returncode == 0, made.stderr
    started = cli("start-batch", "r.jsonl", cwd=work)
    assert started.returncode == 0, started.stderr
    table = work / "t.csv"
    table.write_text("earlier table\n", encoding="utf-8")
    proc = cli("get-batch-results", "r.jsonl", "--wait", "--poll-interval", "0", "--csv", table,
               cwd=work, limits={resource.RLIMIT_FSIZE: 4 << 20})  # fmt: skip
    assert_clean_error(proc.returncode, proc.stderr, "file size limit", "ulimit -f")
    assert table.read_text(encoding="utf-8") == "earlier table\n"
    assert parts(work) == []


def test_local_errors_name_the_cause_and_the_way_out() -> None:
    """Faults a test cannot cause cheaply (a full disk, a read-only mount), as the OS says them."""
    import errno

    from openai_batch.local.faults import explain

    cases = {
        errno.ENOSPC: "no space left",
        errno.EROFS: "read-only",
        errno.EACCES: "permission denied",
        errno.EISDIR: "is a folder",
        errno.EMFILE: "too many open files",
    }
    for code, words in cases.items():
        error = explain(OSError(code, os.strerror(code), "/data/out.csv"))
        assert error is not None and words in error.message, (code, error)
        assert error.hint


# ------------------------------------------------------------------- inputs


def test_damaged_or_fake_compressed_tables(capsys: Capsys, work: Path) -> None:
    import gzip

    (work / "fake.csv.gz").write_text("q\na\n", encoding="utf-8")
    whole = gzip.compress(("q\n" + "a\n" * 5000).encode())
    (work / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "fake.csv.gz", "-o", "a.jsonl")
    assert_clean_error(code, err, "not a gzip file")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "cut.csv.gz", "-o", "b.jsonl")
    assert_clean_error(code, err, "ended early", "truncated")
    assert not (work / "a.jsonl").exists() and not (work / "b.jsonl").exists()
    assert parts(work) == []


@needs_file_modes
def test_unreadable_data_and_request_files(work: Path) -> None:
    request_file(work / "r.jsonl")
    for name in ("d.csv", "r.jsonl"):
        (work / name).chmod(0)
    try:
        proc = cli("make-batch-file", "t.json", "d.csv", "-o", "x.jsonl", cwd=work,
                   file_modes=True)  # fmt: skip
        assert_clean_error(proc.returncode, proc.stderr, "permission denied", "d.csv")
        for command in ("validate", "estimate"):
            proc = cli("utils", command, "r.jsonl", cwd=work, file_modes=True)
            assert_clean_error(proc.returncode, proc.stderr, "permission denied", "r.jsonl")
    finally:
        for name in ("d.csv", "r.jsonl"):
            (work / name).chmod(0o644)


def test_templates_and_request_lines_nested_thousands_deep(capsys: Capsys, work: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (work / "deep.json").write_text(TEMPLATE[:-1] + f', "x": {deep}}}', encoding="utf-8")
    code, _, err = run_cli(capsys, "make-batch-file", "deep.json", "d.csv", "-o", "x.jsonl")
    assert_clean_error(code, err, "deep.json is nested too deeply at line 1, column ")
    line = request_file(work / "r.jsonl", 1).read_text(encoding="utf-8").rstrip()
    (work / "r.jsonl").write_text(line[:-1] + f', "x": {deep}}}\n', encoding="utf-8")
    for args in (("utils", "validate"), ("upload-batch-file",)):
        code, out, err = run_cli(capsys, *args, "r.jsonl")
        assert code == 1 and "Traceback" not in err
        assert "line 1: nested too deeply to read" in out + err
    # the estimate skips a line that is not a request, as it skips any other, and says so
    code, _, err = run_cli(capsys, "utils", "estimate", "r.jsonl")
    assert code == 0 and "line 1 was skipped: nested too deeply to read" in err
    assert not (work / "x.jsonl").exists()


def test_a_1_gb_cell_under_a_memory_limit(work: Path) -> None:
    with open(work / "big.csv", "wb") as fh:  # sparse: costs no disk and no time to write
        fh.write(b"q\nx")
        fh.truncate(3 + 1_000_000_000)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")
    proc = cli("make-batch-file", "t.json", "big.csv", "-o", "r.jsonl", cwd=work,
               limits={resource.RLIMIT_AS: 2 << 30})  # fmt: skip
    assert_clean_error(proc.returncode, proc.stderr, "error: out of memory")
    assert "double quotes" not in proc.stderr  # not a quoting problem
    assert proc.returncode == 1
    assert not (work / "r.jsonl").exists() and parts(work) == []


def test_poll_interval_must_be_a_finite_number_of_seconds(
    fake: FakeOpenAI, capsys: Capsys, work: Path
) -> None:
    for value in ("inf", "nan", "-1", "1e9"):
        for command in (("get-batch-results", "batch_abc"), ("run", "t.json", "d.csv")):
            code, out, err = run_cli(capsys, *command, "--wait", "--poll-interval", value)
            assert code == 2 and "Traceback" not in err
            assert "--poll-interval" in out + err
    assert fake.log == []


# ------------------------------------------------------------------- locks


def _add_lock(name: str, owner: str, at: float) -> None:
    with open_ledger() as led:
        led.db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (name, owner, at))


def _start_lock_name(fake: FakeOpenAI, path: Path) -> str:
    from openai_batch.ledger.digests import digest_of

    return f"start:{fake.base_url}:{digest_of(path)}"


def test_a_lock_of_a_dead_holder_on_another_host_is_taken_over(
    fake: FakeOpenAI, work: Path
) -> None:
    path = request_file(work / "r.jsonl")
    _add_lock(_start_lock_name(fake, path), "other-host:4242", time.time() - 600)
    proc = cli("start-batch", "r.jsonl", cwd=work, timeout=30)  # it used to wait an hour
    code, err = proc.returncode, proc.stderr
    assert code == 0, err
    assert "took over the lock for starting a batch for this file" in err
    assert "process 4242 on other-host" in err
    assert fake.batch_create_count == 1


def test_waiting_for_a_live_lock_says_what_it_waits_for(fake: FakeOpenAI, work: Path) -> None:
    path = request_file(work / "r.jsonl")
    name = _start_lock_name(fake, path)
    _add_lock(name, "other-host:4242", time.time())
    with command_group("start-batch", "r.jsonl", cwd=work) as proc:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], HANG_SECONDS)
        assert ready, "no word of what the command waits for"  # it used to wait silently for 1 h
        first = proc.stderr.readline()
        assert "waiting for another openai-batch command, process 4242 on other-host" in first
        assert "starting a batch for this file" in first and "120 s" in first
        assert fake.batch_create_count == 0
        with open_ledger() as led:  # the holder finishes
            led.db.execute("DELETE FROM locks WHERE name = ?", (name,))
        _out, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 0, err
    assert fake.batch_create_count == 1


def test_a_pid_is_trusted_only_in_its_own_host_boot_and_pid_namespace(
    fake: FakeOpenAI, work: Path
) -> None:
    """Containers can share a host name (and a home folder) but not their process ids: a pid
    absent here says nothing of a holder in another pid namespace, so its lock is not taken
    while its heartbeat goes on. In this very namespace a dead pid frees the lock at once."""
    from openai_batch.ledger.locks import pid_scope

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    pid, host = int(ended.stdout), socket.gethostname()  # a process gone from here
    for elsewhere in (f"{host}:{pid}", f"{host}:{pid}:another-boot/4026531836"):
        _add_lock("start:x", elsewhere, time.time())
        with (
            open_ledger() as led,
            pytest.raises(BatchError, match="holds the lock"),
            led.lock("start:x", wait_seconds=0.3),
        ):
            pass
    if not pid_scope():
        pytest.skip("this system tells no boot id and pid namespace")
    _add_lock("start:x", f"{host}:{pid}:{pid_scope()}", time.time())
    notes: list[str] = []
    with open_ledger() as led, led.lock("start:x", wait_seconds=0.3, notify=notes.append):
        pass
    assert notes and "that command is gone" in notes[0]


def test_a_holder_paused_past_its_lock_creates_nothing(fake: FakeOpenAI, work: Path) -> None:
    """A start-batch stopped (Ctrl-Z, a laptop asleep) while it holds the start lock looks dead
    after 120 s; another one takes over and starts the batch. Resumed, the first one must
    not start a second batch (paid twice)."""
    path = request_file(work / "r.jsonl")
    name = _start_lock_name(fake, path)
    fake.inject("POST", r"/v1/files$", 503, times=1, retry_after=2)  # keeps it in the lock
    with command_group("start-batch", "r.jsonl", cwd=work) as first:
        try:
            uploading = lambda: ("POST", "/v1/files", 503) in fake.log  # noqa: E731
            wait_while_running(first, uploading, "the upload (the start lock held)")
            os.kill(first.pid, signal.SIGSTOP)
            with open_ledger() as led:
                row = led.db.execute("SELECT owner FROM locks WHERE name = ?", (name,)).fetchone()
            assert row is not None and f":{first.pid}:" in row[0]
            with open_ledger() as led:  # its heartbeat stopped 10 minutes ago, as others see
                led.db.execute("UPDATE locks SET acquired_at = acquired_at - 600")
            second = cli("start-batch", "r.jsonl", cwd=work, timeout=HANG_SECONDS)
            assert second.returncode == 0, second.stderr
            assert "took over the lock" in second.stderr and fake.batch_create_count == 1
        finally:
            os.kill(first.pid, signal.SIGCONT)
        _out, err = first.communicate(timeout=HANG_SECONDS)
    assert_clean_error(first.returncode, err, "another openai-batch command took over")
    assert "before creating anything" in err
    assert fake.batch_create_count == 1 and len(fake.batches) == 1


def test_a_held_lock_shows_signs_of_life(fake: FakeOpenAI, capsys: Capsys, work: Path) -> None:
    from openai_batch.ledger import locks as ledger_locks

    with open_ledger() as led, led.lock("start:x"):
        first = led.db.execute("SELECT acquired_at FROM locks").fetchone()[0]
        deadline = time.monotonic() + ledger_locks.HEARTBEAT_SECONDS * 3
        while time.monotonic() < deadline:
            now = led.db.execute("SELECT acquired_at FROM locks").fetchone()[0]
            if now > first:
                break
            time.sleep(0.2)
        assert now > first
    with open_ledger() as led:
        assert led.db.execute("SELECT COUNT(*) FROM locks").fetchone()[0] == 0


# ------------------------------------------------------------------- leftovers and Ctrl-C


def test_leftovers_of_killed_writers_are_swept_but_not_live_ones(
    fake: FakeOpenAI, capsys: Capsys, work: Path
) -> None:
    dead = work / ".r.jsonl.k1ll3d00.part"
    dead.write_bytes(b"half a file")
    live = work / ".r.jsonl.l1ve0000.part"
    live.write_bytes(b"being written")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live writer holds its temp file
    try:
        code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl")
        assert code == 0, err
        assert not dead.exists() and live.exists()
    finally:
        os.close(holder)
    # the downloads folder: a killed download of the same file is swept by the next one
    code, started = cli_json(capsys, "start-batch", "r.jsonl")
    batch_id = started[0]["id"]
    fake.finish(batch_id)
    output_id = fake.batches[batch_id].output_file_id
    downloads = downloads_dir(fake.base_url)
    downloads.mkdir(parents=True, exist_ok=True)
    (downloads / f".{output_id}.jsonl.k1ll3d00.part").write_bytes(b"half")
    code, _out, err = run_cli(capsys, "get-batch-results", "r.jsonl")
    assert code == 0, err
    assert parts(downloads) == []


def test_ctrl_c_outside_polling_says_how_to_go_on(fake: FakeOpenAI, work: Path) -> None:
    request_file(work / "r.jsonl")
    fake.inject("POST", r"/v1/files$", 503, times=None)  # the upload retries, with pauses
    env = {**os.environ, "OPENAI_BATCH_MAX_RETRIES": "8"}
    posts = lambda: sum(1 for m, p, _ in fake.log if m == "POST")  # noqa: E731
    with command_group("upload-batch-file", "r.jsonl", cwd=work, env=env) as proc:
        wait_while_running(proc, lambda: posts() >= 2, "a retried upload")
        ctrl_c(proc)
        _out, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "error: interrupted" in err
    assert "run the same command again: openai-batch upload-batch-file r.jsonl" in err
    assert parts(work) == []


def big_table(path: Path, rows: int = 1_500_000) -> Path:
    """A table make-batch-file takes a few seconds over (~60 MB)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("q\n")
        fh.writelines(f"row {i} of a table that takes a while\n" for i in range(rows))
    return path


def test_a_make_killed_mid_write_leaves_a_part_the_next_run_sweeps(work: Path) -> None:
    big_table(work / "big.csv")
    with command_group("make-batch-file", "t.json", "big.csv", "-o", "r.jsonl", cwd=work) as proc:
        writing = lambda: any(_size(p) > 0 for p in work.glob(".r.jsonl.*.part"))  # noqa: E731
        wait_while_running(proc, writing, "writing")
        kill_group(proc)  # SIGKILL: no clean-up runs
    assert parts(work) != []
    made = cli(
        "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", cwd=work, timeout=HANG_SECONDS
    )
    assert made.returncode == 0, made.stderr
    assert parts(work) == []


def test_ctrl_c_while_rendering_says_the_same(work: Path) -> None:
    big_table(work / "big.csv")
    previous = work / "r.jsonl"
    previous.write_text("earlier output\n", encoding="utf-8")
    with command_group("make-batch-file", "t.json", "big.csv", "-o", "r.jsonl", cwd=work) as proc:
        # No progress bar on a pipe: rendering has begun once the first output part is on disk.
        wait_while_running(proc, lambda: bool(parts(work)), "rendering")
        # Frozen, whatever the load, while a part is still on disk: the files are not all
        # written, so the Ctrl-C (pending until the group goes on) lands while they are.
        os.killpg(proc.pid, signal.SIGSTOP)
        assert parts(work), "make wrote its files before it could be frozen"
        ctrl_c(proc)
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 130, err[-500:]
    assert "Traceback" not in err and "error: interrupted" in err
    resume = "openai-batch make-batch-file t.json big.csv -o r.jsonl"
    assert f"run the same command again: {resume}" in err
    assert previous.read_text(encoding="utf-8") == "earlier output\n"
    assert parts(work) == []


# Ctrl-C at every step of writing the request files: each run ends with the same clean state.

_WRITE_STEPS = {  # where temp files come and go (not the steps writing lines into them)
    "files.py": {"temp_path_for", "commit", "discard", "_release"},
    "shards.py": {"_roll", "finish", "abort"},
    "fastpath.py": {"_open", "finish", "abort"},
}


def test_the_traced_write_steps_are_where_the_code_is() -> None:
    """A step moved to another module (ShardWriter left make.py for shards.py) silently
    dropped out of the Ctrl-C-at-every-line test below: each one listed must exist."""
    import ast

    import openai_batch

    package = Path(openai_batch.__file__).parent
    for module, steps in _WRITE_STEPS.items():
        (found,) = [
            p for p in (package / "local", package / "requestfile") if (p / module).is_file()
        ]
        tree = ast.parse((found / module).read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert steps <= defined, (module, sorted(steps - defined))


def _is_write_step(code: types.CodeType) -> bool:
    """The code that makes, commits and discards the request files' temp files."""
    folder, _, module = code.co_filename.replace(os.sep, "/").rpartition("/")
    if not folder.endswith(("/local", "/requestfile")):
        return False
    return code.co_name in _WRITE_STEPS.get(module, ())


def _interrupt_at(step: int | None) -> tuple[Callable[..., Any], list[int]]:
    """A tracer sending SIGINT at the `step`-th line of the write steps (None: never)."""
    seen = [0]

    def local(frame: types.FrameType, event: str, arg: object) -> Any:
        if event == "line":
            seen[0] += 1
            if seen[0] == step:
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C does, at exactly this point
        return local

    def tracer(frame: types.FrameType, event: str, arg: object) -> Any:
        return local if _is_write_step(frame.f_code) else None

    return tracer, seen


def _make_traced(capsys: Capsys, work: Path, step: int | None, *args: str) -> tuple[int, str, int]:
    tracer, seen = _interrupt_at(step)
    sys.settrace(tracer)
    try:
        code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", *args)
    finally:
        sys.settrace(None)
    return code, err, seen[0]


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("r")}


@pytest.mark.parametrize("template", [TEMPLATE, TEMPLATE.replace("<<q>>", "<<q | upper>>")])
def test_ctrl_c_at_every_step_of_writing_leaves_no_part(
    capsys: Capsys, work: Path, template: str
) -> None:
    """SIGINT between creating a temp file and registering it for cleanup left a `.part` behind
    (seen only under load). Here Ctrl-C lands at every line of the writing code in turn: the
    run says `interrupted`, leaves no temp file and no open lock, and the earlier output is
    untouched unless every new file had landed."""
    from openai_batch.local import files

    (work / "t.json").write_text(template, encoding="utf-8")
    (work / "d.csv").write_text("q\n" + "".join(f"row {i}\n" for i in range(5)), "utf-8")
    split = ("--max-requests", "3")  # two files, so a partial set would show
    (work / "r.jsonl").write_text("earlier output\n", encoding="utf-8")
    earlier = _outputs(work)
    code, err, steps = _make_traced(capsys, work, None, *split)
    assert code == 0, err
    complete = _outputs(work)
    assert len(complete) == 3 and steps > 40, steps  # the two and the earlier r.jsonl
    for name in set(complete) - set(earlier):
        (work / name).unlink()
    for step in range(1, steps + 1):
        code, err, _ = _make_traced(capsys, work, step, *split)
        assert code == 130 and "error: interrupted" in err, (step, err[-300:])
        assert "Traceback" not in err
        assert parts(work) == [], step
        assert files._held == {}, step
        now = _outputs(work)
        assert now in (earlier, complete), (step, sorted(now))
        for name in set(now) - set(earlier):  # every file had landed: start again
            (work / name).unlink()


def test_ctrl_c_inside_a_deferred_step_comes_when_the_step_ends() -> None:
    """The guard the steps above rely on: Ctrl-C is held, not lost, and comes exactly once."""
    from openai_batch.local import interrupts

    done = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        with interrupts.deferred():  # nested: held until the outermost step ends
            signal.raise_signal(signal.SIGINT)
            done.append("inner")
        done.append("outer")
    assert done == ["inner", "outer"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts.deferred():  # nothing pending any more: a quiet step stays quiet
        done.append("quiet")
    with pytest.raises(KeyboardInterrupt):  # outside a step, Ctrl-C is immediate again
        signal.raise_signal(signal.SIGINT)
