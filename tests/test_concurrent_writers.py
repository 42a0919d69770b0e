"""Two commands writing the same files in one folder at once (e.g. `run` twice on one job).

Each writer sweeps the temp files killed writers left (local/files.py). A new temp file exists
for a moment before its writer locks it; a sweep by the other command at that moment removed
it, and the writer then failed (`no such file or folder: writing in ...`) or could not lock it.
Seen as a rare failure of tests/test_jobs.py::test_two_processes_on_one_job_start_each_shard_once
under load. Here the other command's sweep is put exactly at that moment, every time.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import read_jsonl, run_cli

Capsys = pytest.CaptureFixture[str]
TEMPLATE = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}'
MAKE = ("make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "--max-requests", "4")
RESULTS = ["r-001.jsonl", "r-002.jsonl", "r-003.jsonl"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "d.csv").write_text("q\n" + "".join(f"row {i}\n" for i in range(10)), "utf-8")
    return tmp_path


def at_the_racy_moment(monkeypatch: pytest.MonkeyPatch, act: Callable[[Path], None]) -> list[Path]:
    """Run `act` on the first temp file this process makes, right after it is made and before
    its writer can lock it: where another command's sweep may find it. Returns what it saw."""
    real = tempfile.mkstemp
    seen: list[Path] = []

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)  # type: ignore[call-overload]
        if not seen:
            seen.append(Path(name))
            act(Path(name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return seen


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.part"))


def assert_made(folder: Path) -> None:
    assert sorted(p.name for p in folder.glob("r*.jsonl")) == RESULTS
    ids = [line["custom_id"] for name in RESULTS for line in read_jsonl(folder / name)]
    assert ids == [f"id_{i}" for i in range(10)]
    assert parts(folder) == []


def test_another_commands_sweep_right_after_a_temp_file_is_made(
    capsys: Capsys, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other command (a real process writing the same files) runs its sweep, and its whole
    write, while this one's first temp file is not locked yet: the sweep removes it."""

    def other_command(temp: Path) -> None:
        other = subprocess.run(
            [sys.executable, "-m", "openai_batch", *MAKE, "-q"],
            cwd=work, env=dict(os.environ), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 0, other.stderr
        assert not temp.exists()  # swept: the moment the race needs was reached

    seen = at_the_racy_moment(monkeypatch, other_command)
    code, _, err = run_cli(capsys, *MAKE)
    assert seen and code == 0, err
    assert_made(work)


def test_another_commands_sweep_holding_a_new_temp_file_to_remove_it(
    capsys: Capsys, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other command's sweep has just locked this one's new temp file to remove it (it
    holds the lock while it removes the file): this command makes another, and does not fail
    to lock it."""
    sweeper: list[int] = []

    def sweep_begins(temp: Path) -> None:
        fd = os.open(temp, os.O_RDONLY)  # another open file: to flock, another process
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sweeper.append(fd)

    seen = at_the_racy_moment(monkeypatch, sweep_begins)
    try:
        code, _, err = run_cli(capsys, *MAKE)
        assert seen and code == 0, err
        assert seen[0].exists()  # still the sweeper's to remove
    finally:
        seen[0].unlink(missing_ok=True)  # the sweep ends
        for fd in sweeper:
            os.close(fd)
    assert_made(work)
