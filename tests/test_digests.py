"""Content digests (xxh3-128): how the ledger recognises a file again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import run_cli
from openai_batch.ledger import digests

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


# ---------------------------------------------------------------------------------------------
# The digest itself


def test_a_digest_is_xxh3_128_of_the_bytes_streamed_in_blocks(tmp_path: Path) -> None:
    import xxhash

    data = os.urandom(digests.BLOCK * 2 + 12345)  # crosses block boundaries
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert digests.ALGORITHM == "xxh3_128"
    assert digests.digest_of(path) == digests.digest_bytes(data) == expected
    assert len(expected) == 32
    hasher = digests.new_digest()
    for start in range(0, len(data), 1000_003):  # any split, any buffer type
        hasher.update(memoryview(data)[start : start + 1000_003])
    assert hasher.hexdigest() == expected
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert digests.digest_of(empty) == digests.digest_bytes(b"") != expected


def test_matches_checks_the_file_against_its_recorded_digest(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"custom_id": "id_0"}\n')
    new = digests.digest_of(path)
    assert digests.matches(path, new)
    path.write_bytes(b'{"custom_id": "id_1"}\n')  # same size, other content
    assert not digests.matches(path, new)


def test_make_batch_file_json_names_the_digest(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\nann\nbob\n", encoding="utf-8")
    code, out, err = run_cli(
        capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl", "--json"
    )
    assert code == 0, err
    (shard,) = json.loads(out)["files"]
    assert shard["digest"] == digests.digest_of(Path("r.jsonl")) and "sha256" not in shard
