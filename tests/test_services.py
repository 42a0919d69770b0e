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
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0")


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
    code, listed = cli_json(capsys, "list-batches", "--status", "unknown")
    assert code == 0 and [b["id"] for b in listed] == list(fake.batches)


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


def test_azure_fail_fast_create_is_queued_and_started_later(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 token_limit_exceeded on the create itself: queued like the quota, never exit 3."""
    use_azure(fake, monkeypatch, fail_fast=1)
    path = request_file(tmp_path)
    code, _, err = run_cli(capsys, "start-batch", path)
    assert code == 0, err
    assert "queued" in err and "Traceback" not in err
    job = next(line.split()[1] for line in err.splitlines() if line.startswith("Job ")).rstrip(":")
    code, _out, err = run_cli(capsys, "get-batch-results", "--job", job, *WAIT)
    assert code == 0, err
    assert fake.batch_create_count == 1
    assert len(read_jsonl(tmp_path / "batch-responses.jsonl")) == 4


def test_azure_fail_fast_in_run(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch, fail_fast=3)
    template, data = make_small(tmp_path)
    code, _, err = run_cli(capsys, "run", template, data, "--csv", "r.csv", *WAIT)
    assert "token_limit_exceeded" in err
    assert code == 0, err
    assert len(read_csv(tmp_path / "r.csv")) == 6 and fake.batch_create_count == 1


def test_azure_defaults_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Azure: a minute between status calls, 100,000 requests a file, "/chat/completions"."""
    from openai_batch.service.connection import connect

    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://example-resource.openai.azure.com/")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    conn = connect()
    assert conn.profile.name == "azure" and conn.profile.poll_interval == 60.0
    assert conn.profile.limits.requests == 100_000
    assert conn.profile.limits.canonical_url("/chat/completions") == "/v1/chat/completions"


def test_azure_unversioned_urls_are_valid_only_for_azure(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = request_file(tmp_path, url="/chat/completions")  # as Azure's guide writes lines
    code, _, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 1
    assert run_cli(capsys, "utils", "validate", path, "--service", "azure")[0] == 0
    use_azure(fake, monkeypatch)
    code, _, err = run_cli(capsys, "start-batch", path)
    assert code == 0, err
    code, _, err = run_cli(capsys, "get-batch-results", path, "-o", "out.jsonl", *WAIT)
    assert code == 0, err
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4


def test_azure_split_allows_100000_requests(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    template, data = make_small(tmp_path)
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "--max-requests", "60000", "-q"
    )
    assert_clean_error(code, err, "50,000")
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "--max-requests", "60000", "--service",
        "azure", "-q",
    )  # fmt: skip
    assert code == 0, err


def test_azure_hints(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch)
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "0")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0" * 32)
    code, _, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "AZURE_OPENAI_API_KEY was rejected", "portal.azure.com")
    assert "platform.openai.com" not in err
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "expired-token")
    code, _, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "AZURE_OPENAI_AD_TOKEN was rejected")
    assert "OPENAI_API_KEY was rejected" not in err
    monkeypatch.delenv("AZURE_OPENAI_AD_TOKEN")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", fake.api_key)
    fake.inject("GET", r"/openai/batches$", 404, body={
        "error": {"code": "404", "message": "Resource not found"}})  # fmt: skip
    code, _, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "OPENAI_API_VERSION")


# ------------------------------------------------------------------------ compatible services


