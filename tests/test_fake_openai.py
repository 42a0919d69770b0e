"""Tests of the fake OpenAI API itself, driven by the real `openai` SDK in strict mode.

If the fake drifts from the real schema, strict response validation (and the key-set checks
against the SDK's models) fail here before any project test is misled by it.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types import Batch, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from fake_openai import (
    FakeOpenAI,
    chat_completion_body,
    chat_request_line,
    error_body,
    estimate_tokens,
    jsonl_bytes,
)

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "seed-tool"


# ------------------------------------------------------------------------------ helpers


def upload(client: openai.OpenAI, lines: list[dict], name: str = "requests.jsonl") -> FileObject:
    return client.files.create(file=(name, jsonl_bytes(lines)), purpose="batch")


def start(
    client: openai.OpenAI, lines: list[dict], endpoint: str = "/v1/chat/completions"
) -> Batch:
    f = upload(client, lines)
    return client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]


def chat_lines(n: int, model: str = "gpt-4o-mini") -> list[dict]:
    return [chat_request_line(f"id_{i}", f"question {i}", model=model) for i in range(n)]


def raw_get(fake: FakeOpenAI, path: str) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    return httpx2.get(fake.base_url + path, headers=headers)


def download_lines(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    assert file_id is not None
    text = client.files.content(file_id).text
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def poll(client: openai.OpenAI, batch_id: str) -> list[Batch]:
    seen = []
    for _ in range(100):
        batch = client.batches.retrieve(batch_id)
        seen.append(batch)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return seen
    raise AssertionError("batch never finished")


@pytest.fixture
def client(fake_api: FakeOpenAI) -> openai.OpenAI:
    return fake_api.client(strict=True)


# ------------------------------------------------------------------------------ fixture


def test_fixture_points_the_default_client_at_the_fake(fake_api: FakeOpenAI) -> None:
    assert os.environ["OPENAI_BASE_URL"] == fake_api.base_url
    assert fake_api.base_url.startswith("http://127.0.0.1:") and fake_api.base_url.endswith("/v1")
    home = Path(os.environ["OPENAI_BATCH_HOME"])
    assert home.is_dir() and not str(home).startswith(str(Path.home()) + "/.")
    assert "OPENAI_ORG_ID" not in os.environ and "AZURE_OPENAI_ENDPOINT" not in os.environ
    openai.OpenAI().files.list()  # picks up key and base URL from the environment
    assert fake_api.log == [("GET", "/v1/files", 200)]


# ------------------------------------------------------------------------------ files


def test_upload_returns_a_real_file_object(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    f = upload(client, chat_lines(2), name="my-requests.jsonl")
    assert f.id.startswith("file-") and len(f.id) == len("file-") + 22
    assert f.filename == "my-requests.jsonl" and f.purpose == "batch" and f.status == "processed"
    assert f.bytes == len(jsonl_bytes(chat_lines(2)))
    assert f.expires_at == f.created_at + 30 * 86_400
    raw = raw_get(fake_api, f"/files/{f.id}").json()
    assert set(raw) == set(FileObject.model_fields)
    assert fake_api.upload_count == 1
    assert client.files.content(f.id).content == jsonl_bytes(chat_lines(2))


def test_upload_from_a_path_and_an_open_file(client: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "from-disk.jsonl"
    path.write_bytes(jsonl_bytes(chat_lines(3)))
    by_path = client.files.create(file=path, purpose="batch")
    with path.open("rb") as handle:
        by_handle = client.files.create(file=handle, purpose="batch")
    assert by_path.filename == by_handle.filename == "from-disk.jsonl"
    assert client.files.content(by_handle.id).content == path.read_bytes()


def test_chunked_multipart_upload_is_parsed(fake_api: FakeOpenAI) -> None:
    """Uploads of unknown length arrive chunked; the fake must read them, not hang or drop."""
    boundary = "xyzBOUNDARY"
    payload = jsonl_bytes(chat_lines(2))
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", fake_api.port, timeout=10)
    headers = {
        "Authorization": f"Bearer {fake_api.api_key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Transfer-Encoding": "chunked",
    }
    chunks = iter([body[:50], body[50:]])
    conn.request("POST", "/v1/files", body=chunks, headers=headers, encode_chunked=True)
    reply = conn.getresponse()
    data = json.loads(reply.read())
    assert reply.status == 200, data
    assert fake_api.file_content(data["id"]) == payload


@pytest.mark.parametrize(
    ("name", "purpose", "size_limit", "message"),
    [
        ("requests.csv", "batch", None, "Invalid file format for Batch API. Must be .jsonl"),
        ("requests.jsonl", "batch", 100, "exceeds the maximum"),
        ("requests.jsonl", "nonsense", None, "'nonsense' is not one of"),
    ],
)
def test_upload_rejections(
    fake_api: FakeOpenAI,
    client: openai.OpenAI,
    name: str,
    purpose: str,
    size_limit: int | None,
    message: str,
) -> None:
    if size_limit is not None:
        fake_api.max_batch_file_bytes = size_limit
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=(name, jsonl_bytes(chat_lines(5))), purpose=purpose)  # type: ignore[arg-type]
    assert message in info.value.message
    assert info.value.status_code == 400
    assert fake_api.upload_count == 0 and not fake_api.files


def test_other_purposes_do_not_expire(client: openai.OpenAI) -> None:
    f = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert f.expires_at is None


def test_list_files_paginates_filters_and_orders(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    ids = [upload(client, chat_lines(1), name=f"f{i}.jsonl").id for i in range(5)]
    other = client.files.create(file=("x.txt", b"x"), purpose="user_data").id
    page = client.files.list(limit=2, purpose="batch")
    assert [f.id for f in page.data] == ids[::-1][:2]
    assert page.has_more is True
    assert [f.id for f in client.files.list(limit=2, purpose="batch")] == ids[::-1]
    assert [f.id for f in client.files.list(order="asc")] == [*ids, other]
    assert sum(1 for (m, p, _) in fake_api.log if (m, p) == ("GET", "/v1/files")) == 5


def test_unknown_deleted_and_expired_files_are_404(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.files.retrieve("file-doesnotexist")
    assert info.value.message.endswith("No such File object: file-doesnotexist")
    assert info.value.body == {
        "message": "No such File object: file-doesnotexist",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }
    gone = upload(client, chat_lines(1))
    deleted = client.files.delete(gone.id)
    assert deleted.deleted is True and deleted.id == gone.id
    expired = upload(client, chat_lines(1))
    fake_api.expire_file(expired.id)
    for file_id in (gone.id, expired.id):
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)
        with pytest.raises(openai.NotFoundError):
            client.files.content(file_id)
        with pytest.raises(openai.NotFoundError):
            client.batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            )
    assert list(client.files.list()) == []


def test_time_travel_expires_batch_uploads_after_30_days(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    f = upload(client, chat_lines(1))
    keep = client.files.create(file=("k.txt", b"k"), purpose="user_data")
    fake_api.travel(29 * 86_400)
    assert client.files.retrieve(f.id).id == f.id
    fake_api.travel(2 * 86_400)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    assert client.files.retrieve(keep.id).id == keep.id


# ------------------------------------------------------------------------------ batch lifecycle


def test_batch_moves_forward_on_each_retrieve(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    batch = start(client, chat_lines(9))
    assert batch.status == "validating"
    assert batch.id.startswith("batch_") and len(batch.id) == len("batch_") + 32
    assert batch.expires_at == batch.created_at + 86_400
    assert batch.request_counts is not None and batch.request_counts.total == 0
    seen = poll(client, batch.id)
    statuses = [b.status for b in seen]
    assert statuses == [
        "in_progress",
        "in_progress",
        "in_progress",
        "in_progress",
        "finalizing",
        "completed",
    ]
    progress = [(b.request_counts.completed, b.request_counts.total) for b in seen[:4]]  # type: ignore[union-attr]
    assert progress == [(0, 9), (3, 9), (6, 9), (9, 9)]
    assert [s["completed"] for s in fake_api.batches[batch.id].seen] == [0, 3, 6, 9, 9, 9]
    done = seen[-1]
    assert done.created_at < done.in_progress_at < done.finalizing_at < done.completed_at  # type: ignore[operator]
    assert done.failed_at is None and done.errors is None and done.error_file_id is None
    assert done.model == "gpt-4o-mini"
    assert done.usage is not None and done.usage.total_tokens > 0
    raw = raw_get(fake_api, f"/batches/{batch.id}").json()
    assert set(raw) == set(Batch.model_fields)


def test_output_file_lines_look_like_the_real_service(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    batch = start(client, chat_lines(12))
    fake_api.finish(batch.id)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    output = client.files.retrieve(done.output_file_id)  # type: ignore[arg-type]
    assert output.purpose == "batch_output" and output.filename == f"{batch.id}_output.jsonl"
    lines = download_lines(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"id_{i}" for i in range(12))
    assert [line["custom_id"] for line in lines] != [f"id_{i}" for i in range(12)]  # shuffled
    for line in lines:
        assert list(line) == ["id", "custom_id", "response", "error"]
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert list(line["response"]) == ["status_code", "request_id", "body"]
        assert line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"])
        number = line["custom_id"].removeprefix("id_")
        assert completion.choices[0].message.content == (
            f"Fake answer for {line['custom_id']}: question {number}"
        )


def test_shuffle_is_seeded_and_reproducible() -> None:
    orders = []
    for _ in range(2):
        with FakeOpenAI(seed=7) as fake:
            client = fake.client()
            batch = start(client, chat_lines(20))
            fake.finish(batch.id)
            orders.append([line["custom_id"] for line in fake.output_lines(batch.id)])
    assert orders[0] == orders[1]
    assert orders[0] != [f"id_{i}" for i in range(20)]


def test_manual_driving_without_auto_advance(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_api.auto_advance = False
    batch = start(client, chat_lines(4))
    assert client.batches.retrieve(batch.id).status == "validating"
    fake_api.advance(batch.id)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    fake_api.advance(steps=2)
    counts = client.batches.retrieve(batch.id).request_counts
    assert counts is not None and (counts.completed, counts.total) == (4, 4)
    fake_api.finish()
    assert client.batches.retrieve(batch.id).status == "completed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "/v1/images"}, "Invalid value: '/v1/images'"),
        ({"completion_window": "48h"}, "Supported values are: '24h'"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "too many properties"),
        ({"metadata": {"k" * 65: "v"}}, "maximum length 64"),
        ({"metadata": {"k": "v" * 513}}, "maximum length 512"),
        ({"extra_body": {"colour": "blue"}}, "Unrecognized request argument supplied: colour"),
    ],
)
def test_batch_create_rejects_what_openai_rejects(
    fake_api: FakeOpenAI, client: openai.OpenAI, kwargs: dict[str, Any], message: str
) -> None:
    f = upload(client, chat_lines(1))
    params: dict[str, Any] = {
        "input_file_id": f.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **kwargs,
    }
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.create(**params)
    assert message in info.value.message
    assert not fake_api.batches


def test_batch_create_needs_a_batch_purpose_file(client: openai.OpenAI) -> None:
    f = client.files.create(file=("data.jsonl", jsonl_bytes(chat_lines(1))), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "purpose 'batch'" in info.value.message


def test_metadata_limits_at_the_edge_are_accepted(client: openai.OpenAI) -> None:
    f = upload(client, chat_lines(1))
    metadata = {f"k{i}": "v" for i in range(15)} | {"k" * 64: "v" * 512}
    batch = client.batches.create(
        input_file_id=f.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )
    assert batch.metadata == metadata


def _bad(index: int, **changes: Any) -> dict:
    line = chat_request_line(f"id_{index}", "q")
    line.update(changes)
    return line


@pytest.mark.parametrize(
    ("data", "code", "line"),
    [
        (jsonl_bytes([_bad(0), _bad(1), _bad(0)]), "duplicate_custom_id", 3),
        (jsonl_bytes([_bad(0), _bad(1, body={"model": "gpt-4o"})]), "model_mismatch", 2),
        (jsonl_bytes([_bad(0), _bad(1, url="/v1/embeddings")]), "url_mismatch", 2),
        (jsonl_bytes([_bad(0, method="GET")]), "invalid_method", 1),
        (jsonl_bytes([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}]),
         "missing_required_parameter", 1),
        (jsonl_bytes([_bad(0, body={"messages": []})]), "missing_required_parameter", 1),
        (jsonl_bytes([_bad(0)]) + b"{not json}\n", "invalid_json_line", 2),
        (b"\n", "empty_file", None),
        (jsonl_bytes([_bad(i) for i in range(4)]), "too_many_tasks", None),
    ],
)  # fmt: skip
def test_invalid_input_files_fail_the_batch(
    fake_api: FakeOpenAI, client: openai.OpenAI, data: bytes, code: str, line: int | None
) -> None:
    fake_api.max_batch_requests = 3
    f = client.files.create(file=("bad.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"  # content problems surface later, as in the service
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors is not None and failed.errors.object == "list"
    assert failed.errors.data is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [(code, line)]
    assert failed.errors.data[0].message
    assert failed.output_file_id is None and failed.error_file_id is None
    assert failed.in_progress_at is None
    assert failed.request_counts is not None and failed.request_counts.total == 0


def test_every_bad_line_is_reported(client: openai.OpenAI) -> None:
    lines = [_bad(0), _bad(0), _bad(1, url="/v1/x"), _bad(2)]
    batch = start(client, lines)
    failed = client.batches.retrieve(batch.id)
    assert failed.errors is not None and failed.errors.data is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [
        ("duplicate_custom_id", 2),
        ("url_mismatch", 3),
    ]


# ------------------------------------------------------------------------------ outcomes


def test_partial_failure_splits_output_and_error_files(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake_api.plan(fail_custom_ids={"id_1", "id_4"}, error_status=500)
    batch = start(client, chat_lines(6))
    done = poll(client, batch.id)[-1]
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (4, 2)
    ok = download_lines(client, done.output_file_id)
    errors = download_lines(client, done.error_file_id)
    assert sorted(line["custom_id"] for line in ok) == ["id_0", "id_2", "id_3", "id_5"]
    assert sorted(line["custom_id"] for line in errors) == ["id_1", "id_4"]
    for line in errors:
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    assert client.files.retrieve(done.error_file_id).filename == f"{batch.id}_error.jsonl"  # type: ignore[arg-type]


def test_all_failed_has_no_output_file(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_api.plan(fail_every=1, error_status=400)
    batch = start(client, chat_lines(3))
    done = poll(client, batch.id)[-1]
    assert done.status == "completed"
    assert done.output_file_id is None and done.error_file_id is not None
    errors = download_lines(client, done.error_file_id)
    assert {line["response"]["status_code"] for line in errors} == {400}


def test_fail_every_nth_request(fake_api: FakeOpenAI) -> None:
    client = fake_api.client()
    fake_api.plan(fail_every=3)
    batch = start(client, chat_lines(9))
    fake_api.finish(batch.id)
    failed = sorted(line["custom_id"] for line in fake_api.output_lines(batch.id, "error"))
    assert failed == ["id_2", "id_5", "id_8"]


def test_expired_batch_has_partial_output_and_batch_expired_lines(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake_api.plan("expired", stop_after=2, fail_custom_ids={"id_1"})
    batch = start(client, chat_lines(5))
    done = poll(client, batch.id)[-1]
    assert done.status == "expired" and done.expired_at is not None
    assert done.completed_at is None
    ok = download_lines(client, done.output_file_id)
    errors = download_lines(client, done.error_file_id)
    assert [line["custom_id"] for line in ok] == ["id_0"]
    by_id = {line["custom_id"]: line for line in errors}
    assert sorted(by_id) == ["id_1", "id_2", "id_3", "id_4"]
    assert by_id["id_1"]["response"]["status_code"] == 500
    for custom_id in ("id_2", "id_3", "id_4"):
        assert by_id[custom_id]["response"] is None
        assert by_id[custom_id]["error"]["code"] == "batch_expired"
        assert by_id[custom_id]["id"].startswith("batch_req_")


def test_unfinished_batches_expire_after_24_hours(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake_api.auto_advance = False
    batch = start(client, chat_lines(6))
    fake_api.advance(batch.id, steps=2)  # in progress, 2 of 6 done
    fake_api.travel(86_400)
    done = client.batches.retrieve(batch.id)
    assert done.status == "expired"
    assert len(download_lines(client, done.output_file_id)) == 2
    assert len(download_lines(client, done.error_file_id)) == 4


def test_cancel_goes_through_cancelling_and_keeps_partial_output(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake_api.auto_advance = False
    batch = start(client, chat_lines(6))
    fake_api.advance(batch.id, steps=2)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    fake_api.advance(batch.id)
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None
    assert (cancelled.request_counts.completed, cancelled.request_counts.total) == (2, 6)
    assert len(download_lines(client, cancelled.output_file_id)) == 2
    assert cancelled.error_file_id is None
    with pytest.raises(openai.BadRequestError) as info:
        client.batches.cancel(batch.id)
    assert "Cannot cancel a batch with status 'cancelled'" in info.value.message


def test_planned_cancellation(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_api.plan("cancelled")
    batch = start(client, chat_lines(4))
    seen = poll(client, batch.id)
    assert [b.status for b in seen][-2:] == ["cancelling", "cancelled"]
    assert len(download_lines(client, seen[-1].output_file_id)) == 2


def test_planned_failure_and_token_limit(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_api.plan("failed", errors=[{"code": "model_not_found", "message": "no such model"}])
    fake_api.plan(token_limit_exceeded=True)
    first, second, third = (start(client, chat_lines(2)) for _ in range(3))
    first_done = client.batches.retrieve(first.id)
    assert first_done.errors is not None and first_done.errors.data is not None
    assert first_done.errors.data[0].code == "model_not_found"
    second_done = client.batches.retrieve(second.id)
    assert second_done.status == "failed"
    assert second_done.errors is not None and second_done.errors.data is not None
    assert second_done.errors.data[0].code == "token_limit_exceeded"
    assert "Enqueued token limit reached" in (second_done.errors.data[0].message or "")
    assert poll(client, third.id)[-1].status == "completed"  # plans are used up


def test_enqueued_token_limit_and_in_flight_metrics(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake_api.auto_advance = False
    line_tokens = estimate_tokens(chat_lines(1)[0]["body"])
    fake_api.enqueued_token_limit = 5 * line_tokens
    first = start(client, chat_lines(3))
    second = start(client, chat_lines(3))
    assert fake_api.tokens_in_flight() == 6 * line_tokens
    fake_api.advance()
    assert client.batches.retrieve(first.id).status == "in_progress"
    over = client.batches.retrieve(second.id)
    assert over.status == "failed"
    assert over.errors is not None and over.errors.data is not None
    assert over.errors.data[0].code == "token_limit_exceeded"
    fake_api.finish()
    assert fake_api.tokens_in_flight() == 0
    assert fake_api.max_tokens_in_flight == 6 * line_tokens
    assert fake_api.max_concurrent_in_flight == 2
    assert fake_api.max_concurrent_in_progress == 1


def test_list_batches_newest_first_with_cursor_pages(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    ids = [start(client, chat_lines(1)).id for _ in range(5)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2]
    assert page.has_more is True
    raw = raw_get(fake_api, f"/batches?limit=2&after={ids[2]}").json()
    assert [b["id"] for b in raw["data"]] == [ids[1], ids[0]]
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (ids[1], ids[0], False)
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)


def test_unknown_batch_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.batches.retrieve("batch_nope")
    assert "batch_nope" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_nope")


# ------------------------------------------------------------------------------ responders


def test_structured_outputs_follow_the_json_schema(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "choice": {"type": "string", "enum": ["kawaii", "cubs", "futuristic"]},
            "reason": {"type": "string"},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "confidence": {"type": "number"},
            "keep": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "nested": {"$ref": "#/$defs/Nested"},
            "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["choice", "reason", "score", "confidence", "keep", "tags", "nested", "maybe"],
        "additionalProperties": False,
        "$defs": {"Nested": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "pick", "schema": schema, "strict": True}}
    lines = [chat_request_line(f"id_{i}", "pick one", response_format=fmt) for i in range(4)]
    batch = start(client, lines)
    fake_api.finish(batch.id)
    for line in fake_api.output_lines(batch.id):
        content = json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        assert set(content) == set(schema["properties"])
        assert content["choice"] in ("kawaii", "cubs", "futuristic")
        assert isinstance(content["score"], int) and 1 <= content["score"] <= 5
        assert isinstance(content["confidence"], float) and isinstance(content["keep"], bool)
        assert isinstance(content["tags"], list) and isinstance(content["nested"]["n"], int)
        assert isinstance(content["maybe"], str)
        assert content["reason"] == f"{line['custom_id']} reason"


def test_custom_responder_decides_status_and_body(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    def responder(request_line: dict) -> tuple[int, Any]:
        if request_line["custom_id"] == "id_0":
            return 400, error_body(400, "context too long", code="context_length_exceeded")
        return 200, chat_completion_body("gpt-4o", None, refusal="I can't help with that.")

    fake_api.responder = responder
    batch = start(client, chat_lines(2))
    fake_api.finish(batch.id)
    (error_line,) = fake_api.output_lines(batch.id, "error")
    assert error_line["response"]["body"]["error"]["code"] == "context_length_exceeded"
    (ok_line,) = fake_api.output_lines(batch.id)
    message = ChatCompletion.model_validate(ok_line["response"]["body"]).choices[0].message
    assert message.refusal == "I can't help with that." and message.content is None


def test_responses_and_embeddings_batches(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    responses = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-4.1-mini", "input": f"hello {i}"},
        }
        for i in range(2)
    ]
    embeddings = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": f"text {i}"},
        }
        for i in range(2)
    ]
    r_batch = start(client, responses, endpoint="/v1/responses")
    e_batch = start(client, embeddings, endpoint="/v1/embeddings")
    fake_api.finish()
    for line in fake_api.output_lines(r_batch.id):
        response = Response.model_validate(line["response"]["body"])
        assert (
            response.output_text
            == f"Fake answer for {line['custom_id']}: hello {line['custom_id'][1:]}"
        )
    for line in fake_api.output_lines(e_batch.id):
        vector = line["response"]["body"]["data"][0]["embedding"]
        assert len(vector) == fake_api.embedding_dimensions
        assert abs(sum(v * v for v in vector) - 1) < 1e-3


@pytest.mark.skipif(not SEED.is_dir(), reason="../shared/fixtures/seed-tool is not present")
def test_recorded_responses_are_served_verbatim(
    fake_api: FakeOpenAI, client: openai.OpenAI
) -> None:
    recorded = (SEED / "batch-responses.openai.jsonl").read_text().splitlines()
    fake_api.use_recorded_responses(SEED / "batch-responses.openai.jsonl")
    f = client.files.create(file=SEED / "batch-requests.jsonl", purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = poll(client, batch.id)[-1]
    assert done.status == "completed" and done.model == "gpt-4o"
    assert done.request_counts is not None and done.request_counts.completed == len(recorded)
    served = client.files.content(done.output_file_id).text.splitlines()  # type: ignore[arg-type]
    assert sorted(served) == sorted(recorded)
    assert served != recorded  # shuffled, as the real service does


# ------------------------------------------------------------------------------ sync endpoints


def test_sync_chat_responses_and_embeddings(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}]
    )
    assert chat.choices[0].message.content == "Fake answer: Say hi"
    assert chat.usage is not None and chat.usage.prompt_tokens == estimate_tokens(
        {"messages": [{"role": "user", "content": "Say hi"}]}
    )
    response = client.responses.create(model="gpt-4.1-mini", input="Hello")
    assert response.output_text == "Fake answer: Hello"
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1]
    # The SDK asks for base64 by default and decodes it after validation, so use lax mode.
    decoded = fake_api.client(strict=False).embeddings.create(
        model="text-embedding-3-small", input="a"
    )
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    headers = {"Authorization": f"Bearer {fake_api.api_key}"}
    reply = httpx2.post(
        fake_api.base_url + "/chat/completions", json={"model": "m"}, headers=headers
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "missing_required_parameter"


def test_sync_structured_output_parses(client: openai.OpenAI) -> None:
    from pydantic import BaseModel

    class Pick(BaseModel):
        choice: str
        score: int

    parsed = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "pick"}],
        response_format=Pick,
    )
    pick = parsed.choices[0].message.parsed
    assert pick is not None and isinstance(pick.score, int)


# ------------------------------------------------------------------------------ faults and auth


def test_wrong_key_is_401_and_never_echoed(fake_api: FakeOpenAI) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    bad = openai.OpenAI(api_key=wrong, base_url=fake_api.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.files.list()
    assert info.value.code == "invalid_api_key"
    assert wrong not in str(info.value) and "Incorrect API key provided" in info.value.message
    assert fake_api.log == [("GET", "/v1/files", 401)]


def test_injected_429_is_retried_by_the_sdk(fake_api: FakeOpenAI) -> None:
    client = fake_api.client(max_retries=3)
    fake_api.inject("POST", r"^/v1/files$", 429, times=2, retry_after_ms=5)
    f = upload(client, chat_lines(1))
    assert f.id in fake_api.files
    assert [s for (m, _, s) in fake_api.log if m == "POST"] == [429, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fake_api.requests] == ["0", "1", "2"]
    assert fake_api.upload_count == 1


def test_injected_500_beyond_the_retry_budget_surfaces(fake_api: FakeOpenAI) -> None:
    client = fake_api.client(max_retries=1)
    fake_api.inject("GET", r"/v1/batches/", 500, times=None, retry_after="0.001")
    with pytest.raises(openai.InternalServerError):
        client.batches.retrieve("batch_x")
    assert fake_api.log == [("GET", "/v1/batches/batch_x", 500)] * 2
    fake_api.clear_faults()
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_x")


def test_injected_404_and_401(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    fake_api.inject("*", r"/v1/files", 401)
    with pytest.raises(openai.AuthenticationError):
        client.files.list()
    fake_api.inject("GET", r"/v1/files", 404, body=error_body(404, "gone"))
    with pytest.raises(openai.NotFoundError) as info:
        client.files.list()
    assert info.value.body == error_body(404, "gone")["error"]
    assert client.files.list().data == []


def test_dropped_connection_is_retried(fake_api: FakeOpenAI) -> None:
    client = fake_api.client(max_retries=1)
    fake_api.inject_disconnect("GET", r"/v1/files")
    assert client.files.list().data == []
    assert [s for (_, _, s) in fake_api.log] == [0, 200]
    fake_api.inject_disconnect("GET", r"/v1/files", times=2)
    with pytest.raises(openai.APIConnectionError):
        client.files.list()


def test_broken_download(fake_api: FakeOpenAI, client: openai.OpenAI) -> None:
    payload = jsonl_bytes(chat_lines(50))
    f = client.files.create(file=("big.jsonl", payload), purpose="batch")
    fake_api.break_download(f.id)
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        client.files.with_streaming_response.content(f.id) as response,
    ):
        response.read()
    # A plain (non-streamed) read is retried by the SDK, and the next attempt is whole.
    fake_api.break_download(f.id)
    assert client.files.content(f.id).content == payload
    assert [s for (_, p, s) in fake_api.log if p.endswith("/content")] == [200, 200, 200]


def test_unknown_route_is_404_invalid_url(fake_api: FakeOpenAI) -> None:
    reply = raw_get(fake_api, "/batches/x/results")
    assert reply.status_code == 404
    assert reply.json()["error"]["message"] == "Invalid URL (GET /v1/batches/x/results)"
    assert reply.headers["x-request-id"].startswith("req_")


def test_azure_mode(fake_api: FakeOpenAI) -> None:
    fake_api.azure = True
    azure = openai.AzureOpenAI(
        azure_endpoint=fake_api.root_url,
        api_version="2024-10-21",
        api_key=fake_api.api_key,
        max_retries=0,
        _strict_response_validation=True,
    )
    lines = [chat_request_line(f"a{i}", "hi", url="/chat/completions") for i in range(2)]
    f = azure.files.create(file=("azure.jsonl", jsonl_bytes(lines)), purpose="batch")
    batch = azure.batches.create(
        input_file_id=f.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    assert batch.output_file_id == "" and batch.error_file_id == ""
    fake_api.finish()
    done = azure.batches.retrieve(batch.id)
    assert done.status == "completed" and done.error_file_id == ""
    assert len(azure.files.content(done.output_file_id).text.splitlines()) == 2  # type: ignore[arg-type]
    chat = azure.chat.completions.create(
        model="my-deployment", messages=[{"role": "user", "content": "x"}]
    )
    assert chat.choices[0].message.content == "Fake answer: x"
    assert ("POST", "/openai/deployments/my-deployment/chat/completions", 200) in fake_api.log
    wrong = openai.AzureOpenAI(
        azure_endpoint=fake_api.root_url, api_version="2024-10-21", api_key="nope", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.batches.list()
