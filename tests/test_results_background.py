"""A big join writes the responses file in a forked child while the table is written (issue 15):
the files are the ones the in-process path writes, and a failure on either side is one clean
error, with no file or temp file left half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, run_cli
from openai_batch.results import background

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


@pytest.fixture
def started(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys):
    """A finished batch of 40 rows (every 7th fails), its results not yet fetched."""
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f'"n{i}, ""q"""\n' for i in range(40)), "utf-8")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "-q")
    assert code == 0, err
    fake_api.shuffle_output = True
    fake_api.plan(fail_every=7)
    assert run_cli(capsys, "start-batch", "r.jsonl")[0] == 0
    return fake_api


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every join big enough for the child; the forks made are counted."""
    made: list[int] = []
    real_fork = os.fork

    def counted() -> int:
        pid = real_fork()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(background, "BACKGROUND_MIN", 0)
    monkeypatch.setattr(os, "fork", counted)
    return made


def leftovers() -> list[str]:
    return sorted(p.name for p in Path().iterdir() if p.name.endswith(".part"))


def test_the_child_writes_the_same_bytes(
    started: FakeOpenAI, capsys: Capsys, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("get-batch-results", "r.jsonl", *WAIT)
    monkeypatch.setattr(background, "BACKGROUND_MIN", 10**9)  # in-process, for reference
    code, _, err = run_cli(capsys, *args, "-o", "here.jsonl", "--csv", "here.csv")
    assert code == 4, err  # every 7th request failed
    assert forks == []
    monkeypatch.setattr(background, "BACKGROUND_MIN", 0)
    code, _, err_child = run_cli(capsys, *args, "-o", "child.jsonl", "--csv", "child.csv")
    assert code == 4, err_child
    assert len(forks) == 1
    assert Path("child.jsonl").read_bytes() == Path("here.jsonl").read_bytes()
    assert Path("child.csv").read_bytes() == Path("here.csv").read_bytes()
    assert len(Path("child.jsonl").read_bytes().splitlines()) == 40
    assert err_child.replace("child", "here") == err
    assert leftovers() == []


def test_a_failing_child_is_one_clean_error(
    started: FakeOpenAI, capsys: Capsys, forks: list[int]
) -> None:
    Path("taken").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "get-batch-results", "r.jsonl", *WAIT, "-o", "taken/r.jsonl", "--csv", "out.csv"
    )
    assert len(forks) == 1
    assert_clean_error(code, err, "taken")
    assert not Path("taken/r.jsonl").exists() and leftovers() == []


def test_a_failing_table_stops_the_child(
    started: FakeOpenAI, capsys: Capsys, forks: list[int]
) -> None:
    Path("taken").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "get-batch-results", "r.jsonl", *WAIT, "-o", "resp.jsonl", "--csv", "taken/o.csv"
    )
    assert len(forks) == 1
    assert_clean_error(code, err, "taken")
    assert leftovers() == []
    for pid in forks:  # the child was waited for: nothing is left running
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
