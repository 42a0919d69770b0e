"""Small helpers shared by the tests: run the real CLI and read what it wrote."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


# A bound on waiting for a command that only a hang reaches, whatever the load (a loaded 2-core CI
# runs these commands in seconds): never a guess at how fast the machine is.
HANG_SECONDS = 600.0


@contextlib.contextmanager
def command_group(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`openai-batch ARGS` in a process group of its own, its output piped (text).

    However the test ends (a failed assert, a timeout), the whole group is killed and reaped on
    the way out: neither the command nor a child of its own (make's review process) outlives
    the test. `ctrl_c` sends SIGINT to the group, as a terminal's Ctrl-C does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "openai_batch", *map(str, args)],
        cwd=cwd,
        env=dict(os.environ) if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL to the command's process group (see `command_group`), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def ctrl_c(proc: subprocess.Popen[Any]) -> None:
    """What Ctrl-C in a terminal does: SIGINT to the whole (foreground) process group."""
    os.killpg(proc.pid, signal.SIGINT)


def wait_while_running(proc: subprocess.Popen[Any], ready: Callable[[], bool], what: str) -> None:
    """Until `ready()`; fails if the command ends first. No guess at the machine's speed: the
    command ends by itself, and only a hang reaches HANG_SECONDS."""
    deadline = time.monotonic() + HANG_SECONDS
    while not ready():
        assert proc.poll() is None, f"the command ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {HANG_SECONDS:.0f} s: a hang"
        time.sleep(0.01)
