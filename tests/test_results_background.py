"""A big join writes the responses file in a forked child while the table is written (issue 15):
the files are the ones the in-process path writes, and a failure on either side is one clean
error, with no file or temp file left half-written. The fork happens only while no other thread
runs (the fake server's thread is one): the forking runs are a subprocess of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, run_cli
from openai_batch.results import background, parallelread
from openai_batch.results.index import ResultIndex

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


# The CLI with every join big enough for the child, each fork logged, and each child checked
# at exit to have been waited for (nothing left running).
HARNESS = """
import atexit, os, sys
from openai_batch.results import background, parallelread
background.BACKGROUND_MIN = 0
if os.environ.get("READ_IN_TWO"):  # the result files read by two processes as well
    parallelread.PARALLEL_MIN_BYTES = 0
log = open(os.environ["FORK_LOG"], "a")
real_fork = os.fork
made = []
def counted():
    pid = real_fork()
    if pid:
        made.append(pid)
        log.write(f"fork {pid}\\n"); log.flush()
    return pid
os.fork = counted
@atexit.register
def waited():
    for pid in made:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        log.write(f"not waited {pid}\\n"); log.flush()
from openai_batch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_forking(*args: str, read_in_two: bool = False) -> tuple[int, str, list[str]]:
    """`openai-batch ARGS` in a subprocess (no fake server thread in it); (code, stderr, log)."""
    log = Path("forks.log").resolve()
    log.unlink(missing_ok=True)
    env = {**os.environ, "FORK_LOG": str(log), "READ_IN_TWO": "1" if read_in_two else ""}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, *args], env=env,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    entries = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return done.returncode, done.stderr, entries


def leftovers() -> list[str]:
    return sorted(p.name for p in Path().iterdir() if p.name.endswith(".part"))


