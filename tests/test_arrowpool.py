"""Arrow's memory pool with several result indexes open at once (results/arrowpool.py): the
system allocator while any of them is open, the process's own pool again after the last closes,
whatever order they close in and on whichever thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from openai_batch.results.answerstore import AnswerStore
from openai_batch.results.merge import ResultIndex


@pytest.fixture
def own_pool() -> Iterator[str]:
    """A library user's own (non-system) pool as Arrow's default; the default before, after."""
    before = pa.default_memory_pool()
    for make in (pa.jemalloc_memory_pool, pa.mimalloc_memory_pool):
        try:
            pool = make()
        except NotImplementedError:
            continue
        pa.set_memory_pool(pool)
        yield pool.backend_name
        pa.set_memory_pool(before)
        return
    pytest.skip("this pyarrow has no allocator but the system's")


def _answers(path: Path, count: int) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            body = {"choices": [{"message": {"content": f"a{i}"}, "finish_reason": "stop"}]}
            line = {"custom_id": f"id_{i}", "response": {"status_code": 200, "body": body}}
            fh.write(json.dumps(line) + "\n")
    return path


def test_two_indexes_open_at_once_keep_the_system_pool_until_the_last_closes(
    tmp_path: Path, own_pool: str
) -> None:
    first, second = ResultIndex(), ResultIndex()
    first.add_file(_answers(tmp_path / "a.jsonl", 3), 0)
    second.add_file(_answers(tmp_path / "b.jsonl", 3), 0)
    assert pa.default_memory_pool().backend_name == "system"
    first.close()
    first.close()  # closing twice lets go once
    assert pa.default_memory_pool().backend_name == "system"  # the second still reads
    assert second.result("id_2").content == "a2"
    second.close()
    assert pa.default_memory_pool().backend_name == own_pool  # exactly the user's, not system
    with ResultIndex() as third:  # and again, from the user's pool
        third.add_file(_answers(tmp_path / "c.jsonl", 2), 0)
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == own_pool


def test_indexes_opened_and_closed_on_many_threads_leave_the_users_pool(
    tmp_path: Path, own_pool: str
) -> None:
    held = AnswerStore()
    held.file(tmp_path)
    start = threading.Barrier(4)
    seen: list[str] = []

    def churn() -> None:
        start.wait()
        for _ in range(200):
            store = AnswerStore()
            store.file(tmp_path)
            seen.append(pa.default_memory_pool().backend_name)
            store.close()

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(seen) == {"system"}
    assert pa.default_memory_pool().backend_name == "system"  # `held` is still open
    held.close()
    assert pa.default_memory_pool().backend_name == own_pool
