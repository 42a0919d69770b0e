"""One status pass over N unfinished shards costs about N/100 + a few requests (list pages),
not N retrieves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import read_csv, run_cli
from openai_batch.service.status import LIST_FROM

Capsys = pytest.CaptureFixture[str]
SHARDS = 30
TEMPLATE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}


@pytest.fixture
def job(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys):
    monkeypatch.chdir(tmp_path)
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f"n{i}\n" for i in range(SHARDS)), encoding="utf-8")
    fake_api.auto_advance = False
    code, _, err = run_cli(capsys, "run", "t.json", "d.csv", "--max-requests", "1", "--job", "j",
                           "-q")  # fmt: skip
    assert code == 0, err
    assert len(fake_api.batches) == SHARDS >= LIST_FROM
    return fake_api


def batch_gets(fake: FakeOpenAI, since: int) -> tuple[int, int]:
    """(list pages, single retrieves) of batches since log entry `since`."""
    lists = retrieves = 0
    for method, path, _status in fake.log[since:]:
        if method == "GET" and path == "/v1/batches":
            lists += 1
        elif method == "GET" and path.startswith("/v1/batches/"):
            retrieves += 1
    return lists, retrieves


def test_a_status_pass_lists_pages_instead_of_retrieving_each(
    job: FakeOpenAI, capsys: Capsys
) -> None:
    job.advance(steps=2)  # all in progress
    since = len(job.log)
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "j", "-q")
    assert code == 0, err
    lists, retrieves = batch_gets(job, since)
    assert retrieves == 0 and 1 <= lists <= 2, (lists, retrieves)

    job.finish()
    since = len(job.log)
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "j", "--csv", "o.csv", "-q")
    assert code == 0, err
    lists, retrieves = batch_gets(job, since)
    assert retrieves == 0 and lists <= 4, (lists, retrieves)
    assert [r["status"] for r in read_csv(Path("o.csv"))] == ["ok"] * SHARDS


def test_batches_the_pages_do_not_show_are_retrieved(job: FakeOpenAI, capsys: Capsys) -> None:
    """Newer work of other jobs pushes ours off the pages read: those are retrieved."""
    job.finish()
    client = job.client()
    line = b'{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}'
    upload = job.add_file(line + b"\n", "other.jsonl")
    for _ in range(350):  # someone else's batches, newer than ours
        client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                              completion_window="24h")  # fmt: skip
    since = len(job.log)
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "j", "--csv", "o.csv", "-q")
    assert code == 0, err
    lists, retrieves = batch_gets(job, since)
    assert lists <= 2 * (SHARDS // 100 + 1 + 2) and retrieves <= 2 * SHARDS, (lists, retrieves)
    assert [r["status"] for r in read_csv(Path("o.csv"))] == ["ok"] * SHARDS


def test_waiting_on_many_shards_moves_through_list_pages(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    fake_api.advance_on_list = True
    Path("t.json").write_text(json.dumps(TEMPLATE), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f"n{i}\n" for i in range(25)), encoding="utf-8")
    code, _, err = run_cli(capsys, "run", "t.json", "d.csv", "--max-requests", "1", "--wait",
                           "--poll-interval", "0", "--csv", "o.csv", "-q")  # fmt: skip
    assert code == 0, err
    assert len(read_csv(Path("o.csv"))) == 25
    lists, retrieves = batch_gets(fake_api, 0)
    assert retrieves < 25 < lists * 25, (lists, retrieves)


def test_another_tools_batch_with_a_bad_id_does_not_stop_the_pass(
    job: FakeOpenAI, capsys: Capsys
) -> None:
    """The list pages show every batch on the account: one whose id is not an id (another
    tool's, or a hostile server's) used to stop `--wait` for every job of 20 shards or more.
    Our own batches are still checked: they were read one by one when they were created."""
    from fake_profiles import Profile

    class ForeignBatch(Profile):
        def page(self, data: dict) -> dict:
            foreign = {**data["data"][0], "id": "../../not-ours", "output_file_id": "/tmp/x"}
            data["data"] = [foreign, *data["data"]]
            return data

    ForeignBatch().install(job)
    job.finish()
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "j", "--csv", "o.csv", "-q")
    assert code == 0, err
    assert [r["status"] for r in read_csv(Path("o.csv"))] == ["ok"] * SHARDS
