"""The answers spilled as Arrow blobs (results/answerstore.py) come back as they were: the table
the join writes from them is, in every format, what the per-row writer writes of each line's
row_result; blobs stay small with long answers; reading is bounded and blob by blob; and an
answer read back for another custom_id (a hash collision) is an error, never a wrong row. A
block's answers taken from many blobs are each line's own, in the order asked (random files cut
into blobs of random size, asked in a random order with repeats and ids without a result)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openai_batch.errors import BatchError
from openai_batch.results import answers, answerstore
from openai_batch.results.answerstore import python_rows
from openai_batch.results.filereader import FileJob, read_file
from openai_batch.results.join import (
    TOKEN_COLUMNS,
    _named,
    json_columns,
    result_column_names,
    write_table,
)
from openai_batch.results.merge import ResultIndex
from openai_batch.results.tablewriter import TableTarget, TableWriter

IDS = ["id_0", "id_1", "id_2", "id_10", 'id_,"x', "id_\ud800"]
CONTENT = st.sampled_from(
    ["plain", "a, \"quoted\"\nline", "=1+1", "-2", "bad \ud800 here", '{"k": 1, "j": "\\ud800"}',
     '{"k": [1, 2], "m": null}', "", "é😀", "x" * 3000]
)  # fmt: skip
USAGE = st.sampled_from(
    [None, {"prompt_tokens": 3, "completion_tokens": 4}, {"prompt_tokens": 2**64 + 1},
     {"input_tokens": -3, "output_tokens": 0}, {"prompt_tokens": "7"}]
)  # fmt: skip


def _chat(content: str | None, usage: Any, refusal: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    body: dict[str, Any] = {"object": "chat.completion", "choices": [choice]}
    if usage is not None:
        body["usage"] = usage
    return {"status_code": 200, "body": body}


# orjson reads integers beyond 64 bits as floats; a line it refuses (a lone surrogate) is read
# by the json module, whose integers are exact: such a token count reaches the table.
BIG_USAGE = {"prompt_tokens": 2**64 + 1, "completion_tokens": 2}
BIG_TOKENS = {"custom_id": "id_0", "error": None, "response": _chat("\ud800 x", BIG_USAGE)}


@st.composite
def lines(draw: Any) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(IDS), unique=True, max_size=len(IDS)))
    made = []
    for custom_id in ids:
        kind = draw(st.sampled_from(["chat", "chat", "refusal", "error", "malformed"]))
        line: dict[str, Any] = {"custom_id": custom_id, "error": None}
        if kind == "chat":
            line["response"] = _chat(draw(CONTENT), draw(USAGE))
        elif kind == "refusal":
            line["response"] = _chat(None, draw(USAGE), refusal=draw(CONTENT))
        elif kind == "error":
            line["response"] = {
                "status_code": 500,
                "body": {"error": {"code": "x", "message": draw(CONTENT)}},
            }
        else:
            line["response"] = {
                "status_code": 200,
                "body": {"object": "chat.completion", "choices": "?"},
            }
        made.append(line)
    return made


def _expected(
    index: ResultIndex, target: TableTarget, raw: list[bytes], order: list[str] = IDS
) -> None:
    """The table as the per-row writer writes each line's row_result, in `order`."""
    plan = json_columns(index.json_key_counts, index.json_answers, None)
    columns = result_column_names((), plan.keys)
    types = _named(dict.fromkeys(TOKEN_COLUMNS, "int"), columns, 0, plan.keys)
    by_id = {answers.parse_line(line)["custom_id"]: answers.row_result(line) for line in raw}
    with TableWriter(target, columns, types) as writer:
        for custom_id in order:
            result = by_id.get(custom_id, answers.MISSING)
            fields = result.fields or {}
            keys = [answers.cell_text(fields[k]) if k in fields else "" for k in plan.keys]
            writer.write([custom_id, *result.cells(), *keys])


