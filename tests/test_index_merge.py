"""The index's merge (ResultIndex._built, index.merge_order) against the rules written out
plainly: per custom_id a success beats an error, then the later batch, then the later line; a
custom_id answered twice by one batch of one group is a duplicate; one custom_id in two groups
is a conflict. Random files of results with repeats and retries, and, since no two real
custom_ids share the high half of their 128-bit hash, the sort itself on records whose high
halves are made to collide."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.results.filereader import RECORD
from openai_batch.results.index import ResultIndex, id_hash, merge_order

Line = tuple[str, bool, str]  # custom_id, success, content


def line(custom_id: str, ok: bool, content: str) -> str:
    if ok:
        message = {"role": "assistant", "content": content, "refusal": None}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body: dict[str, Any] = {"object": "chat.completion", "choices": [choice],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}  # fmt: skip
        status = 200
    else:
        body = {"error": {"message": content, "type": "server_error", "code": None}}
        status = 500
    response = {"status_code": status, "body": body}
    return json.dumps({"custom_id": custom_id, "response": response, "error": None}) + "\n"


def expected(files: list[tuple[list[Line], int, str]], paths: list[Path]) -> dict[str, Any]:
    """What the merge must find, by the rules, one custom_id at a time."""
    entries: dict[str, list[tuple[int, int, int, int, str, int]]] = {}
    group_names: list[str] = []
    added = 0
    for source, (lines, rank, group) in enumerate(files):
        if group not in group_names:
            group_names.append(group)
        for custom_id, ok, content in lines:
            entry = (int(ok), rank, added, group_names.index(group), content, source)
            entries.setdefault(custom_id, []).append(entry)
            added += 1
    winners = {cid: max(found)[4] for cid, found in entries.items()}
    duplicates: dict[str, tuple[int, Path]] = {}
    duplicate_count = 0
    conflicts: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for cid in sorted(entries, key=id_hash):
        found = sorted(entries[cid], key=lambda e: (e[3], e[1], e[2]))  # group, rank, line
        for first, second in itertools.pairwise(found):
            if (first[3], first[1]) == (second[3], second[1]):
                duplicate_count += 1
                if cid in duplicates:
                    duplicates[cid] = (duplicates[cid][0] + 1, duplicates[cid][1])
                elif len(duplicates) < 3:
                    duplicates[cid] = (2, paths[second[5]])
        numbers = {e[3] for e in found}
        if len(numbers) > 1:
            key = (group_names[min(numbers)], group_names[max(numbers)])
            count, examples = conflicts.get(key, (0, []))
            conflicts[key] = (count + 1, [*examples, cid] if len(examples) < 3 else examples)
    return {"winners": winners, "duplicate_count": duplicate_count, "duplicates": duplicates,
            "conflicts": conflicts}  # fmt: skip


def merged(index: ResultIndex, ids: list[str]) -> dict[str, Any]:
    winners = {}
    for cid in ids:
        result = index.result(cid)
        winners[cid] = result.content if result.status == "ok" else result.error.split(": ", 1)[1]
    conflicts = {k: (c.count, c.examples) for k, c in index.conflicts.items()}
    return {"winners": winners, "duplicate_count": index.duplicate_count,
            "duplicates": index.duplicates, "conflicts": conflicts}  # fmt: skip


def a_file(draw: Any, ids: list[str], n: int) -> list[Line]:
    chosen = draw(st.lists(st.sampled_from(ids), max_size=8))
    return [(cid, draw(st.booleans()), f"f{n} l{i}") for i, cid in enumerate(chosen)]


@st.composite
def result_sets(draw: Any) -> list[tuple[list[Line], int, str]]:
    """Up to 5 files over a few custom_ids: ranks may repeat (two files of one batch) and
    groups may overlap (conflicts) or not."""
    ids = [f"id_{i}" for i in range(draw(st.integers(1, 6)))]
    files = []
    for n in range(draw(st.integers(1, 5))):
        rank = draw(st.integers(0, 3))
        files.append((a_file(draw, ids, n), rank, draw(st.sampled_from(["a", "b", "c"]))))
    return files


Files = list[tuple[list[Line], int, str]]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=result_sets())
def test_the_merge_follows_the_rules(tmp_path: Path, files: Files) -> None:
    paths = []
    for n, (lines, _rank, _group) in enumerate(files):
        path = tmp_path / f"file{n}.jsonl"
        path.write_text("".join(line(*entry) for entry in lines), encoding="utf-8")
        paths.append(path)
    ids = sorted({cid for lines, _, _ in files for cid, _, _ in lines})
    with ResultIndex() as index:
        index.add_files(
            [(path, rank, group) for path, (_, rank, group) in zip(paths, files, strict=True)]
        )
        assert merged(index, ids) == expected(files, paths)
        assert len(index) == len(ids)
        assert sorted(index.custom_ids()) == ids


def test_a_join_without_repeats_keeps_every_result(tmp_path: Path) -> None:
    """The common case (no custom_id twice): every line is a winner, nothing is reported."""
    path = tmp_path / "out.jsonl"
    lines = [line(f"id_{i}", i % 7 > 0, f"c{i}") for i in range(500)]
    path.write_text("".join(lines), encoding="utf-8")
    with ResultIndex() as index:
        index.add_file(path, 0)
        assert len(index) == 500 and index.counts() == {"ok": 428, "error": 72}
        assert index.duplicate_count == 0 and not index.duplicates and not index.conflicts
        assert [index.result(f"id_{i}").content for i in (1, 499)] == ["c1", "c499"]


@st.composite
def colliding_records(draw: Any) -> Any:
    """Records whose high halves come from a tiny set: ties on `hi` with different `lo`."""
    size = draw(st.integers(1, 40))
    records = np.zeros(size, dtype=RECORD)
    for name, top in (("hi", 3), ("lo", 3), ("ok", 1), ("rank", 2), ("group", 1)):
        records[name] = draw(st.lists(st.integers(0, top), min_size=size, max_size=size))
    records["hi"] *= np.uint64(1 << 62)  # large values, as hashes are
    records["offset"] = np.arange(size)  # which record is which
    return records


@settings(max_examples=200, deadline=None)
@given(records=colliding_records())
def test_the_merge_order_is_the_full_sort_where_high_halves_collide(records: Any) -> None:
    order, his = merge_order(records)
    full = np.lexsort((records["rank"], records["ok"], records["lo"], records["hi"]))
    assert order.tolist() == full.tolist()
    assert his.tolist() == records["hi"][full].tolist() and his.flags.c_contiguous
