"""Shared pytest fixtures. Each block below belongs to one area; keep them separate."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# ============================================================================================
# fake_api: a strict fake of the OpenAI API on loopback (owner: tests/fake_openai.py; its module
# docstring documents the fake's controls and introspection)
# ============================================================================================

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # `from fake_openai import ...` works whatever the import mode
    sys.path.insert(0, _TESTS_DIR)

from fake_openai import FakeOpenAI  # noqa: E402

# Environment that would point the SDK (or the project's connection code) somewhere else.
_OPENAI_ENV_TO_CLEAR = (
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "OPENAI_WEBHOOK_SECRET",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_API_VERSION",
)


@pytest.fixture
def fake_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeOpenAI]:
    """A running FakeOpenAI with OPENAI_API_KEY / OPENAI_BASE_URL pointing at it.

    Also points OPENAI_BATCH_HOME at a fresh temp dir (never the user's home), clears the
    organisation/project/Azure variables, and keeps proxies away from loopback. Fails the test
    at teardown if the fake itself crashed while answering (a bug in the fake, not the code).
    """
    fake = FakeOpenAI().start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path_factory.mktemp("openai-batch-home")))
        for name in _OPENAI_ENV_TO_CLEAR:
            monkeypatch.delenv(name, raising=False)
        for name in ("NO_PROXY", "no_proxy"):
            existing = [p for p in os.environ.get(name, "").split(",") if p]
            monkeypatch.setenv(name, ",".join([*existing, "127.0.0.1", "localhost"]))
        yield fake
    finally:
        fake.stop()
    if fake.internal_errors:
        pytest.fail("fake_openai crashed:\n" + "\n".join(fake.internal_errors))


# ============================================================================================
# end of the fake_api block
# ============================================================================================


# ============================================================================================
# User state: no test reads or writes the real ledger or cache under $HOME
# ============================================================================================


@pytest.fixture(scope="session")
def _shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One start-up cache (compiled request types, tokenizer ranks) for the whole session: it
    only holds what any run may rebuild, and sharing it keeps subprocess tests quick."""
    return tmp_path_factory.mktemp("openai-batch-cache")


@pytest.fixture(autouse=True)
def _isolated_user_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, _shared_cache: Path
) -> None:
    """A fresh OPENAI_BATCH_HOME (ledger, downloads) per test; tests may point it elsewhere."""
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path_factory.mktemp("openai-batch-home")))
    monkeypatch.setenv("OPENAI_BATCH_CACHE", str(_shared_cache))


# ============================================================================================
# The repository folder: no test writes into it (outputs, locks and caches go to temp folders)
# ============================================================================================

_REPO = Path(__file__).resolve().parents[1]
_TOOL_DIRS = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".mypy_cache"}
)


def _repo_files() -> set[str]:
    found: set[str] = set()
    for folder, dirs, names in os.walk(_REPO):
        dirs[:] = [d for d in dirs if d not in _TOOL_DIRS and not d.endswith(".egg-info")]
        found.update(os.path.relpath(os.path.join(folder, n), _REPO) for n in names)
    return found


@pytest.fixture(scope="session", autouse=True)
def _repository_left_alone() -> Iterator[None]:
    """Fails the run if a test left a file in the repository (e.g. `-o x.jsonl` in the cwd)."""
    before = _repo_files()
    yield
    added = sorted(_repo_files() - before)
    assert not added, f"tests wrote into the repository folder: {added[:10]}"
