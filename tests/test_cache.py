"""The start-up cache: compiled request types and parsed tokenizer ranks, rebuilt when missing
or damaged, and a cached run checks and counts exactly as a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openai_batch.local import cache as cache_module

# Checks a good and a bad body, counts tokens, and says whether the SDK had to be imported.
_PROBE = r"""
import json, sys
from openai_batch.estimate import tokens
from openai_batch.validate import check as validate
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


_THREADED = r"""
import json, sys, threading
from openai_batch.estimate import tokens
from openai_batch.validate import check as validate
bad = {"model": "gpt-4o", "messages": [{"role": "sys", "content": 3}],
       "input": [{"type": "input_text"}, {"role": "user", "content": [{"type": "nope"}]}]}
out = [None] * 8
def work(i):
    url = "/v1/responses" if i % 2 else "/v1/chat/completions"
    out[i] = [vars(p) for p in validate.check_body(bad, url)]
    tokens.count_tokens("warm " * i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""


def test_threads_racing_on_a_cold_cache_build_it_once_and_right(tmp_path):
    """make-batch-file loads the types in a warm-up thread while the main thread may need them:
    racing first uses must agree, and what they leave in the cache must check the same."""
    env = {**os.environ, "OPENAI_BATCH_CACHE": str(tmp_path)}
    runs = []
    for _ in range(2):  # cold, then from the cache the race left behind
        proc = subprocess.run(
            [sys.executable, "-c", _THREADED], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    cold, cached = runs
    assert cold == cached
    assert all(r == cold[i % 2] for i, r in enumerate(cold))  # every thread, the same answer
    messages = {p["message"] for r in cold for p in r}
    assert (
        "'sys' is not one of 'developer', 'system', 'user', 'assistant', 'tool' or 'function'"
        in (messages)
    )
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_an_entry_others_could_have_written_is_not_loaded(fresh, tmp_path):
    """Unpickling runs code: a cache file writable by others is rebuilt, never loaded."""
    cache, first = fresh
    shared = tmp_path / "shared"
    shared.mkdir()
    for name, data in _entries(cache).items():
        (shared / name).write_bytes(data)
        (shared / name).chmod(0o666)
    again = _probe(shared)
    assert again["sdk_imported"]  # the request types were rebuilt, not loaded
    assert again["bad"] == first["bad"] and again["tokens"] == first["tokens"]
    for entry in shared.glob("*.pickle"):
        assert entry.stat().st_mode & 0o077 == 0  # and rewritten for this user only
