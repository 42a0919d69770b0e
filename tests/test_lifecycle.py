"""The batch lifecycle end to end: make -> upload -> start -> get-batch-results, and `run`.

Everything goes through the real CLI and the real `openai` SDK to the strict fake server
(tests/fake_openai.py), with `OPENAI_BATCH_STRICT=1` so every response is checked against the
SDK's schema.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import ROOT, cli_json, need_seed, read_csv, read_jsonl, run_cli
from openai_batch.ledger.requestfiles import RequestFileFacts
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BATCH_STRICT", "1")
    return fake_api


def make_small(tmp_path: Path, rows: int = 12, *, name: str = "people.csv") -> tuple[Path, Path]:
    """A template and a table whose answers are easy to check."""
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Say hello to <<Name>>"}],
            }
        ),
        encoding="utf-8",
    )
    data = tmp_path / name
    data.write_text(
        "Name,Note\n" + "".join(f"P{i},note {i}\n" for i in range(rows)), encoding="utf-8"
    )
    return template, data


SLIDES_WAIT = ("--wait", "--poll-interval", "0.01")


def test_slides_workflow_on_the_seed_fixtures_joins_real_output(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    """make -> upload -> start -> get-batch-results --csv, the fake serving the REAL recorded
    responses (shuffled): every CSV row carries the answer recorded for its own persona."""
    seed = need_seed()
    fake.use_recorded_responses(seed / "batch-responses.openai.jsonl")
    personas = seed / "simulated_survey_personas.csv"
    code, out, _ = run_cli(capsys, "make-batch-file", seed / "config.json", personas, "-q")
    assert code == 0 and "Batch file created: batch-requests.jsonl" in out

    code, out, _ = run_cli(capsys, "upload-batch-file", "batch-requests.jsonl")
    assert code == 0
    assert "Uploaded batch file: batch-requests.jsonl" in out
    (file_id,) = [w for w in out.split() if w.startswith("file-")]
    assert fake.files[file_id].purpose == "batch"
    assert fake.file_content(file_id) == Path("batch-requests.jsonl").read_bytes()

    code, started = cli_json(capsys, "start-batch", file_id)
    assert code == 0
    (batch,) = started
    assert batch["status"] == "validating" and batch["input_file_id"] == file_id
    assert batch["metadata"] == {"description": "batch job"}
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"

    code, out, err = run_cli(
        capsys, "get-batch-results", batch["id"], "--csv", "results.csv", *SLIDES_WAIT
    )  # not --quiet: the status view is what this step checks
    assert code == 0, err
    assert f"{batch['id']}  completed" in out
    assert "Requests:    100 completed, 0 failed of 100 total" in out
    for step in ("created", "in progress", "finalizing", "completed"):
        assert f"  {step}\n" in out
    assert "Completion time:" in out

    # responses: the recorded lines, verbatim, in request order
    recorded = {
        json.loads(line)["custom_id"]: line
        for line in (seed / "batch-responses.openai.jsonl").read_text("utf-8").splitlines()
    }
    lines = Path("batch-responses.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(x)["custom_id"] for x in lines] == [f"id_{i}" for i in range(100)]
    assert lines == [recorded[f"id_{i}"] for i in range(100)]
    assert [x["custom_id"] for x in fake.output_lines(batch["id"])] != [
        f"id_{i}" for i in range(100)
    ]  # the fake really shuffled them

    # the CSV: every persona row, in order, with its own answer
    rows = read_csv(Path("results.csv"))
    with open(personas, newline="", encoding="utf-8") as fh:
        originals = list(csv.DictReader(fh))
    assert len(rows) == 100
    for i, (row, original) in enumerate(zip(rows, originals, strict=True)):
        answer = json.loads(recorded[f"id_{i}"])["response"]["body"]
        assert {k: row[k] for k in original} == original
        assert row["custom_id"] == f"id_{i}" and row["status"] == "ok"
        assert row["content"] == answer["choices"][0]["message"]["content"]
        assert row["prompt_tokens"] == str(answer["usage"]["prompt_tokens"])
        assert row["completion_tokens"] == str(answer["usage"]["completion_tokens"])
        assert row["finish_reason"] == "stop" and row["error"] == "" and row["refusal"] == ""
    # the persona named in each answer is the one on its row (no answer on the wrong row)
    assert rows[0]["content"].startswith("As Hank Rodriguez, a 28-year-old")
    assert originals[0]["Description"].startswith("Hank Rodriguez is a 28 year old")


def test_run_wait_csv_on_sample_data_then_rerun_starts_nothing_new(
    fake: FakeOpenAI, capsys: Capsys
) -> None:
    template = ROOT / "templates" / "persona_survey.json"
    data = ROOT / "sample_data" / "personas.csv"
    if not template.is_file() or not data.is_file():
        pytest.skip("sample data not present")
    args = ("run", template, data, "--csv", "out.csv", *SLIDES_WAIT)
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "Batch file created: batch-requests.jsonl" in out
    assert "Started batch: batch_" in out
    assert "Table written to: out.csv (120 rows: 120 ok, 0 error)" in out
    rows = read_csv(Path("out.csv"))
    with open(data, newline="", encoding="utf-8") as fh:
        originals = list(csv.DictReader(fh))
    assert [r["ID"] for r in rows] == [o["ID"] for o in originals]
    for i, row in enumerate(rows):
        # the fake answers "Fake answer for <custom_id>: <last user text>"
        assert row["content"].startswith(f"Fake answer for id_{i}:")
    assert fake.upload_count == 1 and fake.batch_create_count == 1
    first_csv = Path("out.csv").read_bytes()

    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "Already started: batch_" in out
    assert fake.upload_count == 1 and fake.batch_create_count == 1
    assert Path("out.csv").read_bytes() == first_csv


def test_run_on_seed_fixtures_with_real_responses(fake: FakeOpenAI, capsys: Capsys) -> None:
    seed = need_seed()
    fake.use_recorded_responses(seed / "batch-responses.openai.jsonl")
    code, report = cli_json(
        capsys,
        "run",
        seed / "config.json",
        seed / "simulated_survey_personas.csv",
        "-o",
        "reqs.jsonl",
        "--responses",
        "answers.jsonl",
        "--csv",
        "answers.csv",
        *SLIDES_WAIT,
    )
    assert code == 0
    assert report["finished"] is True
    assert report["csv"]["rows"] == 100 and report["csv"]["ok"] == 100
    assert report["batches"][0]["status"] == "completed"
    assert report["batches"][0]["openai_batch"]["duration_seconds"] > 0
    assert [e["event"] for e in report["batches"][0]["openai_batch"]["timeline"]] == [
        "created",
        "in progress",
        "finalizing",
        "completed",
    ]
    assert [x["custom_id"] for x in read_jsonl(Path("answers.jsonl"))] == [
        f"id_{i}" for i in range(100)
    ]
    rows = read_csv(Path("answers.csv"))
    assert [r["ID"] for r in rows] == [str(i) for i in range(1, 101)]


def test_run_without_wait_prints_how_to_follow_and_results_by_path(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_small(tmp_path)
    code, out, _ = run_cli(capsys, "run", template, data, "-o", "small.jsonl", "-q")
    assert code == 0
    assert "get-batch-results batch_" in out and "--wait" in out
    # the request file stands for its batch; the ledger knows the data for the join
    code, out, err = run_cli(
        capsys, "get-batch-results", "small.jsonl", "--csv", "t.csv", *SLIDES_WAIT
    )
    assert code == 0, err
    rows = read_csv(Path("t.csv"))
    assert [(r["Name"], r["Note"], r["status"]) for r in rows] == [
        (f"P{i}", f"note {i}", "ok") for i in range(12)
    ]
    assert all(
        r["content"] == f"Fake answer for id_{i}: Say hello to P{i}" for i, r in enumerate(rows)
    )


def test_get_batch_results_before_the_end_downloads_nothing(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_small(tmp_path)
    run_cli(capsys, "make-batch-file", template, data, "-q")
    code, started = cli_json(capsys, "start-batch", "batch-requests.jsonl")
    fake.auto_advance = False
    fake.advance(steps=2)
    code, out, _ = run_cli(capsys, "get-batch-results", started[0]["id"])
    assert code == 0
    assert "in_progress" in out and "not finished yet" in out
    assert "Running for:" in out
    assert not Path("batch-responses.jsonl").exists()
    code, report = cli_json(capsys, "get-batch-results", started[0]["id"])
    assert report["finished"] is False and report["batches"][0]["status"] == "in_progress"


def test_sharded_run_joins_every_row_once(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    template, data = make_small(tmp_path, rows=25)
    code, report = cli_json(
        capsys, "run", template, data, "--max-requests", "10", "--csv", "all.csv", *SLIDES_WAIT
    )
    assert code == 0
    assert [f["requests"] for f in report["make"]["files"]] == [10, 10, 5]
    assert len(report["batches"]) == 3 and fake.batch_create_count == 3
    rows = read_csv(Path("all.csv"))
    assert [r["Name"] for r in rows] == [f"P{i}" for i in range(25)]
    assert all(r["status"] == "ok" and r["custom_id"] == f"id_{i}" for i, r in enumerate(rows))
    lines = read_jsonl(Path("batch-responses.jsonl"))
    assert [x["custom_id"] for x in lines] == [f"id_{i}" for i in range(25)]

    # one shard alone: only its rows
    code, _, _ = run_cli(
        capsys,
        "get-batch-results",
        "batch-requests-002.jsonl",
        "-o",
        "two.jsonl",
        "--csv",
        "two.csv",
        "--quiet",
    )
    assert code == 0
    assert [r["Name"] for r in read_csv(Path("two.csv"))] == [f"P{i}" for i in range(10, 20)]


def test_structured_output_gets_one_column_per_key(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template = ROOT / "templates" / "spam_classifier.json"
    data = ROOT / "sample_data" / "emails.csv"
    if not template.is_file() or not data.is_file():
        pytest.skip("sample data not present")
    code, _, err = run_cli(
        capsys,
        "run",
        template,
        data,
        "--id-column",
        "EmailID",
        "--csv",
        "spam.csv",
        *SLIDES_WAIT,
    )
    assert code == 0, err
    rows = read_csv(Path("spam.csv"))
    assert len(rows) == 40
    assert rows[0]["custom_id"] == "id_e001"
    assert all(r["class_label"] in ("spam", "not_spam") for r in rows)
    assert all(json.loads(r["content"])["class_label"] == r["class_label"] for r in rows)


@pytest.mark.parametrize("endpoint", ["/v1/responses", "/v1/embeddings"])
def test_other_endpoints_fill_content(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, endpoint: str
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text\nalpha\nbeta\n", encoding="utf-8")
    template = tmp_path / "t.json"
    if endpoint == "/v1/responses":
        template.write_text('{"model": "gpt-4.1-mini", "input": "Echo <<text>>"}', "utf-8")
    else:
        template.write_text('{"model": "text-embedding-3-small", "input": "<<text>>"}', "utf-8")
    code, _, err = run_cli(
        capsys, "run", template, data, "--endpoint", endpoint, "--csv", "o.csv", *SLIDES_WAIT
    )
    assert code == 0, err
    rows = read_csv(Path("o.csv"))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    if endpoint == "/v1/responses":
        assert rows[0]["content"] == "Fake answer for id_0: Echo alpha"
        assert rows[0]["finish_reason"] == "completed"
        assert int(rows[0]["completion_tokens"]) > 0
    else:
        vector = json.loads(rows[1]["content"])
        assert isinstance(vector, list) and len(vector) == 16
        assert rows[1]["completion_tokens"] == ""


def test_retry_batches_merge_latest_success_wins(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """A request file, a retry file made from its failures (recorded with its parent, as
    `utils retry-failed` does), and get-batch-results on the original: every row ok."""
    template, data = make_small(tmp_path, rows=9)
    fake.plan(fail_custom_ids={"id_1", "id_4", "id_7"}, error_status=500)
    code, _, _ = run_cli(capsys, "run", template, data, "--csv", "first.csv", *SLIDES_WAIT)
    assert code == 4
    first = read_csv(Path("first.csv"))
    assert [r["status"] for r in first].count("error") == 3
    assert first[1]["error"].startswith("server_error")

    retry = tmp_path / "retry.jsonl"
    failed = {r["custom_id"] for r in first if r["status"] != "ok"}
    lines = [
        x
        for x in Path("batch-requests.jsonl").read_text("utf-8").splitlines()
        if json.loads(x)["custom_id"] in failed
    ]
    retry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from openai_batch.requestfile.scan import scan_request_file

    parent = scan_request_file(Path("batch-requests.jsonl"))
    with open_ledger() as ledger:
        ledger.record_request_file(
            RequestFileFacts(retry, scan_request_file(retry).digest, parent_digest=parent.digest)
        )
    code, started = cli_json(capsys, "start-batch", retry)
    assert code == 0
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch-requests.jsonl", "--csv", "merged.csv", *SLIDES_WAIT
    )
    assert code == 0, err
    merged = read_csv(Path("merged.csv"))
    assert [r["Name"] for r in merged] == [f"P{i}" for i in range(9)]
    assert all(r["status"] == "ok" for r in merged)
    responses = read_jsonl(Path("batch-responses.jsonl"))
    assert [x["custom_id"] for x in responses] == [f"id_{i}" for i in range(9)]
    assert all(x["response"]["status_code"] == 200 for x in responses)

    # the two batch ids given explicitly merge the same way
    first_id = next(b for b in fake.batches if b != started[0]["id"])
    code, _, _ = run_cli(
        capsys, "get-batch-results", first_id, started[0]["id"], "-o", "ids.jsonl", "--quiet"
    )
    assert code == 0
    assert [x["custom_id"] for x in read_jsonl(Path("ids.jsonl"))] == [f"id_{i}" for i in range(9)]


def test_order_without_ledger_is_natural_or_from_requests(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template, data = make_small(tmp_path, rows=12)
    code, _, _ = run_cli(capsys, "run", template, data, *SLIDES_WAIT)
    assert code == 0
    (batch_id,) = fake.batches
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "empty-home"))  # another machine
    code, _, err = run_cli(capsys, "get-batch-results", batch_id, "-o", "nat.jsonl", "-q")
    assert code == 0, err
    assert [x["custom_id"] for x in read_jsonl(Path("nat.jsonl"))] == [
        f"id_{i}" for i in range(12)
    ]  # id_2 before id_10
    backwards = tmp_path / "backwards.jsonl"
    lines = Path("batch-requests.jsonl").read_text("utf-8").splitlines()[::-1]
    backwards.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, _ = run_cli(
        capsys,
        "get-batch-results",
        batch_id,
        "-o",
        "rev.jsonl",
        "--requests",
        backwards,
        "--csv",
        "rev.csv",
        "--data",
        data,
        "-q",
    )
    assert code == 0
    assert [x["custom_id"] for x in read_jsonl(Path("rev.jsonl"))] == [
        f"id_{i}" for i in range(11, -1, -1)
    ]
    rows = read_csv(Path("rev.csv"))  # the CSV follows the data's row order
    assert [(r["Name"], r["custom_id"]) for r in rows] == [(f"P{i}", f"id_{i}") for i in range(12)]


def test_changed_data_is_not_joined_silently(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_small(tmp_path, rows=5)
    assert run_cli(capsys, "run", template, data, *SLIDES_WAIT)[0] == 0
    data.write_text("Name,Note\nZed,inserted first\n" + data.read_text("utf-8").split("\n", 1)[1])
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch-requests.jsonl", "--csv", "x.csv", "-q"
    )
    assert code == 1 and "changed since the request file was made" in err
    assert "Traceback" not in err and not Path("x.csv").exists()
    # the original table given explicitly is trusted
    original = tmp_path / "original.csv"
    original.write_text("Name,Note\n" + "".join(f"P{i},note {i}\n" for i in range(5)))
    code, _, err = run_cli(
        capsys,
        "get-batch-results",
        "batch-requests.jsonl",
        "--csv",
        "x.csv",
        "--data",
        original,
        "-q",
    )
    assert code == 0, err
    assert [r["Name"] for r in read_csv(Path("x.csv"))] == [f"P{i}" for i in range(5)]
    # a request file made again with other content no longer stands for the old batch
    assert run_cli(capsys, "make-batch-file", template, data, "-q")[0] == 0
    code, _, err = run_cli(capsys, "get-batch-results", "batch-requests.jsonl")
    (batch_id,) = fake.batches
    assert code == 1 and "changed since its batches were started" in err and batch_id in err


def test_list_batches_pages_through_everything(fake: FakeOpenAI, capsys: Capsys) -> None:
    client = fake.client()
    upload = client.files.create(
        file=(
            "r.jsonl",
            b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
            b'"body": {"model": "m", "messages": []}}\n',
        ),
        purpose="batch",
    )
    ids = [
        client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"description": f"job {i}"},
        ).id
        for i in range(105)
    ]
    fake.finish(ids[0])
    fake.log.clear()
    code, listed = cli_json(capsys, "list-batches", "--limit", "0")
    assert code == 0
    assert [b["id"] for b in listed] == ids[::-1]  # newest first, all pages
    assert sum(1 for m, p, _ in fake.log if m == "GET" and p == "/v1/batches") == 2

    code, out, _ = run_cli(capsys, "list-batches", "-n", "3")
    lines = out.splitlines()
    assert lines[0].split() == ["id", "created", "status", "completed/failed/total", "description"]
    assert len(lines) == 4 and lines[1].startswith(ids[-1]) and lines[1].endswith("job 104")
    code, listed = cli_json(capsys, "list-batches", "--status", "completed")
    assert [b["id"] for b in listed] == [ids[0]]
    code, out, err = run_cli(capsys, "list-batches", "--status", "bogus")
    assert code != 0 and "Traceback" not in err


def test_cancel_batch_keeps_partial_results(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_small(tmp_path, rows=9)
    run_cli(capsys, "make-batch-file", template, data, "-q")
    code, started = cli_json(capsys, "start-batch", "batch-requests.jsonl")
    batch_id = started[0]["id"]
    fake.auto_advance = False
    fake.advance(batch_id, steps=2)  # in progress, a third done
    code, out, _ = run_cli(capsys, "cancel-batch", batch_id)
    assert code == 0 and f"{batch_id}  cancelling" in out
    fake.auto_advance = True
    code, out, err = run_cli(capsys, "get-batch-results", batch_id, "--csv", "c.csv", *SLIDES_WAIT)
    assert code == 4, err
    assert "CANCELLED" in out
    rows = read_csv(Path("c.csv"))
    statuses = [r["status"] for r in rows]
    assert len(rows) == 9 and "ok" in statuses and "missing" in statuses
    code, out, _ = run_cli(capsys, "cancel-batch", batch_id)
    assert code == 0 and "nothing to cancel" in out


def test_json_outputs_carry_the_api_objects(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_small(tmp_path, rows=3)
    run_cli(capsys, "make-batch-file", template, data, "-q")
    code, uploads = cli_json(capsys, "upload-batch-file", "batch-requests.jsonl")
    assert code == 0
    (up,) = uploads
    assert up["object"] == "file" and up["purpose"] == "batch" and up["id"].startswith("file-")
    assert up["openai_batch"]["requests"] == 3 and up["openai_batch"]["reused"] is False
    code, started = cli_json(
        capsys,
        "start-batch",
        "batch-requests.jsonl",
        "--description",
        "test run",
        "--metadata",
        "owner=me",
        "--metadata",
        "project=x=y",
    )
    (batch,) = started
    assert batch["object"] == "batch" and batch["input_file_id"] == up["id"]
    assert batch["metadata"] == {"description": "test run", "owner": "me", "project": "x=y"}
    assert batch["openai_batch"]["reused"] is False
    code, report = cli_json(capsys, "get-batch-results", batch["id"], *SLIDES_WAIT)
    assert code == 0 and report["finished"] is True
    assert report["responses"]["lines"] == 3
    assert report["downloads"][0]["output"].endswith(".jsonl")
    code, cancelled = cli_json(capsys, "cancel-batch", batch["id"])
    assert cancelled[0]["status"] == "completed"


def test_uploads_report_progress_in_bytes_as_they_stream(fake_api, tmp_path):
    from openai_batch.service.connection import connect
    from openai_batch.service.file_calls import upload_file

    lines = [
        json.dumps({"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini",
                             "messages": [{"role": "user", "content": "x" * 1000}]}})
        for i in range(300)
    ]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reports: list[int] = []
    uploaded = upload_file(connect(), path, progress=reports.append)
    assert sum(reports) == path.stat().st_size == uploaded.bytes
    assert len(reports) > 2  # streamed in blocks, not reported once at the end
    assert fake_api.file_content(uploaded.id) == path.read_bytes()


def test_a_request_file_changed_while_it_uploads_is_deleted_not_recorded(
    fake_api, tmp_path, capsys
):
    """Checked, then edited before its upload ended: the bytes sent were never checked and
    would be recorded under the checked file's digest. The upload is deleted, nothing is
    recorded, and the next start checks the file again."""
    from openai_batch.errors import BatchError
    from openai_batch.flow.submit import ensure_uploaded
    from openai_batch.ledger.digests import digest_of
    from openai_batch.service.connection import connect

    line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "temperature": 1,
                     "messages": [{"role": "user", "content": "x" * 1000}]}}  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({**line, "custom_id": f"id_{i}"}) + "\n"
                            for i in range(300)), encoding="utf-8")  # fmt: skip
    checked = digest_of(path)
    edited = path.read_text(encoding="utf-8").replace('"temperature": 1', '"temperature": 5')

    def edit_once(_sent: int) -> None:
        if path.read_text(encoding="utf-8") != edited:
            path.write_text(edited, encoding="utf-8")

    conn = connect()
    with open_ledger() as ledger, pytest.raises(BatchError, match="changed between its check"):
        ensure_uploaded(conn, ledger, path, progress=edit_once)
    assert [f.deleted for f in fake_api.files.values()] == [True]  # the upload was deleted
    with open_ledger() as ledger:
        assert ledger.uploads_for(conn.service, checked) == []
    code, _, err = run_cli(capsys, "start-batch", path)
    assert code != 0 and "temperature" in err and fake_api.batch_create_count == 0
