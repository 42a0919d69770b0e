"""The lifecycle when things go wrong: keys, ids, network, retries, broken downloads, batches that
fail, expire or are cancelled, Ctrl-C, and two commands at once. Against the strict fake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from helpers import cli_json, pretend_terminal, read_csv, read_jsonl, run_cli
from openai_batch.errors import ApiError
from openai_batch.ledger.paths import downloads_dir
from openai_batch.ledger.store import open_ledger
from openai_batch.service.batch_calls import normalize
from openai_batch.service.connection import connect

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0.01")
WRONG_KEY = "sk-proj-WRONGkey0123456789abcdefXYZ"


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    return fake_api


def request_file(path: Path, n: int = 9, *, model: str | None = "gpt-4o-mini") -> Path:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    if model:
        body["model"] = model
    lines = [
        json.dumps(
            {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start(capsys: Capsys, path: Path) -> str:
    code, started = cli_json(capsys, "start-batch", path)
    assert code == 0
    return started[0]["id"]


def assert_clean(code: int, out: str, err: str, *needles: str, exit_code: int = 3) -> None:
    assert code == exit_code, (out, err)
    assert "Traceback" not in err and err.startswith("error: ")
    for needle in needles:
        assert needle in err, err


# --------------------------------------------------------------------------------- connection


def test_rejected_key_is_one_clear_message_without_the_key(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WRONG_KEY)
    for args in (
        ("upload-batch-file", request_file(tmp_path / "r.jsonl")),
        ("list-batches",),
        ("get-batch-results", "batch_abc"),
    ):
        code, out, err = run_cli(capsys, *args)
        assert_clean(code, out, err, "OPENAI_API_KEY was rejected (401)", "api-keys")
        assert WRONG_KEY not in out + err and WRONG_KEY[-6:] not in out + err
    assert fake.upload_count == 0
    assert all(status == 401 for _, _, status in fake.log)
    assert len(fake.log) == 3  # a 401 is not retried


def test_missing_key_fails_before_any_request(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, out, err = run_cli(capsys, "start-batch", request_file(tmp_path / "r.jsonl"))
    assert_clean(code, out, err, "OPENAI_API_KEY is not set", ".env")
    assert fake.log == []


def test_key_pasted_with_a_smart_character_is_named_not_a_crash(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-SECRET123\u2026")
    code, out, err = run_cli(capsys, "list-batches")
    assert_clean(code, out, err, "character 18 of 18", "HORIZONTAL ELLIPSIS")
    assert "SECRET123" not in out + err
    assert fake.log == []


def test_dotenv_in_the_working_folder_is_read_but_never_overrides(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text(f"OPENAI_API_KEY={fake.api_key}\n", encoding="utf-8")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run_cli(capsys, "list-batches")[0] == 0
    Path(".env").write_text(f"OPENAI_API_KEY={WRONG_KEY}\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)  # the environment wins over .env
    assert run_cli(capsys, "list-batches")[0] == 0


def test_unknown_batch_id(fake: FakeOpenAI, capsys: Capsys) -> None:
    for command in ("get-batch-results", "cancel-batch"):
        code, out, err = run_cli(capsys, command, "batch_doesnotexist")
        assert_clean(code, out, err, "no batch batch_doesnotexist", "list-batches")
    code, out, err = run_cli(capsys, "get-batch-results", "no/such/file.jsonl")
    assert_clean(code, out, err, "neither a file nor a batch id", exit_code=1)


def test_unreachable_service(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "0")
    code, out, err = run_cli(capsys, "list-batches")
    assert_clean(code, out, err, "nothing answers at", f"127.0.0.1:{port}", "OPENAI_BASE_URL")


def test_azure_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example-resource.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    with pytest.raises(ApiError, match="OPENAI_API_VERSION"):
        connect()
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    conn = connect()
    assert conn.azure and conn.service == "https://example-resource.openai.azure.com/openai"
    assert conn.key_variable == "AZURE_OPENAI_API_KEY"
    from openai.types import Batch

    batch = Batch.model_validate(
        {
            "id": "batch_1",
            "completion_window": "24h",
            "created_at": 1,
            "endpoint": "/chat/completions",
            "input_file_id": "file-1",
            "object": "batch",
            "status": "failed",
            "output_file_id": "",
            "error_file_id": "",
        }
    )
    normal = normalize(batch)
    assert normal.output_file_id is None and normal.error_file_id is None


# ---------------------------------------------------------------------------------- retries


def test_upload_retried_through_429_then_succeeds(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    fake.inject("POST", r"/v1/files$", 429, times=2, retry_after_ms=5)
    code, out, err = run_cli(capsys, "upload-batch-file", request_file(tmp_path / "r.jsonl"))
    assert code == 0, err
    assert "Uploaded batch file:" in out
    posts = [status for method, path, status in fake.log if (method, path) == ("POST", "/v1/files")]
    assert posts == [429, 429, 200]
    assert fake.upload_count == 1
    (file_id,) = fake.files
    assert fake.file_content(file_id) == (tmp_path / "r.jsonl").read_bytes()  # rewound per retry


def test_batch_creation_retried_through_500(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    fake.inject("POST", r"/v1/batches$", 500, times=1, retry_after_ms=5)
    start(capsys, request_file(tmp_path / "r.jsonl"))
    assert fake.batch_create_count == 1


def test_persistent_server_errors_give_up_with_a_message(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "1")
    fake.inject("GET", r"/v1/batches", 503, times=None, retry_after_ms=1)
    code, out, err = run_cli(capsys, "list-batches")
    assert_clean(code, out, err, "answered 503", "even after retries")
    assert sum(1 for _, p, _ in fake.log if p == "/v1/batches") == 2


def test_rate_limit_that_persists(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "1")
    fake.inject("POST", r"/v1/files$", 429, times=None, retry_after_ms=1)
    code, out, err = run_cli(capsys, "upload-batch-file", request_file(tmp_path / "r.jsonl"))
    assert_clean(code, out, err, "rate limited (429)", "run the same command again")


def test_broken_download_is_retried_or_leaves_nothing(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl"))
    fake.finish(batch_id)
    output_id = fake.batches[batch_id].output_file_id
    assert output_id

    fake.break_download(output_id, times=50)
    code, out, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "t.csv")
    assert_clean(code, out, err, f"download of file {output_id} broke off")
    assert not Path("batch-responses.jsonl").exists() and not Path("t.csv").exists()
    leftovers = [p.name for p in downloads_dir().rglob("*")] + [p.name for p in Path().glob("*")]
    assert not any(name.endswith(".part") or output_id in name for name in leftovers), leftovers

    fake.clear_faults()
    fake.break_download(output_id, times=1)  # one broken transfer: retried, then complete
    code, out, err = run_cli(capsys, "get-batch-results", batch_id)
    assert code == 0, err
    assert len(read_jsonl(Path("batch-responses.jsonl"))) == 9


# ------------------------------------------------------------------------------ ledger rules


def test_expired_upload_is_uploaded_again_before_starting(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    path = request_file(tmp_path / "r.jsonl")
    code, uploads = cli_json(capsys, "upload-batch-file", path)
    assert code == 0
    first = uploads[0]["id"]
    code, again = cli_json(capsys, "upload-batch-file", path)
    assert code == 0
    assert again[0]["id"] == first and again[0]["openai_batch"]["reused"] is True
    fake.travel(31 * 86_400)  # uploads expire after 30 days
    batch_id = start(capsys, path)
    assert fake.upload_count == 2
    assert fake.batches[batch_id].input_file_id != first
    with open_ledger() as ledger:
        gone = ledger.upload(fake.base_url.rstrip("/"), first)
        assert gone is not None and gone.gone


def test_a_batch_the_ledger_missed_is_found_not_started_twice(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """Killed right after the service created the batch, before the ledger heard of it."""
    path = request_file(tmp_path / "r.jsonl")
    code, uploads = cli_json(capsys, "upload-batch-file", path)
    assert code == 0
    missed = fake.client().batches.create(
        input_file_id=uploads[0]["id"], endpoint="/v1/chat/completions", completion_window="24h"
    )
    code, started = cli_json(capsys, "start-batch", path)
    assert code == 0
    assert started[0]["id"] == missed.id and started[0]["openai_batch"]["reused"] is True
    assert fake.batch_create_count == 1


def test_start_by_file_id_unknown_to_the_ledger_reads_the_endpoint(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    line = {
        "custom_id": "e0",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": "x"},
    }
    upload = fake.client().files.create(
        file=("e.jsonl", (json.dumps(line) + "\n").encode()), purpose="batch"
    )
    code, started = cli_json(capsys, "start-batch", upload.id)
    assert code == 0 and started[0]["endpoint"] == "/v1/embeddings"
    code, again = cli_json(capsys, "start-batch", upload.id)  # not started twice
    assert again[0]["id"] == started[0]["id"] and again[0]["openai_batch"]["reused"] is True
    assert fake.batch_create_count == 1


@pytest.mark.parametrize(
    "first",
    [b"not json", b"\xff\xfe", b"null", b'["url"]', b'{"custom_id": "e0"}', b'{"url": 5}'],
)
def test_start_by_file_id_whose_first_line_names_no_endpoint(
    fake: FakeOpenAI, capsys: Capsys, first: bytes
) -> None:
    """The first line is read as every request line is (requestfile/read): one that names no
    url as text is refused here, before a batch on an endpoint like "5" is asked for."""
    upload = fake.client().files.create(file=("e.jsonl", first + b"\n"), purpose="batch")
    code, out, err = run_cli(capsys, "start-batch", upload.id)
    assert_clean(code, out, err, f"cannot tell the endpoint of {upload.id}", exit_code=1)
    assert "hint: give it with --endpoint" in err and fake.batch_create_count == 0


def test_force_starts_a_second_batch(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    path = request_file(tmp_path / "r.jsonl")
    first = start(capsys, path)
    code, started = cli_json(capsys, "start-batch", path, "--force")
    assert code == 0
    assert started[0]["id"] != first and fake.batch_create_count == 2


def test_files_the_api_would_reject_are_refused_before_upload(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    dup = request_file(tmp_path / "dup.jsonl", 3)
    dup.write_text(dup.read_text("utf-8") + dup.read_text("utf-8").splitlines()[0] + "\n")
    code, out, err = run_cli(capsys, "upload-batch-file", dup)
    assert_clean(code, out, err, "duplicate custom_id 'id_0'", "line 4", exit_code=1)

    txt = tmp_path / "r.txt"
    txt.write_text(request_file(tmp_path / "ok.jsonl").read_text("utf-8"))
    code, out, err = run_cli(capsys, "start-batch", txt)
    assert_clean(code, out, err, "only .jsonl", exit_code=1)

    two_models = tmp_path / "models.jsonl"
    two_models.write_text(
        request_file(tmp_path / "a.jsonl", 2).read_text("utf-8")
        + request_file(tmp_path / "b.jsonl", 1, model="gpt-4o")
        .read_text("utf-8")
        .replace("id_0", "id_x")
    )
    code, out, err = run_cli(capsys, "upload-batch-file", two_models)
    assert_clean(code, out, err, "differs from", "a batch uses one model", exit_code=1)

    big = tmp_path / "big.jsonl"
    line = '{"custom_id": "id_%d", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'
    big.write_text("".join(line % i for i in range(50_001)))
    code, out, err = run_cli(capsys, "upload-batch-file", big)
    assert_clean(code, out, err, "50,001 requests", exit_code=1)
    assert fake.upload_count == 0 and fake.log == []


def test_metadata_limits_are_checked_before_any_request(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    path = request_file(tmp_path / "r.jsonl")
    many = [arg for i in range(16) for arg in ("--metadata", f"k{i}=v")]
    code, out, err = run_cli(capsys, "start-batch", path, *many)
    assert_clean(code, out, err, "17 metadata pairs", exit_code=1)
    code, out, err = run_cli(capsys, "start-batch", path, "--metadata", "k=" + "v" * 513)
    assert_clean(code, out, err, "512", exit_code=1)
    code, out, err = run_cli(capsys, "start-batch", path, "--metadata", "novalue")
    assert_clean(code, out, err, "KEY=VALUE", exit_code=1)
    assert fake.log == []


# ------------------------------------------------------------------------- batch outcomes


def test_partial_failure(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    fake.plan(fail_every=3, error_status=429)
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 9))
    code, out, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "t.csv", *WAIT)
    assert code == 4, err
    assert "6 completed, 3 failed of 9 total" in out
    assert "Results written to: batch-responses.jsonl (9 lines: 6 ok, 3 error)" in out
    lines = read_jsonl(Path("batch-responses.jsonl"))
    assert [x["custom_id"] for x in lines] == [f"id_{i}" for i in range(9)]
    failed = [x["custom_id"] for x in lines if x["response"]["status_code"] != 200]
    assert failed == ["id_2", "id_5", "id_8"]
    rows = read_csv(Path("t.csv"))
    assert [r["status"] for r in rows] == ["ok", "ok", "error"] * 3
    assert rows[2]["error"].startswith("rate_limit_exceeded") and rows[2]["content"] == ""


def test_all_failed_has_no_output_file(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    fake.plan(fail_every=1, error_status=400)
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 4))
    code, report = cli_json(capsys, "get-batch-results", batch_id, "--csv", "t.csv", *WAIT)
    assert code == 4
    assert report["batches"][0]["output_file_id"] is None
    assert report["batches"][0]["error_file_id"]
    assert report["responses"]["error"] == 4 and report["responses"]["ok"] == 0
    assert [r["status"] for r in read_csv(Path("t.csv"))] == ["error"] * 4


def test_none_failed_has_no_error_file(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 4))
    code, report = cli_json(capsys, "get-batch-results", batch_id, *WAIT)
    assert code == 0
    assert report["batches"][0]["error_file_id"] is None
    assert report["downloads"][0]["errors"] is None
    assert report["responses"]["ok"] == 4


def test_expired_batch_keeps_partial_output(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    fake.plan("expired", stop_after=5)
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 9))
    code, out, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "t.csv", *WAIT)
    assert code == 4, err
    assert f"{batch_id}  expired" in out and "EXPIRED" in out
    rows = read_csv(Path("t.csv"))
    assert [r["status"] for r in rows].count("ok") == 5
    expired = [r for r in rows if r["status"] == "error"]
    assert len(expired) == 4 and all(r["error"].startswith("batch_expired") for r in expired)
    assert len(read_jsonl(Path("batch-responses.jsonl"))) == 9


def test_cancelled_plan(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    fake.plan("cancelled", stop_after=3)
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 9))
    code, out, _err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "t.csv", *WAIT)
    assert code == 4
    assert "CANCELLED" in out
    assert [r["status"] for r in read_csv(Path("t.csv"))].count("missing") == 6


def test_failed_validation_shows_the_errors(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """A file the service rejects (no model): refused here, and with --no-check by the API."""
    path = request_file(tmp_path / "r.jsonl", 3, model=None)
    code, out, err = run_cli(capsys, "start-batch", path)
    assert_clean(code, out, err, "would be rejected", "model", exit_code=1)
    code, started = cli_json(capsys, "start-batch", path, "--no-check")
    assert code == 0
    batch_id = started[0]["id"]
    code, out, _err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "t.csv", *WAIT)
    assert code == 4
    assert f"{batch_id}  failed" in out and "FAILED" in out
    assert "Errors:" in out and "line 1: missing_required_parameter" in out
    # Both files are written (every row missing): an older t.csv must not pass for this run's.
    assert "t.csv (3 rows: 0 ok, 0 error, 3 missing)" in out
    assert Path("batch-responses.jsonl").read_bytes() == b""


def test_token_limit_failure(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    fake.plan(token_limit_exceeded=True)
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 3))
    code, report = cli_json(capsys, "get-batch-results", batch_id, *WAIT)
    assert code == 4
    (batch,) = report["batches"]
    assert batch["status"] == "failed"
    assert batch["errors"]["data"][0]["code"] == "token_limit_exceeded"


def test_wait_shows_a_progress_bar(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 9))
    pretend_terminal(monkeypatch)  # a bar is drawn only on a terminal
    code, _out, err = run_cli(
        capsys, "get-batch-results", batch_id, "--wait", "--poll-interval", "0.01"
    )
    assert code == 0
    assert "3/9" in err and "9/9" in err  # (completed + failed) of total, as it grew
    seen = [s["completed"] for s in fake.batches[batch_id].seen]
    assert seen == sorted(seen) and seen[-1] == 9


# -------------------------------------------------------------------- processes and signals


def _cli_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "openai_batch", *args],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until(condition: Any, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_ctrl_c_stops_waiting_not_the_batch(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    batch_id = start(capsys, request_file(tmp_path / "r.jsonl", 9))
    fake.auto_advance = False
    fake.advance(batch_id)
    proc = _cli_process(
        "get-batch-results",
        batch_id,
        "--wait",
        "--poll-interval",
        "0.02",
        "--csv",
        "t.csv",
        cwd=tmp_path,
    )
    polls = lambda: sum(1 for m, p, _ in fake.log if m == "GET" and p.endswith(batch_id))  # noqa: E731
    _wait_until(lambda: polls() >= 3, "the command to poll")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "Stopped waiting" in err
    assert (
        f"openai-batch get-batch-results {batch_id} -o batch-responses.jsonl --csv t.csv --wait"
        in err
    )
    assert fake.batches[batch_id].status == "in_progress"
    assert not any(p.endswith("/cancel") for _, p, _ in fake.log)


def test_two_starts_at_once_start_one_batch(fake: FakeOpenAI, tmp_path: Path) -> None:
    path = request_file(tmp_path / "r.jsonl", 5)
    procs = [_cli_process("start-batch", str(path), cwd=tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert fake.upload_count == 1 and fake.batch_create_count == 1
    text = "".join(out for out, _ in outputs)
    assert text.count("Started batch:") == 1 and text.count("Already started:") == 1
