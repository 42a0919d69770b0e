"""The start-up cache: compiled request types and parsed tokenizer ranks, rebuilt when missing
or damaged, and a cached run checks and counts exactly as a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openai_batch import cache as cache_module

# Checks a good and a bad body, counts tokens, and says whether the SDK had to be imported.
_PROBE = r"""
import json, sys
from openai_batch import tokens, validate
body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
bad = {"model": "gpt-4o", "messages": [{"role": "sys", "content": 3}], "temperatur": 1,
       "input": [{"type": "input_text"}]}
out = {
    "good": [vars(p) for p in validate.check_body(body, "/v1/chat/completions")],
    "bad": [vars(p) for p in validate.check_body(bad, "/v1/chat/completions")],
    "responses": [vars(p) for p in validate.check_body(bad, "/v1/responses")],
    "url": [vars(p) for p in validate.check_line({"custom_id": "a", "method": "POST",
            "url": "/v1/nope", "body": {}}, 1)],
    "tokens": [tokens.count_tokens("Ünïcode persona: a 43 year old pilot 🚀", enc)
               for enc in ("o200k_base", "cl100k_base")],
    "sdk_imported": "openai" in sys.modules,
}
print(json.dumps(out))
"""


def _probe(cache: Path) -> dict:
    env = {**os.environ, "OPENAI_BATCH_CACHE": str(cache)}
    env.pop("OPENAI_BATCH_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _entries(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.glob("*.pickle"))}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    cache = tmp_path_factory.mktemp("cache")
    return cache, _probe(cache)


def test_a_fresh_run_builds_and_keeps_the_cache(fresh):
    cache, first = fresh
    assert first["sdk_imported"]  # nothing cached yet: the types came from the SDK
    names = sorted(_entries(cache))
    assert [n.split("-")[0] for n in names] == ["ranks", "ranks", "request"]
    assert first["good"] == []
    bad = {(p["path"], p["severity"]) for p in first["bad"]}
    assert ("body.messages[0].role", "error") in bad
    assert ("body.temperatur", "error") in bad
    assert first["url"] and "not a Batch API endpoint" in first["url"][0]["message"]


def test_a_cached_run_checks_and_counts_the_same_without_the_sdk(fresh, tmp_path):
    cache, first = fresh
    before = _entries(cache)
    second = _probe(cache)
    assert not second["sdk_imported"]
    assert {k: v for k, v in second.items() if k != "sdk_imported"} == {
        k: v for k, v in first.items() if k != "sdk_imported"
    }
    assert _entries(cache) == before  # read, not rewritten


def test_damaged_entries_are_rebuilt(fresh, tmp_path, monkeypatch):
    cache, first = fresh
    damaged = tmp_path / "cache"
    damaged.mkdir()
    for name, data in _entries(cache).items():
        (damaged / name).write_bytes(data[: len(data) // 2])  # cut short, like a full disk
    again = _probe(damaged)
    assert again["sdk_imported"]  # the types had to be rebuilt
    assert again["bad"] == first["bad"] and again["tokens"] == first["tokens"]
    assert _entries(damaged).keys() == _entries(cache).keys()  # and were written whole again:
    monkeypatch.setenv("OPENAI_BATCH_CACHE", str(damaged))
    for name in _entries(damaged):
        assert cache_module.load(name.removesuffix(".pickle")) is not None


def test_an_unwritable_cache_only_costs_time(fresh, tmp_path):
    _, first = fresh
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    again = _probe(blocked)
    assert again["bad"] == first["bad"] and again["tokens"] == first["tokens"]
    assert blocked.read_text() == "a file where the cache folder would be"


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_BATCH_CACHE", raising=False)
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    assert cache_module.cache_dir() == tmp_path / "home" / "cache"
    monkeypatch.setenv("OPENAI_BATCH_CACHE", str(tmp_path / "elsewhere"))
    assert cache_module.cache_dir() == tmp_path / "elsewhere"
