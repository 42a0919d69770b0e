"""Batch services beyond api.openai.com: Azure OpenAI as documented and compatible services as
they answer (tests/fake_profiles.py), through the real CLI. Above all: no profile can make the
tool start (and pay for) the same requests twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from fake_profiles import AzureProfile, CompatibleProfile, Profile, groq_like, together_like
from helpers import assert_clean_error, cli_json, read_csv, read_jsonl, run_cli
from openai_batch.ledger import open_ledger

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0", "--quiet")


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    return fake_api


def use_azure(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, **options: object) -> Profile:
    """The Azure profile, and the environment Azure's guide asks for (no OPENAI_BASE_URL)."""
    profile = AzureProfile(**options).install(fake)  # type: ignore[arg-type]
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.root_url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", fake.api_key)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    return profile


def make_small(tmp_path: Path, rows: int = 6) -> tuple[Path, Path]:
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi <<Name>>"}]}
        ),
        encoding="utf-8",
    )
    data = tmp_path / "people.csv"
    data.write_text("Name\n" + "".join(f"P{i}\n" for i in range(rows)), encoding="utf-8")
    return template, data


def request_file(tmp_path: Path, rows: int = 4, url: str = "/v1/chat/completions") -> Path:
    path = tmp_path / "requests.jsonl"
    lines = [
        {
            "custom_id": f"id_{i}",
            "method": "POST",
            "url": url,
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------------ never pay twice

PROFILES = {
    "capitalised": lambda: CompatibleProfile(capitalised=True),
    "no-status": lambda: CompatibleProfile(drop_batch_fields=("status",)),
    "together": together_like,
    "no-created-no-input": lambda: CompatibleProfile(
        drop_batch_fields=("created_at", "input_file_id")
    ),
    "no-cursors": lambda: CompatibleProfile(no_cursors=True),
    "groq": groq_like,
}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_no_profile_starts_the_same_requests_twice(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, name: str
) -> None:
    PROFILES[name]().install(fake)
    path = request_file(tmp_path)
    code, out, err = run_cli(capsys, "start-batch", path)
    assert code == 0, err
    assert fake.batch_create_count == 1
    for _ in range(2):  # also once the batch moved on
        code, out, err = run_cli(capsys, "start-batch", path)
        assert code == 0, err
        assert "Already started" in out and "ended None" not in out + err
    assert fake.batch_create_count == 1
    fake.auto_advance = False
    fake.finish()
    code, out, err = run_cli(capsys, "start-batch", path)
    assert code == 0 and "Already started" in out
    assert fake.batch_create_count == 1


def test_capitalised_statuses_are_followed_to_the_end(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    """Together writes IN_PROGRESS / COMPLETED: --wait ends and the results are written."""
    together_like().install(fake)
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path)[0] == 0
    code, _out, err = run_cli(capsys, "get-batch-results", path, "-o", "out.jsonl", *WAIT)
    assert code == 0, err
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4


def test_together_create_wrapped_in_job_is_recorded(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    """{"job": {...}}: the batch created is recorded, never lost (it used to crash after the
    create with `NOT NULL constraint failed: batches.batch_id`)."""
    together_like().install(fake)
    code, started = cli_json(capsys, "start-batch", request_file(tmp_path))
    assert code == 0
    (batch_id,) = fake.batches
    assert started[0]["id"] == batch_id and started[0]["status"] == "validating"
    with open_ledger() as ledger:
        assert ledger.batch(ledger_service(fake), batch_id) is not None


def ledger_service(fake: FakeOpenAI) -> str:
    return fake.base_url.rstrip("/")


class NoIdProfile(CompatibleProfile):
    """A create answered with something that names no batch at all."""

    def batch(self, fake: FakeOpenAI, data: dict, *, created: bool) -> dict:
        return {"message": "accepted", "ref": data["id"][::-1]} if created else data


def test_create_answered_without_an_id_never_pays_twice(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    NoIdProfile().install(fake)
    path = request_file(tmp_path)
    code, _, err = run_cli(capsys, "start-batch", path)
    assert_clean_error(code, err, "without a batch id", "chat-complete")
    assert fake.batch_create_count == 1
    code, _, err = run_cli(capsys, "start-batch", path)
    assert_clean_error(code, err, "without a batch id", "--force")
    assert fake.batch_create_count == 1
    fake.profile = None
    code, _, err = run_cli(capsys, "start-batch", path, "--force")
    assert code == 0, err
    assert fake.batch_create_count == 2


def test_wait_on_a_status_it_cannot_read_stops_and_says_so(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    CompatibleProfile(drop_batch_fields=("status",)).install(fake)
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path)[0] == 0
    code, _, err = run_cli(capsys, "get-batch-results", path, *WAIT)
    assert_clean_error(code, err, "stopped waiting", "unknown (no status)")
    code, out, err = run_cli(capsys, "get-batch-results", path)
    assert "unknown (no status)" in out + err


# ------------------------------------------------------------------------ compatible shapes


def test_list_without_cursors_stops(fake: FakeOpenAI, tmp_path: Path, capsys: Capsys) -> None:
    """has_more absent, `after` ignored: each batch once, and --limit 0 / --status end."""
    CompatibleProfile(no_cursors=True).install(fake)
    for i in range(3):
        path = request_file(tmp_path, rows=i + 1)
        assert run_cli(capsys, "start-batch", path)[0] == 0
    fake.log.clear()
    code, listed = cli_json(capsys, "list-batches", "--limit", "0")
    assert code == 0 and sorted(b["id"] for b in listed) == sorted(fake.batches)
    code, listed = cli_json(capsys, "list-batches", "--status", "failed")
    assert code == 0 and listed == []
    assert len(fake.log) <= 4


def test_missing_created_at_and_input_file_id(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    CompatibleProfile(drop_batch_fields=("created_at", "input_file_id")).install(fake)
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path)[0] == 0
    code, out, err = run_cli(capsys, "get-batch-results", path, "-o", "out.jsonl", *WAIT)
    assert code == 0, err
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 0 and "Traceback" not in err
    (batch_id,) = fake.batches
    assert batch_id in out


def test_strict_mode_reports_and_does_not_block(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_BATCH_STRICT=1 against Groq-like file objects (no `status`): the upload works."""
    monkeypatch.setenv("OPENAI_BATCH_STRICT", "1")
    groq_like().install(fake)
    code, _out, err = run_cli(capsys, "upload-batch-file", request_file(tmp_path))
    assert code == 0, err
    assert "strict:" in err and "status" in err
    assert fake.upload_count == 1


# ------------------------------------------------------------------------ Azure


def test_azure_slides_workflow_with_every_documented_shape(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch)
    monkeypatch.setenv("OPENAI_BATCH_STRICT", "1")
    template, data = make_small(tmp_path)
    assert run_cli(capsys, "make-batch-file", template, data, "-q")[0] == 0
    code, out, err = run_cli(capsys, "upload-batch-file", "batch-requests.jsonl")
    assert code == 0, err
    (file_id,) = [w for w in out.split() if w.startswith("file-")]
    code, out, err = run_cli(capsys, "start-batch", file_id)
    assert code == 0, err
    (batch_id,) = fake.batches
    # while validating: "Validating", null counts, null endpoint, ISO times
    fake.auto_advance = False
    code, out, err = run_cli(capsys, "get-batch-results", batch_id)
    assert "Traceback" not in err and f"{batch_id}  validating" in out
    assert "no request counts yet" in out and "Endpoint:    -" in out
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 0 and "None/None" not in out and batch_id in out
    fake.auto_advance = True
    code, out, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "r.csv", *WAIT)
    assert code == 0, err
    rows = read_csv(tmp_path / "r.csv")
    assert [r["Name"] for r in rows] == [f"P{i}" for i in range(6)]
    assert all(f"Hi P{i}" in r["content"] for i, r in enumerate(rows))
    error_file = fake.batches[batch_id].error_file_id
    assert error_file and fake.file_content(error_file) == b""  # the 0-byte error file


def test_azure_run_wait_csv(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch)
    template, data = make_small(tmp_path)
    code, _, err = run_cli(capsys, "run", template, data, "--csv", "r.csv", *WAIT)
    assert code == 0, err
    assert len(read_csv(tmp_path / "r.csv")) == 6
    code, _out, err = run_cli(capsys, "run", template, data, "--csv", "r.csv", *WAIT)
    assert code == 0, err
    assert fake.batch_create_count == 1


def test_azure_failed_batch_with_documented_shapes(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch)
    fake.plan("failed")
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path)[0] == 0
    code, out, err = run_cli(capsys, "get-batch-results", path, *WAIT)
    assert code != 0 and "Traceback" not in err
    assert "FAILED" in out + err
