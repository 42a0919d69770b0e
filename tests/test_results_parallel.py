"""A big join's result files are read by two processes (results/parallelread.py): the index must
be exactly the one reading them one by one makes (records, counts, key order, duplicates,
conflicts, every answer and raw line, the responses file), and a file that cannot be read is the
same error either way, with no process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openai_batch.results import parallelread
from openai_batch.results.index import ResultIndex
from openai_batch.results.merge import write_responses


def chat(custom_id: str, content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    body = {"object": "chat.completion", "choices": [choice], "usage": usage}
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}


def failed(custom_id: str) -> dict[str, Any]:
    body = {"error": {"message": "boom", "type": "server_error", "code": None}}
    return {"custom_id": custom_id, "response": {"status_code": 500, "body": body}, "error": None}


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(x if isinstance(x, str) else json.dumps(x) + "\n" for x in lines),
                    encoding="utf-8")  # fmt: skip
    return path


def result_files(folder: Path) -> list[tuple[Path, int, str]]:
    """Two request files' batches and a retry: answers (some JSON), errors, a retry that
    succeeds, a repeated id, odd lines, and one id in both groups (a conflict)."""
    answer = [chat(f"id_{i}", json.dumps({f"k{i % 5}": i, "same": 1}) if i % 3 else f"text {i}")
              for i in range(0, 300)]  # fmt: skip
    shapeless = {"custom_id": "id_299", "response": {"status_code": 200, "body": {"choices": "x"}}}
    odd = ["not json\n", '{"no": "id"}\n', shapeless]
    retried = [chat(f"id_{i}", f"retried {i}") for i in range(150, 160)]
    return [
        (write(folder / "out_a.jsonl", [*answer[:150], chat("id_7", "again")]), 0, "a"),
        (write(folder / "err_a.jsonl", [failed(f"id_{i}") for i in range(150, 170)]), 0, "a"),
        (write(folder / "out_b.jsonl", [*answer[170:], *odd, chat("id_3", "from b")]), 1, "b"),
        (write(folder / "retry_a.jsonl", retried), 2, "a"),
    ]


def everything(index: ResultIndex, folder: Path, name: str) -> dict[str, Any]:
    ids = [f"id_{i}" for i in range(305)]
    write_responses(index, folder / name, ids)
    conflicts = {k: (c.count, c.examples) for k, c in index.conflicts.items()}
    return {
        "counts": (index.unreadable, index.malformed, index.json_answers, index.duplicate_count),
        "keys": list(index.json_key_counts.items()),
        "duplicates": index.duplicates, "conflicts": conflicts, "len": len(index),
        "results": [index.result(i).cells() for i in ids],
        "raw": [index.raw_line(i) if i in index else None for i in ids],
        "responses": (folder / name).read_bytes(),
    }  # fmt: skip


def counting_forks() -> list[int]:
    """In this (fresh) process: every join big enough for two processes; the forks counted."""
    parallelread.PARALLEL_MIN_BYTES = 0
    made: list[int] = []
    real_fork = os.fork

    def counted() -> int:
        pid = real_fork()
        if pid:
            made.append(pid)
        return pid

    os.fork = counted  # type: ignore[assignment]
    return made


def no_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


# The scenarios run in a fresh process: the fork is taken only where no other thread runs, and
# a pytest process may still have one from another test (a fake server's).
RUNNER = (
    "import sys; sys.path.insert(0, sys.argv[1]); import test_results_parallel as t; "
    "getattr(t, sys.argv[2])(*sys.argv[3:])"
)


def in_fresh_process(scenario: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(Path(__file__).parent), scenario, *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def one_by_one(files: list[tuple[Path, int, str]], folder: Path) -> dict[str, Any]:
    """everything() of an index given the files one add_file at a time (no fork)."""
    with ResultIndex() as one:
        for path, rank, group in files:
            one.add_file(path, rank, group)
        return everything(one, folder, "one.jsonl")


def same_index(folder: str) -> None:
    forks = counting_forks()
    files = result_files(Path(folder))
    expected = one_by_one(files, Path(folder))
    assert forks == []
    assert parallelread.fork_is_safe()
    open_files = len(os.listdir("/proc/self/fd"))
    with ResultIndex() as two:
        assert two.add_files(files) == sum(1 for p, _, _ in files for _ in p.open("rb"))
        assert len(forks) == 1
        assert everything(two, Path(folder), "two.jsonl") == expected
    assert len(os.listdir("/proc/self/fd")) == open_files  # the child's spill closed with it
    assert expected["conflicts"] and expected["duplicates"] and expected["counts"][:2] == (2, 1)
    assert no_children()


def spill_continues(folder: str) -> None:
    forks = counting_forks()
    files = result_files(Path(folder))
    expected = one_by_one(files, Path(folder))
    with ResultIndex() as two:
        two.add_files(files[:3])
        two.add_file(*files[3])
        assert everything(two, Path(folder), "two.jsonl") == expected
    assert len(forks) == 1


def same_error(folder: str, whose: str) -> None:
    """The largest file is read here, the next by the child, and so on by size (the two
    files of equal size: the missing one is read here)."""
    forks = counting_forks()
    big = write(Path(folder) / "big.jsonl", [chat(f"a{i:03d}", "x") for i in range(40)])
    same = write(Path(folder) / "same.jsonl", [chat(f"b{i:03d}", "x") for i in range(40)])
    files = [(big, 0, ""), (Path(folder) / "gone.jsonl", 0, "")]
    if whose == "parent":
        files.insert(1, (same, 0, ""))
    with pytest.raises(FileNotFoundError) as one, ResultIndex() as index:
        for path, rank, group in files:
            index.add_file(path, rank, group)
    with pytest.raises(FileNotFoundError) as two, ResultIndex() as index:
        index.add_files(files)
    assert len(forks) == 1
    assert str(two.value) == str(one.value)
    assert no_children()


def test_two_processes_index_exactly_what_one_does(tmp_path: Path) -> None:
    in_fresh_process("same_index", str(tmp_path))


def test_files_added_after_a_parallel_read_continue_the_spill(tmp_path: Path) -> None:
    in_fresh_process("spill_continues", str(tmp_path))


def test_ctrl_c_while_waiting_for_the_child_ends_the_child(tmp_path: Path) -> None:
    in_fresh_process("interrupted", str(tmp_path))


@pytest.mark.parametrize("whose", ["child", "parent"])
def test_a_file_that_cannot_be_read_is_the_same_error(tmp_path: Path, whose: str) -> None:
    in_fresh_process("same_error", str(tmp_path), whose)


def interrupted(folder: str) -> None:
    """Ctrl-C while this process waits for the child's reads: the child is ended and waited
    for (it went on reading, then lingered until this process ended)."""
    import signal
    import time

    counting_forks()
    parent = os.getpid()
    real_read = parallelread.read_file

    def slow_in_the_child(*args: Any) -> Any:
        if os.getpid() != parent:
            time.sleep(60)
        return real_read(*args)

    parallelread.read_file = slow_in_the_child  # type: ignore[assignment]
    files = [(write(Path(folder) / f"{n}.jsonl", [chat(f"{n}{i}", "x") for i in range(20)]), 0, "")
             for n in "ab"]  # fmt: skip

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), ResultIndex() as index:
        index.add_files(files)
    assert time.monotonic() - started < 30
    assert no_children()


def test_the_childs_error_keeps_its_class_and_commands() -> None:
    """An error the child sends crosses the pipe as itself when it pickles (it was flattened
    into a plain BatchError with its hint as text)."""
    import pickle

    from openai_batch.errors import ApiError, Command

    sent = ApiError("gone", hint=("see `", Command("list-batches", "a b"), "`"))
    back = parallelread.restored(pickle.loads(pickle.dumps(parallelread.portable(sent, "reading"))))
    assert type(back) is ApiError and back.commands == sent.commands and str(back) == str(sent)
