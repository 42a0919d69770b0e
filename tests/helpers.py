"""Small helpers shared by the tests: run the real CLI and read what it wrote."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from openai_batch.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED = SHARED / "fixtures" / "seed-tool"


def need_seed() -> Path:
    """The seed fixtures, or skip: a user's clone has no ../shared folder."""
    if not SEED.is_dir():
        pytest.skip("../shared/fixtures/seed-tool is not present")
    return SEED


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run `openai-batch ARGS` in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, Any]:
    """Run a command with --json; its exit code and the JSON it printed."""
    code, out, err = run_cli(capsys, *args, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} does not end with a newline"
    # split on "\n" only: str.splitlines() would also split inside cells holding U+2028
    return [json.loads(line) for line in text.split("\n")[:-1]]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def pretend_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress bars are drawn only on a terminal: make the captured stderr say it is one."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    """A user error: non-zero exit, a message naming the problem, never a traceback."""
    assert code != 0
    assert "Traceback" not in err
    assert "error: " in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
