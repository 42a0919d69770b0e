"""Issue 10, crashes: early errors end in exit 1 (never a signal), and no background thread
outlives a command's work; expression errors are clean `error: row N` lines wherever the
placeholder stands."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import assert_clean_error, run_cli, write

Capsys = pytest.CaptureFixture[str]


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("openai-batch")]


def test_early_template_errors_exit_1_every_time_with_a_cold_cache(tmp_path: Path) -> None:
    """The warm-up thread was still importing when the interpreter finalized: SIGSEGV (exit
    139) in about one run in ten to three. Each run gets a fresh home, so a cold cache."""
    bad = write(tmp_path / "bad.json", '{"model": "gpt-4o", "messages": [')
    slides = write(
        tmp_path / "slides.json",
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url",'
        ' "image_url": [{"url": "<<a>>"}]}]}]}',
    )
    data = write(tmp_path / "d.csv", "a\nx\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BATCH_CACHE"}
    codes = []
    for run in range(15):
        env["OPENAI_BATCH_HOME"] = str(tmp_path / f"home-{run}")
        template = bad if run % 3 else slides
        proc = subprocess.run(
            [sys.executable, "-m", "openai_batch", "make-batch-file", str(template), str(data),
             "-o", str(tmp_path / "out.jsonl")],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        codes.append(proc.returncode)
        assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert codes == [1] * 15
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    "content",
    ['"<<(a | int) // 0>>"', "<<(a | int) // 0>>"],
    ids=["in-a-string", "bare"],
)
def test_no_thread_outlives_a_row_error(tmp_path: Path, capsys: Capsys, content: str) -> None:
    """A row error after rendering began: the warm-up (and the first-line check) are waited
    for, so nothing is left importing while the interpreter shuts down."""
    template = write(
        tmp_path / "t.json",
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], '
        f'"seed": {content}}}',
    )
    data = write(tmp_path / "d.csv", "a\n1\n")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "row 1")
    assert _our_threads() == []


def test_no_thread_outlives_a_successful_make(tmp_path: Path, capsys: Capsys) -> None:
    template = write(
        tmp_path / "t.json",
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "<<a>>"}]}',
    )
    data = write(tmp_path / "d.csv", "a\n1\n2\n")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert code == 0, err
    assert _our_threads() == []
