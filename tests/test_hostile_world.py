"""A hostile other side: ids that are paths, passwords in the base URL, a `.env` that picks the
server. Against the strict fake (its `hostile_ids` mode); see docs/reliability.md."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from helpers import cli_json, run_cli
from openai_batch.ledger.paths import DB_NAME, home_dir
from openai_batch.service.redaction import public_url, redact

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0.01")


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    return fake_api


def request_file(path: Path, n: int = 3) -> Path:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    lines = [
        json.dumps(
            {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ledger_text() -> str:
    """Every value the ledger holds, as one text (to look for secrets in it)."""
    db = sqlite3.connect(home_dir() / DB_NAME)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f"SELECT * FROM {table}")
        )
    finally:
        db.close()


# ------------------------------------------------------------------- ids that are paths


@pytest.mark.parametrize("shape", ["relative", "absolute"])
def test_an_output_file_id_that_is_a_path_never_touches_the_disk(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, shape: str
) -> None:
    outside = tmp_path / "outside"
    downloads = home_dir() / "downloads"
    target = outside / "file-1"
    if shape == "relative":
        hostile = "../" * (len(downloads.parts) - 1) + str(target).lstrip("/")
    else:
        hostile = str(target)
    # what the old code would have read as this batch's results, and where it would write
    outside.mkdir()
    planted = outside / "file-1.jsonl"
    planted.write_text('{"custom_id": "id_0", "planted": true}\n', encoding="utf-8")
    code, started = cli_json(capsys, "start-batch", request_file(tmp_path / "r.jsonl"))
    assert code == 0
    fake.finish(started[0]["id"])
    fake.hostile_ids = {"output_file_id": hostile}
    code, _out, err = run_cli(capsys, "get-batch-results", "r.jsonl", "--csv", "t.csv")
    assert code == 3 and "Traceback" not in err
    assert f"error: the service sent output_file_id {hostile[:40]!r}"[:-1] in err
    assert "which is not an id" in err
    assert not Path("batch-responses.jsonl").exists() and not Path("t.csv").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["file-1.jsonl"]
    assert not downloads.exists() or not any(downloads.iterdir())
    assert not any(p.endswith("/content") for _, p, _ in fake.log)


@pytest.mark.parametrize(
    ("field", "command"),
    [
        ("file_id", "upload-batch-file"),
        ("batch_id", "start-batch"),
        ("error_file_id", "get-batch-results"),
    ],
)
def test_every_id_the_service_sends_is_checked(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, field: str, command: str
) -> None:
    path = request_file(tmp_path / "r.jsonl")
    if command == "get-batch-results":
        fake.plan(fail_every=1)
        code, started = cli_json(capsys, "start-batch", path)
        assert code == 0
        fake.finish(started[0]["id"])
    fake.hostile_ids = {field: "..\\..\\evil"}
    code, _out, err = run_cli(capsys, command, path)
    assert code == 3 and "Traceback" not in err, err
    assert "'..\\\\..\\\\evil', which is not an id" in err


def test_ids_of_openai_azure_and_compatible_servers_pass(fake: FakeOpenAI) -> None:
    from openai_batch.service import ids

    for good in ("file-AbC123", "batch_6708634c0ba081909ca21a5f182ce840",
                 "batch_3f2a9c1e-7b1d-4f7e-9a51-5d1c0e8b2a77", "file-abc.jsonl"):  # fmt: skip
        assert ids.is_safe(good)
    for bad in ("", ".", "..", "../x", "/tmp/x", "a/b", "a\\b", "C:x", "a b", "\x1b[2J", "x" * 256):
        assert not ids.is_safe(bad)


# ------------------------------------------------------------------- passwords in the URL


def test_a_password_in_the_base_url_is_never_printed_or_stored(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # OpenAI takes the key as the Basic-auth password too, so this URL works as it is
    host = fake.base_url.removeprefix("http://")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://alice:{fake.api_key}@{host}")
    template = tmp_path / "t.json"
    template.write_text(
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}',
        encoding="utf-8",
    )
    (tmp_path / "d.csv").write_text("q\na\nb\n", encoding="utf-8")
    code, report = cli_json(capsys, "run", template, "d.csv", *WAIT)
    assert code == 0, report
    assert report["job"]["service"] == fake.base_url
    assert "alice" not in json.dumps(report) and fake.api_key not in json.dumps(report)
    stored = ledger_text()
    assert "alice" not in stored and fake.api_key not in stored and "@" not in stored
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 0 and "alice" not in out + err

    # a wrong password: the error names the service without it
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://alice:pw-s3cret-pw@{host}")
    fake.inject("*", r"/v1/batches", 503, times=None)
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "0")
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 3 and "Traceback" not in err and "error: " in err
    assert "s3cret" not in out + err and "alice" not in out + err


def test_redaction_removes_keys_tokens_and_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "local-key-1234567")
    text = (
        "POST http://bob:hunter22@gw.example/v1 failed; Authorization: Bearer abc.def-GHI_123456 "
        "key local-key-1234567 sk-proj-abcdef123456"
    )
    clean = redact(text)
    for secret in ("hunter22", "bob:", "abc.def-GHI_123456", "local-key-1234567", "sk-proj-abc"):
        assert secret not in clean
    assert "http://gw.example/v1" in clean
    assert public_url("https://u:p@h.example:8443/v1?q=1") == "https://h.example:8443/v1?q=1"
    assert public_url("http://127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"


# ------------------------------------------------------------------- .env picks the server


def test_a_dotenv_that_points_the_users_key_elsewhere_is_refused(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    Path(".env").write_text(
        f"OPENAI_BASE_URL=http://eve:pw-evil@{fake.base_url.removeprefix('http://')}\n",
        encoding="utf-8",
    )
    code, _out, err = run_cli(capsys, "list-batches")
    assert code == 1 and "Traceback" not in err
    assert "error: " in err and ".env sets OPENAI_BASE_URL" in err
    assert "OPENAI_BATCH_TRUST_DOTENV_URL=1" in err and "pw-evil" not in err
    assert fake.log == []  # nothing was sent anywhere

    # the opt-in must come from the environment: a .env cannot give it to itself
    with Path(".env").open("a", encoding="utf-8") as fh:
        fh.write("OPENAI_BATCH_TRUST_DOTENV_URL=1\n")
    assert run_cli(capsys, "list-batches")[0] == 1 and fake.log == []

    monkeypatch.setenv("OPENAI_BATCH_TRUST_DOTENV_URL", "1")
    Path(".env").write_text(f"OPENAI_BASE_URL={fake.base_url}\n", encoding="utf-8")
    assert run_cli(capsys, "list-batches")[0] == 0 and fake.log


def test_a_dotenv_with_its_own_key_and_url_is_the_users_configuration(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    Path(".env").write_text(
        f"OPENAI_BASE_URL={fake.base_url}\nOPENAI_API_KEY={fake.api_key}\n", encoding="utf-8"
    )
    assert run_cli(capsys, "list-batches")[0] == 0


def test_a_dotenv_url_is_refused_for_the_key_variable_chat_complete_reads(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--api-key-env GROQ_API_KEY` with the key in the environment: a `.env` base URL used to
    receive `Bearer gsk_...`, since only the three standard key variables were guarded."""
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("GROQ_API_KEY", "gsk_reviewsecret123456")
    Path(".env").write_text(f"OPENAI_BASE_URL={fake.base_url}\n", encoding="utf-8")
    write_request_file()
    code, _out, err = run_cli(
        capsys,
        "utils",
        "chat-complete",
        "r.jsonl",
        "-o",
        "o.jsonl",
        "--api-key-env",
        "GROQ_API_KEY",
    )
    assert code == 1 and "Traceback" not in err
    assert ".env sets OPENAI_BASE_URL" in err and "GROQ_API_KEY" in err
    assert fake.log == [] and not Path("o.jsonl").exists()


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY", "SSL_CERT_FILE"])
def test_a_dotenv_may_not_route_the_users_key_through_a_proxy(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A `.env` proxy sees every request, the key included; a certificate file lets a server
    of the folder's choosing pass for the real one."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "SSL_CERT_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    Path(".env").write_text(f"{variable}=http://127.0.0.1:9\n", encoding="utf-8")
    code, _out, err = run_cli(capsys, "list-batches")
    assert code == 1 and "Traceback" not in err
    assert f".env sets {variable}=" in err and "OPENAI_BATCH_TRUST_DOTENV_URL=1" in err
    assert fake.log == []


@pytest.mark.parametrize("url", ["alice:s3cretpw@host/v1", "localhost:8000/v1", "ftp://h/v1"])
def test_a_base_url_without_http_is_named_and_its_password_never_shown(
    fake: FakeOpenAI, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """`alice:s3cretpw@host/v1` was printed whole, as "could not reach", with a network hint."""
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    for command in (("list-batches",), ("utils", "chat-complete", "r.jsonl", "-o", "o.jsonl")):
        write_request_file()
        code, _out, err = run_cli(capsys, *command)
        assert code != 0 and "Traceback" not in err
        assert "OPENAI_BASE_URL is not a valid URL" in err and "http://" in err, err
        assert "s3cretpw" not in err and "network" not in err


def test_the_resume_command_after_ctrl_c_shows_no_password() -> None:
    from openai_batch.local.faults import interrupted

    argv = ["utils", "chat-complete", "r.jsonl", "--base-url", "http://u:pw-secret@h/v1"]
    error = interrupted(argv)
    assert "pw-secret" not in str(error) + str(error.hint)
    assert "--base-url http://h/v1" in str(error.hint)
    assert "pw-secret" not in redact("could not reach alice:pw-secret@host/v1")


def write_request_file() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    request = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    Path("r.jsonl").write_text(json.dumps(request) + "\n", encoding="utf-8")