def test_groq_like_run_with_a_7d_window(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    groq_like().install(fake)
    monkeypatch.setenv("OPENAI_BATCH_SERVICE", "groq")
    template, data = make_small(tmp_path)
    args = ("--completion-window", "7d", "--csv", "r.csv")
    code, _, err = run_cli(capsys, "run", template, data, *args, *WAIT)
    assert code == 0, err
    assert len(read_csv(tmp_path / "r.csv")) == 6
    (batch,) = fake.batches.values()
    assert batch.completion_window == "7d" and batch.expires_at - batch.created_at == 7 * 86_400
    code, out, _ = run_cli(capsys, "get-batch-results", batch.id)
    assert "completion window 7d" in out
    code, _, err = run_cli(capsys, "run", template, data, *args, *WAIT)
    assert code == 0 and fake.batch_create_count == 1


def test_expired_note_speaks_of_the_batch_window(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    groq_like().install(fake)
    monkeypatch.setenv("OPENAI_BATCH_SERVICE", "groq")
    fake.plan("expired")
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path, "--completion-window", "48h")[0] == 0
    _code, out, err = run_cli(capsys, "get-batch-results", path, *WAIT)
    assert "EXPIRED after 48 hours" in out + err and "24 hours" not in out + err


def test_window_the_service_does_not_take_is_refused_before_paying(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    code, _, err = run_cli(
        capsys, "start-batch", request_file(tmp_path), "--completion-window", "7d"
    )
    assert_clean_error(code, err, "24h", "7d")
    assert fake.upload_count == 0 and fake.batch_create_count == 0


def test_per_service_limits_in_make_and_validate(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    template, data = make_small(tmp_path)
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "--max-bytes", "150MB", "--service", "groq"
    )
    assert_clean_error(code, err, "100MB", "Groq")
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "--endpoint", "/v1/responses",
        "--service", "deepinfra",
    )  # fmt: skip
    assert_clean_error(code, err, "DeepInfra takes no /v1/responses batches")
    path = request_file(tmp_path, url="/v1/moderations")
    code, out, _ = run_cli(capsys, "utils", "validate", path, "--service", "deepinfra")
    assert code == 1 and "DeepInfra takes no /v1/moderations batches" in out


def test_service_without_openais_batch_api_is_named_before_paying(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BATCH_SERVICE", "mistral")
    code, _, err = run_cli(capsys, "start-batch", request_file(tmp_path))
    assert_clean_error(code, err, "Mistral's batch API is not OpenAI's", "utils chat-complete")
    assert fake.upload_count == 0


def test_server_without_batches_says_what_it_lacks(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vllm serve` and the like: no /v1/files, no /v1/batches."""
    monkeypatch.setenv("OPENAI_BATCH_MAX_RETRIES", "0")
    fake.inject("POST", r"/v1/files$", 404, times=None)
    code, _, err = run_cli(capsys, "start-batch", request_file(tmp_path))
    assert_clean_error(code, err, "no OpenAI Files/Batches API", "utils chat-complete")


def test_upload_with_expiry(fake: FakeOpenAI, tmp_path: Path, capsys: Capsys) -> None:
    code, _out, err = run_cli(
        capsys, "upload-batch-file", request_file(tmp_path), "--expires-after", "7d"
    )
    assert code == 0, err
    (f,) = fake.files.values()
    assert f.expires_at is not None and f.expires_at - f.created_at == 7 * 86_400
    code, _, err = run_cli(
        capsys, "upload-batch-file", request_file(tmp_path), "--expires-after", "5m"
    )
    assert_clean_error(code, err, "1 hour to 30 days")


def test_delete_files_once_results_are_downloaded(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_azure(fake, monkeypatch)
    fake.plan(fail_every=2)  # an output and an error file
    path = request_file(tmp_path)
    assert run_cli(capsys, "start-batch", path)[0] == 0
    (batch_id,) = fake.batches
    code, out, err = run_cli(capsys, "utils", "delete-files", batch_id)
    assert code == 0 and "Deleted 0 files" in out and "still" in err  # running: all kept
    fake.auto_advance = False
    fake.finish()
    batch = fake.batches[batch_id]
    code, out, err = run_cli(capsys, "utils", "delete-files", batch_id)
    assert "Deleted 0 files" in out and "not downloaded yet" in err
    assert not any(f.deleted for f in fake.files.values())
    run_cli(capsys, "get-batch-results", batch_id, "-o", "out.jsonl")
    code, out, err = run_cli(capsys, "utils", "delete-files", batch_id, "--dry-run")
    assert code == 0 and "Would delete 3 files" in out
    assert not any(f.deleted for f in fake.files.values())
    code, out, err = run_cli(capsys, "utils", "delete-files", batch_id)
    assert code == 0 and "Deleted 3 files" in out
    for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
        assert fake.files[file_id].deleted
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4  # the results stay on this disk


def test_run_wait_on_a_status_it_cannot_read_stops_and_says_so(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    """The job path (run --wait) too: no status means no end, so waiting stops and says so."""
    CompatibleProfile(drop_batch_fields=("status",)).install(fake)
    template, data = make_small(tmp_path)
    code, _, err = run_cli(capsys, "run", template, data, *WAIT)
    assert_clean_error(code, err, "stopped waiting")
    code, _, err = run_cli(capsys, "run", template, data, *WAIT)
    assert fake.batch_create_count == 1


@pytest.mark.parametrize("scale", [1000, 10**12])
def test_times_in_milliseconds_or_nonsense_never_stop_the_workflow(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys, scale: int
) -> None:
    """created_at in milliseconds used to end list-batches and --wait in `year 58880 is out of
    range`; a clock past any unit used to lose the created batch's id (OverflowError)."""
    CompatibleProfile(time_scale=scale).install(fake)
    path = request_file(tmp_path)
    code, _out, err = run_cli(capsys, "start-batch", path)
    assert code == 0, err
    (batch_id,) = fake.batches
    with open_ledger() as ledger:
        assert ledger.batch(ledger_service(fake), batch_id) is not None
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 0 and batch_id in out, err
    code, _out, err = run_cli(capsys, "get-batch-results", path, "-o", "out.jsonl", *WAIT)
    assert code == 0, err
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 4


@pytest.mark.parametrize(
    ("variable", "command"),
    [
        ("OPENAI_BASE_URL", ("start-batch", "requests.jsonl")),
        ("OPENAI_BASE_URL", ("utils", "chat-complete", "requests.jsonl", "-o", "out.jsonl")),
        ("AZURE_OPENAI_ENDPOINT", ("list-batches",)),
    ],
)
def test_a_base_url_that_is_not_a_url_is_one_clear_error(
    fake: FakeOpenAI,
    tmp_path: Path,
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    command: tuple[str, ...],
) -> None:
    """`http://[::1` used to end in an httpx2.InvalidURL traceback from the SDK's constructor;
    commands that need no server (make-batch-file) still work with it set."""
    request_file(tmp_path)
    monkeypatch.setenv(variable, "http://[::1")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    code, _out, err = run_cli(capsys, *command)
    assert_clean_error(code, err, f"{variable} is not a valid URL")
    template, data = make_small(tmp_path)
    code, _out, err = run_cli(capsys, "make-batch-file", template, data, "-o", "made.jsonl")
    assert code == 0, err


def test_azure_style_urls_are_estimated_and_run_like_versioned_ones(
    fake: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    """`"url": "/chat/completions"` (Azure's guide) was estimated as 0 tokens ("not a
    token-priced endpoint") and refused by chat-complete as an unsupported url."""
    short = request_file(tmp_path, url="/chat/completions").rename(tmp_path / "short.jsonl")
    full = request_file(tmp_path)
    estimates = []
    for path in (short, full):
        code, report = cli_json(capsys, "utils", "estimate", path)
        assert code == 0
        estimates.append({k: v for k, v in report.items() if k not in ("files", "file")})
    assert estimates[0] == estimates[1]
    assert "not a token-priced" not in json.dumps(estimates[0])
    code, _out, err = run_cli(capsys, "utils", "chat-complete", short, "-o", "answers.jsonl")
    assert code == 0, err
    answers = read_jsonl(tmp_path / "answers.jsonl")
    assert sorted(a["custom_id"] for a in answers) == [f"id_{i}" for i in range(4)]
    assert all(a["response"]["status_code"] == 200 for a in answers)


def test_service_named_explicitly_wins_over_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from openai_batch.service.connection import connect

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.groq.com/openai/v1")
    assert connect().profile.name == "groq"
    assert connect(service="openai").profile.name == "openai"
    monkeypatch.setenv("OPENAI_BATCH_SERVICE", "openai")
    assert connect().profile.name == "openai"
