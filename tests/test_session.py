"""flow/session.py: what a session fetches, starts, uploads or cancels is in the ledger after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from fake_profiles import CompatibleProfile
from helpers import cli_json, run_cli
from openai_batch.errors import ApiError
from openai_batch.flow.session import UNRECOGNISED_PREFIX, Session
from openai_batch.ledger.digests import digest_of
from openai_batch.ledger.store import open_ledger
from openai_batch.service.batch_calls import UnrecognisedBatch, create_batch
from openai_batch.service.connection import connect
from openai_batch.service.file_calls import upload_file

Capsys = pytest.CaptureFixture[str]


def _requests(tmp_path: Path, rows: int = 3, name: str = "requests.jsonl") -> Path:
    path = tmp_path / name
    lines = [
        {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{name} {i}"}]}}
        for i in range(rows)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_upload_start_and_fetch_are_recorded(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    conn = connect()
    fake_api.auto_advance = False
    with open_ledger() as ledger:
        session = Session(conn, ledger)
        path = _requests(tmp_path)
        digest = digest_of(path)  # the upload is hashed again once sent: the real digest
        uploaded = session.upload(path, digest)
        assert ledger.upload(conn.service, uploaded.id) is not None
        batch = session.start(uploaded.id, "/v1/chat/completions", {"description": "x"})
        record = ledger.batch(conn.service, batch.id)
        assert record is not None and record.status == "validating"
        assert record.digest == digest  # found through the upload's digest
        fake_api.finish(batch.id)
        assert session.batch(batch.id).status == "completed"
        record = ledger.batch(conn.service, batch.id)
        assert record is not None and record.status == "completed" and record.output_file_id


def test_batches_in_order_each_recorded_also_through_list_pages(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    """24 batches: read through the list pages (service/status.py), every one recorded."""
    conn = connect()
    fake_api.auto_advance = False
    path = _requests(tmp_path, rows=1)
    file_id = upload_file(conn, path).id
    ids = [create_batch(conn, file_id, "/v1/chat/completions", None).id for _ in range(24)]
    fake_api.finish(ids[3])
    wanted = [ids[5], ids[3], *ids[6:], ids[5]]  # any order, a repeat
    with open_ledger() as ledger:
        session = Session(conn, ledger)
        got = session.batches(wanted)
        assert [b.id for b in got] == wanted
        for batch_id in set(wanted):
            record = ledger.batch(conn.service, batch_id)
            assert record is not None
            assert record.status == ("completed" if batch_id == ids[3] else "validating")
        assert ledger.batch(conn.service, ids[4]) is None  # not asked for: not recorded
        again = session.refreshed(got)
        assert [b.id for b in again] == wanted


def test_find_records_a_known_batch_and_none_for_an_unknown_one(
    fake_api: FakeOpenAI, tmp_path: Path
) -> None:
    conn = connect()
    file_id = upload_file(conn, _requests(tmp_path)).id
    batch = create_batch(conn, file_id, "/v1/chat/completions", None)
    unknown = "batch_" + "0" * 32
    with open_ledger() as ledger:
        session = Session(conn, ledger)
        assert session.find(unknown) is None
        assert ledger.batch(conn.service, unknown) is None
        with pytest.raises(ApiError, match="no batch"):
            session.batch(unknown)
        assert session.find(batch.id) is not None
        assert ledger.batch(conn.service, batch.id) is not None


class _NoIdProfile(CompatibleProfile):
    """A create answered with something that names no batch at all."""

    def batch(self, fake: FakeOpenAI, data: dict, *, created: bool) -> dict:
        return {"message": "accepted"} if created else data


def test_a_create_without_an_id_leaves_a_stand_in(fake_api: FakeOpenAI, tmp_path: Path) -> None:
    conn = connect()
    file_id = upload_file(conn, _requests(tmp_path)).id
    _NoIdProfile().install(fake_api)
    with open_ledger() as ledger:
        session = Session(conn, ledger)
        with pytest.raises(UnrecognisedBatch):
            session.start(file_id, "/v1/chat/completions", {}, digest="e" * 16)
        (record,) = ledger.batches_for(conn.service, input_file_id=file_id)
        assert record.batch_id.startswith(UNRECOGNISED_PREFIX) and record.digest == "e" * 16


def test_cancel_batch_records_what_it_did(
    fake_api: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, started = cli_json(capsys, "start-batch", _requests(tmp_path))
    assert code == 0
    batch_id = started[0]["id"]
    fake_api.auto_advance = False
    fake_api.advance(batch_id)
    assert run_cli(capsys, "cancel-batch", batch_id)[0] == 0
    with open_ledger() as ledger:
        record = ledger.batch(fake_api.base_url.rstrip("/"), batch_id)
        assert record is not None and record.status == "cancelling"


def test_list_batches_of_a_job_reads_list_pages_and_records_them(
    fake_api: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`list-batches --job` over 25 shards: a page or two, not 25 retrieves (service/status.py);
    the ledger learns each shard's status as it is shown."""
    shards = 25
    monkeypatch.chdir(tmp_path)
    template = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Name>>"}]}
    Path("t.json").write_text(json.dumps(template), encoding="utf-8")
    Path("d.csv").write_text("Name\n" + "".join(f"n{i}\n" for i in range(shards)), "utf-8")
    fake_api.auto_advance = False
    code, _, err = run_cli(
        capsys, "run", "t.json", "d.csv", "--max-requests", "1", "--job", "j", "-q"
    )
    assert code == 0, err
    fake_api.finish()
    since = len(fake_api.log)
    code, out, err = run_cli(capsys, "list-batches", "--job", "j")
    assert code == 0, err
    calls = [(m, p) for m, p, _ in fake_api.log[since:] if p.startswith("/v1/batches")]
    assert all(p == "/v1/batches" for _, p in calls) and 1 <= len(calls) <= 2, calls
    assert sum(line.split()[4] == "completed" for line in out.splitlines()[1:]) == shards
    with open_ledger() as ledger:
        service = fake_api.base_url.rstrip("/")
        records = [ledger.batch(service, b) for b in fake_api.batches]
    assert {r.status for r in records if r is not None} == {"completed"}
    assert all(r is not None for r in records)
