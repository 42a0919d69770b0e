"""Output files download several at a time, each atomically; a stopped run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, read_csv, run_cli
from openai_batch.ledger.paths import downloads_dir

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f"n{i}\n" for i in range(8)), encoding="utf-8")
    return fake_api


def content_gets(fake: FakeOpenAI) -> list[str]:
    return [
        path for method, path, status in fake.log if path.endswith("/content") and status == 200
    ]


def test_job_files_download_in_parallel_and_resume_after_a_failure(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    fake.plan(fail_custom_ids=["id_1"])  # the first batch has an error file too
    code, _, err = run_cli(
        capsys, "run", "t.json", "d.csv", "--max-requests", "2", "--job", "j", "-q"
    )
    assert code == 0, err
    for batch_id in fake.batches:
        fake.finish(batch_id)
    batches = list(fake.batches.values())
    files = [f for b in batches for f in (b.output_file_id, b.error_file_id) if f]
    assert len(files) >= 5
    broken = batches[2].output_file_id
    fake.break_download(broken, times=50)  # fails for good this time
    code, _, err = run_cli(
        capsys, "get-batch-results", "--job", "j", "--csv", "out.csv", "--parallel", "3", *WAIT
    )
    assert_clean_error(code, err, f"download of file {broken} broke off")
    kept = {p.stem for p in downloads_dir().rglob("*.jsonl")}
    assert broken not in kept and kept == set(files) - {broken}  # the others are whole, kept
    assert not [p for p in downloads_dir().rglob("*") if p.name.endswith(".part")]

    fake.clear_faults()
    fake.break_download(broken, times=0)
    before = len(content_gets(fake))
    code, _, err = run_cli(
        capsys, "get-batch-results", "--job", "j", "--csv", "out.csv", "--parallel", "3", *WAIT
    )
    assert code == 4, err  # one request failed
    assert len(content_gets(fake)) - before == 1  # only the missing file was fetched again
    rows = read_csv(Path("out.csv"))
    assert [r["status"] for r in rows] == ["ok", "error", *["ok"] * 6]


def test_parallel_must_be_positive(fake: FakeOpenAI, capsys: Capsys) -> None:
    code, _, err = run_cli(capsys, "get-batch-results", "batch_x", "--parallel", "0")
    assert_clean_error(code, err, "--parallel must be at least 1")