def _content(path: Path, kind: str) -> Any:
    if kind == "parquet":
        table = pq.read_table(path)
        return table.schema, table.to_pylist()
    if kind == "xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        return [[cell.value for cell in row] for row in book.active.iter_rows()]
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet", "xlsx"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made=lines())
@example(made=[BIG_TOKENS, {**BIG_TOKENS, "custom_id": "id_1", "response": _chat("\ud800", None)}])
def test_the_table_is_what_the_per_row_writer_writes_of_each_line(
    kind: str, made: list[dict[str, Any]]
) -> None:
    raw = [json.dumps(line).encode("utf-8", "surrogatepass") + b"\n" for line in made]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.jsonl"
        out.write_bytes(b"".join(raw))
        got, want = Path(folder) / f"got.{kind}", Path(folder) / f"want.{kind}"
        with ResultIndex() as index:
            index.add_file(out, 0)
            write_table(index, TableTarget(got, kind), order=IDS)
            _expected(index, TableTarget(want, kind), raw)
        assert _content(got, kind) == _content(want, kind)


def _long_answers(path: Path, count: int, size: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            line = {"custom_id": f"id_{i}", "response": _chat(f"{i}:" + "y" * size, None)}
            fh.write(json.dumps(line) + "\n")


def test_long_answers_make_small_blobs(tmp_path: Path) -> None:
    """1 MB answers: a blob holds a few of them, never a part's 65,536 rows."""
    out = tmp_path / "o.jsonl"
    _long_answers(out, 20, 1 << 20)
    with open(tmp_path / "spill", "w+b") as spill:
        read = read_file(FileJob(out, 0, 0, 0), spill, 0)
    assert len(read.blobs) >= 20 * (1 << 20) // answerstore.BLOB_CHARS
    assert max(length for _, length, _ in read.blobs) < answerstore.BLOB_CHARS + (2 << 20)
    assert sum(len(part) for part in read.parts) == 20


def test_reading_is_blob_by_blob_and_the_cache_bounded(tmp_path: Path, monkeypatch) -> None:
    """Walking every custom_id reads each blob once; a table in request order keeps at most
    CACHE_BYTES of blobs (one at least)."""
    monkeypatch.setattr(answerstore, "CACHE_BYTES", 3 << 20)
    out = tmp_path / "o.jsonl"
    _long_answers(out, 12, 1 << 20)
    with ResultIndex() as index:
        index.add_file(out, 0)
        store = index._answers
        blobs = len(store._offsets)
        assert sorted(index.custom_ids()) == sorted(f"id_{i}" for i in range(12))
        assert store.reads == blobs
        write_table(
            index, TableTarget(tmp_path / "t.csv", "csv"), order=[f"id_{i}" for i in range(12)]
        )
        assert store._cached <= 3 << 20 or len(store._cache) == 1
    rows = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [row.split(",")[2][:4] for row in rows] == [f"{i}:yy"[:4] for i in range(12)]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_an_answer_of_another_custom_id_is_an_error_never_a_wrong_row(
    tmp_path: Path, kind: str
) -> None:
    """Two custom_ids with one index hash are indistinguishable to the index: the answer read
    back is checked against the custom_id asked for. Here the records of two results are made
    to point at each other's answers, as a collision would."""
    out = tmp_path / "o.jsonl"
    _long_answers(out, 3, 5)
    with ResultIndex() as index:
        index.add_file(out, 0)
        table = index._built()
        first, second = index.position("id_0"), index.position("id_1")
        table["row"][[first, second]] = table["row"][[second, first]]
        target = TableTarget(tmp_path / f"t.{kind}", kind)
        with pytest.raises(BatchError, match="share an index hash"):
            write_table(index, target, order=["id_2", "id_0", "id_1"])
        with pytest.raises(BatchError, match="share an index hash"):
            index.result("id_0")
    assert not target.path.exists()


def test_an_unreadable_spill_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    _long_answers(out, 3, 5)
    with ResultIndex() as index:
        index.add_file(out, 0)
        len(index)
        spill = index._answers.file(tmp_path)
        spill.truncate(10)
        with pytest.raises(BatchError, match="spill file cannot be read back"):
            index.result("id_1")


def test_a_taken_block_keeps_the_order_asked_and_nulls_where_absent(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    _long_answers(out, 40, 300_000)  # several blobs
    with ResultIndex() as index:
        index.add_file(out, 0)
        asked = [f"id_{i}" for i in (39, 0, 17, 5, 38)] + ["nope"]
        found = index.found(asked)
        taken = index.answers_for(found, asked)
        ids = taken.column("custom_id").to_pylist()
        assert ids == [*asked[:-1], None]
        assert len(index._answers._offsets) > 1
        assert np.array_equal(found >= 0, [True] * 5 + [False])


def test_blocks_whose_blobs_outgrow_the_cache_read_only_the_overflow_again(
    tmp_path: Path, monkeypatch
) -> None:
    """Blocks of one shard each touch all its blobs. When they outgrow the cache, the blobs
    kept are the ones the next block asks for first: a block reads the overflow again, not
    every blob (least-recently-used would drop each blob just before it is asked for)."""
    monkeypatch.setattr(answerstore, "BLOB_CHARS", 1)  # a blob per answer
    out = tmp_path / "o.jsonl"
    _long_answers(out, 12, 100_000)
    with ResultIndex() as index:
        index.add_file(out, 0)
        store = index._answers
        blob_size = max(store._lengths)
        monkeypatch.setattr(answerstore, "CACHE_BYTES", 8 * blob_size)  # 8 of the 12 blobs
        ids = [f"id_{i}" for i in range(12)]
        for block in range(4):
            before = store.reads
            taken = index.answers_for(index.found(ids), ids)
            assert taken.column("custom_id").to_pylist() == ids
            assert store.reads - before == (12 if block == 0 else 12 - 7)
        assert store._cached <= 8 * blob_size
        later = [f"id_{i}" for i in (11, 10)]  # another block of rows: the cache moves on
        index.answers_for(index.found(later), later)
        assert set(store._used) == set(store._cache)


def test_a_join_allocates_arrow_memory_with_malloc(tmp_path: Path) -> None:
    """mimalloc, pyarrow's default, kept ~40 MB more resident through a 1M-row join
    (benchmarks/bench_results.py): the join switches Arrow to the system allocator."""
    import pyarrow as pa

    out = tmp_path / "o.jsonl"
    _long_answers(out, 2, 5)
    before = pa.default_memory_pool().backend_name
    with ResultIndex() as index:
        index.add_file(out, 0)
        assert pa.default_memory_pool().backend_name == "system"
        assert index.result("id_1").content == "1:yyyyy"
    assert pa.default_memory_pool().backend_name == before  # the process's own pool again


def _spill_fds(folder: Path) -> list[int]:
    """This process's open spill files: temp files beside the downloads, already unlinked."""
    import os

    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith("(deleted)"):
            found.append(int(name))
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the spill file by /proc")
@pytest.mark.parametrize("damage", ["flip", "garbage"])
def test_a_damaged_spill_is_an_error_never_a_crash_or_a_changed_cell(tmp_path: Path, damage):
    """Arrow trusts the offsets inside the bytes it reads: a flipped bit in a blob crashed the
    process (SIGSEGV) or changed a cell silently. Each blob is checked against the XXH3 of what
    was written. Damage anywhere in the spill file, one place at a time."""
    import os

    out = tmp_path / "o.jsonl"
    _long_answers(out, 300, 40)
    ids = [f"id_{i}" for i in range(300)]
    with ResultIndex() as index:
        index.add_file(out, 0)
        (fd,) = _spill_fds(tmp_path)
        size = os.fstat(fd).st_size
    assert size > 1000
    for at in range(0, size, size // 23):
        with ResultIndex() as index:
            index.add_file(out, 0)
            (fd,) = _spill_fds(tmp_path)
            if damage == "flip":
                os.pwrite(fd, bytes([os.pread(fd, 1, at)[0] ^ 0x10]), at)
            else:
                os.pwrite(fd, b"\xa5" * 64, min(at, size - 64))
            with pytest.raises(BatchError, match="spill file cannot be read back"):
                write_table(index, TableTarget(tmp_path / "t.csv", "csv"), order=iter(ids))
        assert not (tmp_path / "t.csv").exists()


# -- a block's answers from many blobs ---------------------------------------------------

POOL = [f"id_{i}" for i in range(30)] + ['id_,"x', "id_\ud800"]
ABSENT = [None, None, None, None, None, "", "", None]  # a row without an answer


@st.composite
def result_files(draw: Any) -> tuple[list[bytes], list[str], int]:
    """Result lines (shuffled, as the service returns them), the custom_ids asked (repeats
    and ids without a result among them) and the characters a blob holds."""
    ids = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=len(POOL)))
    raw = []
    for custom_id in ids:
        kind = draw(st.sampled_from(["chat", "chat", "chat", "refusal", "error"]))
        line: dict[str, Any] = {"custom_id": custom_id, "error": None}
        if kind == "error":
            error = {"code": "x", "message": draw(CONTENT)}
            line["response"] = {"status_code": 500, "body": {"error": error}}
        else:
            refusal = draw(CONTENT) if kind == "refusal" else None
            line["response"] = _chat(None if refusal else draw(CONTENT), draw(USAGE), refusal)
        raw.append(json.dumps(line).encode("utf-8", "surrogatepass") + b"\n")
    asked = draw(st.lists(st.sampled_from([*ids, "id_nope", "id_999"]), max_size=60))
    return raw, asked, draw(st.integers(1, 400))


def _index(folder: Path, raw: list[bytes], blob_chars: int) -> ResultIndex:
    out = folder / "out.jsonl"
    out.write_bytes(b"".join(raw))
    before = answerstore.BLOB_CHARS
    answerstore.BLOB_CHARS = blob_chars  # small blobs: a block touches many
    try:
        index = ResultIndex()
        index.add_file(out, 0)
        len(index)
    finally:
        answerstore.BLOB_CHARS = before
    return index


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made=result_files(), filled=st.booleans())
def test_a_block_from_many_blobs_is_each_lines_answer_in_the_order_asked(
    made: Any, filled: bool
) -> None:
    """Rows without an answer: nulls, or (`filled`, as the table takes them) the text the
    caller gives for each column, the custom_id and token counts still null."""
    raw, asked, blob_chars = made
    by_id = {answers.parse_line(line)["custom_id"]: answers.row_result(line) for line in raw}
    absent = {"status": "missing", "content": "", "refusal": "-", "error": ""}
    without = [None, "missing", "", None, "-", "", "", ""] if filled else ABSENT
    with tempfile.TemporaryDirectory() as folder, _index(Path(folder), raw, blob_chars) as index:
        taken = index.answers_for(index.found(asked), asked, absent=absent if filled else None)
        want = [
            [custom_id, *by_id[custom_id].cells()] if custom_id in by_id else without
            for custom_id in asked
        ]
        assert python_rows(taken) == want


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(made=result_files(), kind=st.sampled_from(["csv", "parquet"]))
def test_a_table_from_many_blobs_is_what_the_per_row_writer_writes(made: Any, kind: str) -> None:
    raw, asked, blob_chars = made
    order = list(dict.fromkeys([*asked, *POOL]))  # every custom_id once, in a random order
    with tempfile.TemporaryDirectory() as folder, _index(Path(folder), raw, blob_chars) as index:
        got, want = Path(folder) / f"got.{kind}", Path(folder) / f"want.{kind}"
        write_table(index, TableTarget(got, kind), order=order)
        _expected(index, TableTarget(want, kind), raw, order)
        assert _content(got, kind) == _content(want, kind)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)), st.integers(0, 65535)),
        max_size=40,
    )
)
def test_a_blocks_rows_are_read_by_blob_then_row(pairs: list[tuple[int, int]]) -> None:
    """The order blobs' rows are taken in (radix sorts of 16-bit keys where the blobs span
    fewer than 65,536, one sort of 64-bit keys where they span more): by blob, then row."""
    blobs = np.array([b for b, _ in pairs], dtype=np.int64)
    rows = np.array([r for _, r in pairs], dtype=np.int64)
    order = answerstore._by_blob_and_row(blobs, rows)
    assert sorted(order.tolist()) == list(range(len(pairs)))
    assert [pairs[n] for n in order.tolist()] == sorted(pairs)
