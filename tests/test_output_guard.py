"""Issue 10, outputs that destroy inputs: every writer shares one guard (output_guard), and
files are written with the modes a plain write would give them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, cli_json, run_cli, write

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0.01", "--quiet")
TEMPLATE = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi <<Name>>"}]}'


@pytest.fixture
def made(fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch) -> dict[str, Path]:
    """A request file made from config.json + personas.csv, its batch started."""
    monkeypatch.chdir(tmp_path)
    files = {
        "template": write(tmp_path / "config.json", TEMPLATE),
        "data": write(tmp_path / "personas.csv", "Name\nann\nbob\n"),
        "requests": tmp_path / "batch-requests.jsonl",
    }
    assert run_cli(capsys, "make-batch-file", files["template"], files["data"], "-q")[0] == 0
    code, started = cli_json(capsys, "start-batch", files["requests"])
    assert code == 0, started
    return files


@pytest.mark.parametrize(
    ("flag", "which", "what"),
    [
        ("-o", "requests", "request file"),
        ("--csv", "data", "data file"),
        ("--csv", "template", "template"),
        ("--csv", "requests", "request file"),
        ("-o", "data", "data file"),
    ],
)
def test_get_batch_results_never_writes_over_an_input(
    made: dict[str, Path], capsys: Capsys, flag: str, which: str, what: str
) -> None:
    """`-o batch-requests.jsonl` replaced the request file with the responses; `--csv
    personas.csv` replaced the data (later joins refused "data changed")."""
    before = {name: path.read_bytes() for name, path in made.items()}
    args = [flag, made[which]] if flag == "--csv" else ["-o", made[which]]
    code, _, err = run_cli(capsys, "get-batch-results", "batch-requests.jsonl", *args, *WAIT)
    assert_clean_error(code, err, what, "would destroy it")
    assert {name: path.read_bytes() for name, path in made.items()} == before


def test_a_file_the_ledger_knows_is_protected_from_another_folder(
    made: dict[str, Path], capsys: Capsys, tmp_path: Path, monkeypatch
) -> None:
    """Not only the command's own inputs: any data file or template of a recorded job."""
    people = write(tmp_path / "people.jsonl", '{"Name": "dee"}\n')
    code, _, err = run_cli(capsys, "make-batch-file", made["template"], people, "-o", "p.jsonl")
    assert code == 0, err
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    write(other / "t.json", TEMPLATE)
    write(other / "d.csv", "Name\ncy\n")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", people)
    assert_clean_error(code, err, "data file of a recorded batch job")
    assert people.read_text() == '{"Name": "dee"}\n'
    code, _, err = run_cli(capsys, "utils", "chat-complete", made["requests"], "-o", people)
    assert_clean_error(code, err, "data file of a recorded batch job")
    # a request file is made again freely (the same command run twice)
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", made["requests"])
    assert code == 0, err


def test_run_refuses_before_anything_is_made_or_paid(
    fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.json", TEMPLATE)
    write(tmp_path / "personas.csv", "Name\nann\n")
    code, _, err = run_cli(
        capsys, "run", "config.json", "personas.csv", "--wait", "--csv", "personas.csv", "-q"
    )
    assert_clean_error(code, err, "--csv personas.csv is the data file")
    assert not (tmp_path / "batch-requests.jsonl").exists()
    assert fake_api.batches == {}


def test_retry_failed_shares_the_guard(made: dict[str, Path], capsys: Capsys) -> None:
    code, _, err = run_cli(capsys, "get-batch-results", "batch-requests.jsonl", *WAIT)
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "utils", "retry-failed", "batch-requests.jsonl", "-o", made["requests"]
    )
    assert_clean_error(code, err, "request file this command reads")


# -- file modes -------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(
    made: dict[str, Path], capsys: Capsys, tmp_path: Path
) -> None:
    """Every file was 0600 (mkstemp): colleagues could not read results, and a replaced 0644
    file became 0600."""
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(
            capsys, "get-batch-results", "batch-requests.jsonl", "--csv", "out.csv", *WAIT
        )
        assert code == 0, err
        assert stat.S_IMODE(os.stat("out.csv").st_mode) == 0o644
        assert stat.S_IMODE(os.stat("batch-responses.jsonl").st_mode) == 0o644
        os.chmod("out.csv", 0o640)
        code, _, err = run_cli(
            capsys, "get-batch-results", "batch-requests.jsonl", "--csv", "out.csv", *WAIT
        )
        assert code == 0, err
        assert stat.S_IMODE(os.stat("out.csv").st_mode) == 0o640
        os.umask(0o027)
        write(tmp_path / "t2.json", TEMPLATE)
        assert run_cli(capsys, "make-batch-file", "t2.json", made["data"], "-o", "n.jsonl")[0] == 0
        assert stat.S_IMODE(os.stat("n.jsonl").st_mode) == 0o640
        assert json.loads(Path("n.jsonl").read_text().splitlines()[0])["custom_id"] == "id_0"
    finally:
        os.umask(old)


def test_get_batch_results_refuses_before_waiting(
    made: dict[str, Path], capsys: Capsys, tmp_path: Path, monkeypatch
) -> None:
    """The batch is still running: the refusal comes at once, not when it has finished."""
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch-requests.jsonl", "--csv", made["data"], "--wait",
        "--poll-interval", "30", "--quiet",
    )  # fmt: skip
    assert_clean_error(code, err, "data file", "would destroy it")
