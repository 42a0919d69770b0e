"""Result lines read back by offset for the responses file (results/sources.py): files asked for
scattered are read whole once and cut in memory, within a budget; others one `pread` per run."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.errors import BatchError
from openai_batch.results.sources import WHOLE_MAX, SourceFiles

Line = tuple[int, int, int]  # source, offset, length


def write_files(folder: Path, contents: list[list[bytes]], last_bare: list[bool]) -> list[Line]:
    """Each file's lines joined by line feeds (its last without one where `last_bare`); the
    (source, offset, length) of every line, as the index records them."""
    where: list[Line] = []
    for source, (lines, bare) in enumerate(zip(contents, last_bare, strict=True)):
        data = b"".join(line + b"\n" for line in lines)
        if bare and lines:
            data = data[:-1]
        offset = 0
        for line in lines:
            length = min(len(line) + 1, len(data) - offset)
            where.append((source, offset, length))
            offset += length
        (folder / f"f{source}.jsonl").write_bytes(data)
    return where


def pieces(files: SourceFiles, asked: list[Line], block: int) -> Iterator[bytes]:
    """The lines asked for, a block at a time (as write_responses asks), checking the bytes
    held whole after every piece."""
    for at in range(0, len(asked), block):
        part = np.array(asked[at : at + block], dtype=np.int64).reshape(-1, 3)
        for piece in files.lines(part[:, 0].astype(np.uint16), part[:, 1].astype(np.uint64),
                                 part[:, 2].astype(np.uint32)):  # fmt: skip
            assert files.held_bytes <= files.whole_max
            yield piece


def read_back(files: SourceFiles, asked: list[Line], block: int) -> bytes:
    return b"".join(pieces(files, asked, block))


def expected(folder: Path, asked: list[Line]) -> bytes:
    data = [p.read_bytes() for p in sorted(folder.glob("f*.jsonl"), key=lambda p: int(p.stem[1:]))]
    return b"".join(data[s][o : o + n].rstrip(b"\n") + b"\n" for s, o, n in asked)


def open_files(folder: Path, count: int, whole_max: int) -> SourceFiles:
    return SourceFiles([folder / f"f{n}.jsonl" for n in range(count)], whole_max)


line_bytes = st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\n", b"x"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contents=st.lists(st.lists(line_bytes, min_size=1, max_size=40), min_size=1, max_size=4),
    bare=st.lists(st.booleans(), min_size=4, max_size=4),
    whole_max=st.sampled_from([0, 200, 3_000, 20_000, WHOLE_MAX]),
    block=st.integers(1, 50),
    seed=st.integers(0, 2**32),
    repeats=st.booleans(),
)
def test_every_line_comes_back_byte_for_byte_whatever_the_budget(
    tmp_path_factory: Any, contents: Any, bare: Any, whole_max: int, block: int, seed: int,
    repeats: bool,
) -> None:  # fmt: skip
    folder = Path(tmp_path_factory.mktemp("sources"))
    where = write_files(folder, contents, bare[: len(contents)])
    rng = random.Random(seed)
    asked = [rng.choice(where) for _ in where] if repeats else rng.sample(where, len(where))
    asked.sort(key=lambda line: (line[0] + rng.random()) if rng.random() < 0.5 else line[0])
    files = open_files(folder, len(contents), whole_max)
    try:
        assert read_back(files, asked, block) == expected(folder, asked)
    finally:
        files.close()
    assert files.held_bytes == 0


def shuffled_files(folder: Path, count: int, lines: int, width: int) -> list[list[Line]]:
    """`count` files of `lines` lines of `width` bytes; each file's lines, shuffled."""
    contents = [[b"%d:%d:" % (f, i) + b"x" * width for i in range(lines)] for f in range(count)]
    where = write_files(folder, contents, [False] * count)
    rng = random.Random(7)
    per_file = [[w for w in where if w[0] == f] for f in range(count)]
    for lines_of in per_file:
        rng.shuffle(lines_of)
    return per_file


def test_files_asked_one_after_another_are_held_within_the_budget(tmp_path: Path) -> None:
    """Shards in request order: a file no run to come asks for gives way; one asked for again
    after that is read by run (never read whole twice), and what is held stays in budget."""
    per_file = shuffled_files(tmp_path, 4, 200, 500)
    size = (tmp_path / "f0.jsonl").stat().st_size
    asked = per_file[0] + per_file[1] + per_file[2] + per_file[0][:50] + per_file[3]
    files = open_files(tmp_path, 4, 2 * size)
    try:
        assert read_back(files, asked, 64) == expected(tmp_path, asked)
        assert 0 < files.held_bytes <= 2 * size
    finally:
        files.close()