def test_the_child_writes_the_same_bytes(
    started: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("get-batch-results", "r.jsonl", *WAIT)
    monkeypatch.setattr(background, "BACKGROUND_MIN", 10**9)  # in-process, for reference
    code, _, err = run_cli(capsys, *args, "-o", "here.jsonl", "--csv", "here.csv")
    assert code == 4, err  # every 7th request failed
    code, err_child, forks = run_forking(*args, "-o", "child.jsonl", "--csv", "child.csv")
    assert code == 4, err_child
    assert len(forks) == 1 and forks[0].startswith("fork "), forks
    assert Path("child.jsonl").read_bytes() == Path("here.jsonl").read_bytes()
    assert Path("child.csv").read_bytes() == Path("here.csv").read_bytes()
    assert len(Path("child.jsonl").read_bytes().splitlines()) == 40
    assert err_child.replace("child", "here") == err
    assert leftovers() == []


def test_two_readers_and_the_child_write_the_same_bytes(
    started: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output and the error file read by two processes (results/parallelread.py), then
    the responses file written by a third: the same files as all in one process."""
    args = ("get-batch-results", "r.jsonl", *WAIT)
    monkeypatch.setattr(background, "BACKGROUND_MIN", 10**9)  # in-process, for reference
    code, _, err = run_cli(capsys, *args, "-o", "here.jsonl", "--csv", "here.csv")
    assert code == 4, err
    code, err_two, forks = run_forking(*args, "-o", "two.jsonl", "--csv", "two.csv",
                                       read_in_two=True)  # fmt: skip
    assert code == 4, err_two
    assert [e.split()[0] for e in forks] == ["fork", "fork"], forks  # and every child waited for
    assert Path("two.jsonl").read_bytes() == Path("here.jsonl").read_bytes()
    assert Path("two.csv").read_bytes() == Path("here.csv").read_bytes()
    assert err_two.replace("two", "here") == err
    assert leftovers() == []


@pytest.mark.parametrize("forked", [False, True], ids=["in-process", "forked"])
def test_a_failing_child_is_one_clean_error_and_no_table(
    started: FakeOpenAI, capsys: Capsys, forked: bool
) -> None:
    """Both paths end alike: the error, and no table that looks complete beside a missing
    responses file (the forked child fails after the table is joined)."""
    Path("taken").write_text("a file, not a folder", encoding="utf-8")
    args = ("get-batch-results", "r.jsonl", *WAIT, "-o", "taken/r.jsonl", "--csv", "out.csv")
    if forked:
        code, err, forks = run_forking(*args)
        assert [e.split()[0] for e in forks] == ["fork"]
    else:
        code, _, err = run_cli(capsys, *args)
    assert_clean_error(code, err, "taken")
    assert not Path("taken/r.jsonl").exists() and leftovers() == []
    assert not Path("out.csv").exists()


def test_a_failing_table_stops_the_child(started: FakeOpenAI) -> None:
    Path("taken").write_text("a file, not a folder", encoding="utf-8")
    code, err, forks = run_forking(
        "get-batch-results", "r.jsonl", *WAIT, "-o", "resp.jsonl", "--csv", "taken/o.csv"
    )
    assert [e.split()[0] for e in forks] == ["fork"]  # and no "not waited": nothing left running
    assert_clean_error(code, err, "taken")
    assert leftovers() == []


def test_the_childs_pass_names_the_request_files_to_retry(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """Three shards, a request of the second failing: the retry hint names that shard alone,
    found by the child's pass over the request order (the request files are not read again)."""
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f"P{i}\n" for i in range(6)), "utf-8")
    made = ("make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "--max-requests", "2", "-q")
    assert run_cli(capsys, *made)[0] == 0
    for _ in range(3):  # whichever batch holds id_2 fails it
        fake_api.plan(fail_custom_ids={"id_2"}, error_status=500)
    shards = [f"r-00{i}.jsonl" for i in (1, 2, 3)]
    assert run_cli(capsys, "start-batch", *shards, "--parallel", "1")[0] == 0
    code, err, forks = run_forking("get-batch-results", *shards, *WAIT, "--csv", "out.csv")
    assert code == 4, err
    assert [e.split()[0] for e in forks] == ["fork"], forks
    assert "utils retry-failed r-002.jsonl -o r-002-retry.jsonl" in err
    assert "r-001.jsonl -o" not in err and "r-003.jsonl -o" not in err


def test_no_fork_while_another_thread_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread alive at the fork could hold a lock the child then waits on forever: with one,
    the responses file is written in-process (the same bytes)."""
    lines = [{"custom_id": f"id_{i}", "response": {"status_code": 200, "body": {}}, "error": None}
             for i in range(3)]  # fmt: skip
    output = tmp_path / "out.jsonl"
    output.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    made: list[int] = []
    real_fork = os.fork

    def counted() -> int:
        pid = real_fork()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(background, "BACKGROUND_MIN", 0)
    monkeypatch.setattr(os, "fork", counted)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert not background.fork_is_safe()
        with ResultIndex() as index:
            index.add_file(output, 0)
            summary = background.start_responses(index, tmp_path / "r.jsonl").result()
    finally:
        stop.set()
        other.join()
    assert made == []
    assert summary is not None
    assert (tmp_path / "r.jsonl").read_bytes() == output.read_bytes()


def test_an_error_from_the_child_arrives_whole() -> None:
    """The child's error crosses the pipe with its class, exit code and suggested commands as
    data (they were flattened into a plain BatchError's hint text); one that cannot be pickled
    as itself still arrives with its whole message."""
    import pickle

    from openai_batch.errors import ApiError, Command, ResultsConflict

    sent = ApiError("gone", hint=("check the id with `", Command("list-batches", "a b"), "`"))
    back = background._loaded(pickle.dumps(parallelread.portable(sent, "writing")))
    assert type(back) is ApiError and back.exit_code == 3
    assert back.commands == sent.commands and str(back) == str(sent)
    conflict = ResultsConflict("two files answer id_1", [("r 1.jsonl", "a.jsonl")], False)
    back = background._loaded(pickle.dumps(parallelread.portable(conflict, "writing")))
    assert str(back) == str(conflict) and back.commands == conflict.commands
    assert back.exit_code == conflict.exit_code