def test_the_budget_bounds_memory_however_big_the_shuffled_files(tmp_path: Path) -> None:
    """Held whole or not, memory holds the files held (at most whole_max) and about two pieces."""
    per_file = shuffled_files(tmp_path, 3, 3_000, 1_000)  # 3 MB each
    asked = [line for lines in per_file for line in lines]
    for whole_max in (2_000_000, 4_000_000, 7_000_000):  # none, one or two of them held
        files = open_files(tmp_path, 3, whole_max)
        digest = hashlib.sha256()
        tracemalloc.start()
        try:
            for piece in pieces(files, asked, 4096):
                digest.update(piece)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            files.close()
        assert digest.digest() == hashlib.sha256(expected(tmp_path, asked)).digest()
        assert peak < whole_max + 3_500_000, (whole_max, peak)  # + a piece being made


@pytest.mark.parametrize("whole_max", [0, WHOLE_MAX], ids=["by run", "whole"])
def test_a_file_cut_short_is_named_as_changed(tmp_path: Path, whole_max: int) -> None:
    where = write_files(tmp_path, [[b'{"a": %d}' % i for i in range(9)]], [False])
    (tmp_path / "f0.jsonl").write_bytes((tmp_path / "f0.jsonl").read_bytes()[:-5])
    files = open_files(tmp_path, 1, whole_max)
    with pytest.raises(BatchError, match=r"f0\.jsonl changed while its results were being read"):
        read_back(files, where[::-1], 4)
    files.close()


@pytest.mark.parametrize("whole_max", [0, WHOLE_MAX], ids=["by run", "whole"])
def test_a_last_line_without_a_line_feed_gets_one_until_the_file_grows(
    tmp_path: Path, whole_max: int
) -> None:
    where = write_files(tmp_path, [[b'{"a": %d}' % i for i in range(9)]], [True])
    asked = where[::-1]
    files = open_files(tmp_path, 1, whole_max)
    try:
        assert read_back(files, asked, 4) == expected(tmp_path, asked)
        assert read_back(files, asked, 4).endswith(b'{"a": 0}\n')
        with (tmp_path / "f0.jsonl").open("ab") as fh:  # glued onto the last line
            fh.write(b', "b": 1}\n')
        with pytest.raises(BatchError, match="changed while its results were being read"):
            read_back(files, asked, 4)
    finally:
        files.close()


def test_a_file_held_whole_that_grows_meanwhile_is_named_as_changed(tmp_path: Path) -> None:
    """Held from the first block on; appended to before the second: its copy is not the file."""
    where = write_files(tmp_path, [[b'{"a": %d}' % i for i in range(9)]], [False])
    files = open_files(tmp_path, 1, WHOLE_MAX)
    try:
        assert read_back(files, where[:4], 4) == expected(tmp_path, where[:4])
        assert files.held_bytes == (tmp_path / "f0.jsonl").stat().st_size
        with (tmp_path / "f0.jsonl").open("ab") as fh:
            fh.write(b'{"a": 9}\n')
        with pytest.raises(BatchError, match="changed while its results were being read"):
            read_back(files, where[4:], 4)
    finally:
        files.close()


def test_lines_read_in_long_runs_are_not_held_whole(tmp_path: Path) -> None:
    """A file whose lines are asked for in order is read a run (1 MiB) at a time, never held."""
    where = write_files(tmp_path, [[b"y" * 30_000 for _ in range(100)]], [False])
    files = open_files(tmp_path, 1, WHOLE_MAX)
    try:
        got = []
        for piece in files.lines(*(np.array(c) for c in zip(*where, strict=True))):
            assert files.held_bytes == 0
            got.append(piece)
        assert b"".join(got) == expected(tmp_path, where)
    finally:
        files.close()


def test_files_held_move_up_to_make_room_and_keep_their_bytes(tmp_path: Path) -> None:
    """A given way in the middle of the files held: B moves to the front (overlapping copy)
    so that C fits after it; every line still comes back as it is in its file."""
    contents = [[b"%s%03d" % (name, i) + b"." * 90 for i in range(n)] for name, n in
                ((b"A", 40), (b"B", 40), (b"C", 50))]  # fmt: skip
    where = write_files(tmp_path, contents, [False, False, False])
    rng = random.Random(3)
    a, b, c = ([w for w in where if w[0] == f] for f in range(3))
    for lines in (a, b, c):
        rng.shuffle(lines)
    mixed = b[20:] + c
    rng.shuffle(mixed)
    asked = a + b[:20] + mixed
    sizes = [(tmp_path / f"f{n}.jsonl").stat().st_size for n in range(3)]
    files = open_files(tmp_path, 3, sizes[1] + sizes[2] + 100)  # never A beside both
    try:
        assert read_back(files, asked, 16) == expected(tmp_path, asked)
    finally:
        files.close()


def test_without_room_to_map_the_files_every_line_is_read_by_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process limited in address space (ulimit -v) cannot map 64 MB: the lines are read one
    run at a time instead, never an error."""
    import mmap

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(12, "Cannot allocate memory")

    per_file = shuffled_files(tmp_path, 2, 300, 200)
    asked = per_file[0] + per_file[1]
    monkeypatch.setattr(mmap, "mmap", refused)
    files = open_files(tmp_path, 2, WHOLE_MAX)
    try:
        assert read_back(files, asked, 100) == expected(tmp_path, asked)
        assert files.held_bytes == 0
    finally:
        files.close()
