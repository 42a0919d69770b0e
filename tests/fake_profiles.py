"""Service profiles for the fake (tests/fake_openai.py): Azure OpenAI as documented, and
OpenAI-compatible batch services as they really answer.

A profile sits around the fake's dispatch (`fake.profile = AzureProfile().install(fake)`): it may
answer a request itself (Azure's fail-fast 400 on create), change the request (a list endpoint
that ignores `after`), and reshape every answer (statuses, timestamps, counts, missing fields,
wrappers). The fake's own rules (validation, lifecycle, outputs) stay as they are, so anything
the tool gets right against a profile it gets right for the service's documented shapes.

Every reshaping names the documentation it comes from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fake_openai import DAY, FakeApiError, FakeOpenAI, _json_reply, _Reply

MB = 1024 * 1024
TIME_FIELDS = (
    "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at",
    "expired_at", "cancelling_at", "cancelled_at",
)  # fmt: skip
_CREATE_BATCH = re.compile(r"(/openai)?(/v1)?/batches$")
_LIST_BATCHES = _CREATE_BATCH


def iso(ts: Any) -> Any:
    """1711471533 -> "2024-03-26T16:45:33Z" (None stays None)."""
    if not isinstance(ts, int):
        return ts
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Profile:
    """Pass-through: the fake as OpenAI. Subclasses reshape requests and answers."""

    def install(self, fake: FakeOpenAI) -> Profile:
        fake.profile = self
        return self

    def serve(
        self,
        fake: FakeOpenAI,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> _Reply:
        early = self.before(fake, method, path, query, headers)
        if early is not None:
            return early
        reply = fake._dispatch(method, path, query, headers, body)
        if reply.status != 200 or reply.content_type != "application/json" or not reply.body:
            return reply
        payload = json.loads(reply.body)
        payload = self.reshape(fake, method, path, payload)
        return _json_reply(reply.status, payload, reply.headers)

    def before(
        self,
        fake: FakeOpenAI,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
    ) -> _Reply | None:
        return None

    def reshape(self, fake: FakeOpenAI, method: str, path: str, payload: Any) -> Any:
        if not isinstance(payload, dict):
            return payload
        if payload.get("object") == "batch":
            created = method == "POST" and _CREATE_BATCH.search(path) is not None
            return self.batch(fake, payload, created=created)
        if payload.get("object") == "file":
            return self.file(payload)
        if payload.get("object") == "list":
            data = payload.get("data") or []
            payload["data"] = [
                self.batch(fake, item, created=False) if item.get("object") == "batch" else item
                for item in data
            ]
            return self.page(payload)
        return payload

    def batch(self, fake: FakeOpenAI, data: dict, *, created: bool) -> dict:
        return data

    def file(self, data: dict) -> dict:
        return data

    def page(self, data: dict) -> dict:
        return data


@dataclass
class AzureProfile(Profile):
    """Azure OpenAI global batch, with every shape its documentation shows.

    Sources (MicrosoftDocs/azure-ai-docs): articles/ai-foundry/openai/how-to/batch.md (limits,
    fail-fast, "wait at least 60 seconds between status calls"), includes/batch/batch-rest.md and
    batch-python.md (request lines with "url": "/chat/completions"; batch objects while
    validating with "request_counts": {"total": null, "completed": null, "failed": null},
    "endpoint": null, "" for absent file ids, ISO-8601 times and "status": "Validating" in the
    older api-version samples; file objects with "status": "pending"), quotas-limits.md
    (100,000 requests per file, 200 MB).
    """

    iso_times: bool = True
    capitalised_validating: bool = True
    null_counts_while_validating: bool = True
    null_endpoint_while_validating: bool = True
    empty_error_file: bool = True  # a completed batch without failures gets a 0-byte error file
    fail_fast: int = 0  # creates refused with 400 token_limit_exceeded (fail-fast regions)

    def install(self, fake: FakeOpenAI) -> Profile:
        fake.azure = True
        fake.max_batch_requests = 100_000
        return super().install(fake)

    def before(self, fake, method, path, query, headers):  # type: ignore[no-untyped-def]
        if self.fail_fast > 0 and method == "POST" and _CREATE_BATCH.search(path):
            # how-to/batch.md, "Batch fail fast": the create itself is refused when the
            # deployment's enqueued-token quota is full.
            self.fail_fast -= 1
            raise FakeApiError(
                400,
                "Enqueued token limit reached for deployment gpt-4o-batch. Please try again "
                "once some in_progress batches have been completed.",
                type="invalid_request_error",
                code="token_limit_exceeded",
            )
        return None

    def batch(self, fake: FakeOpenAI, data: dict, *, created: bool) -> dict:
        if self.empty_error_file and data["status"] == "completed" and not data["error_file_id"]:
            # batch-python.md: a successful batch can come with an error file of 0 bytes
            record = fake.batches[data["id"]]
            if record.error_file_id is None:
                name = f"{record.id}_error.jsonl"
                record.error_file_id = fake._new_file(b"", name, "batch_output", None).id
            data["error_file_id"] = record.error_file_id
        if data["status"] == "validating":
            if self.null_counts_while_validating:
                data["request_counts"] = {"total": None, "completed": None, "failed": None}
            if self.null_endpoint_while_validating:
                data["endpoint"] = None
            if self.capitalised_validating:
                data["status"] = "Validating"
        if self.iso_times:
            for name in TIME_FIELDS:
                data[name] = iso(data.get(name))
        return data

    def file(self, data: dict) -> dict:
        # batch-rest.md: the upload answers "status": "pending" (then "processed")
        if data.get("purpose") == "batch":
            data["status"] = "pending"
        return data


@dataclass
class CompatibleProfile(Profile):
    """An OpenAI-compatible batch service as it answers, one departure per switch."""

    windows: dict[str, int] = field(default_factory=lambda: {"24h": DAY})
    capitalised: bool = False  # Together: "VALIDATING", "IN_PROGRESS", "COMPLETED"
    drop_batch_fields: tuple[str, ...] = ()  # e.g. ("status",) or ("created_at", "input_file_id")
    drop_file_fields: tuple[str, ...] = ()  # Groq: file objects without "status"
    iso_times: bool = False
    wrap_create: str | None = None  # Together: the create answers {"job": {...}}
    no_cursors: bool = False  # lists without has_more/first_id/last_id that ignore `after`
    max_file_bytes: int | None = None
    time_scale: int = 1  # 1000: times in milliseconds, as some services write them

    def install(self, fake: FakeOpenAI) -> Profile:
        fake.completion_windows = dict(self.windows)
        if self.max_file_bytes is not None:
            fake.max_batch_file_bytes = self.max_file_bytes
        return super().install(fake)

    def before(self, fake, method, path, query, headers):  # type: ignore[no-untyped-def]
        if self.no_cursors and method == "GET":
            query.pop("after", None)  # the server ignores the cursor
        return None

    def batch(self, fake: FakeOpenAI, data: dict, *, created: bool) -> dict:
        if self.capitalised and isinstance(data.get("status"), str):
            data["status"] = data["status"].upper()
        if self.time_scale != 1:
            for name in TIME_FIELDS:
                if isinstance(data.get(name), int):
                    data[name] *= self.time_scale
        if self.iso_times:
            for name in TIME_FIELDS:
                data[name] = iso(data.get(name))
        for name in self.drop_batch_fields:
            data.pop(name, None)
        if created and self.wrap_create:
            return {self.wrap_create: data}
        return data

    def file(self, data: dict) -> dict:
        for name in self.drop_file_fields:
            data.pop(name, None)
        return data

    def page(self, data: dict) -> dict:
        if self.no_cursors:
            for name in ("has_more", "first_id", "last_id"):
                data.pop(name, None)
        return data


def groq_like() -> CompatibleProfile:
    """Groq (console.groq.com/docs/batch): completion_window from 24h to 7d, files up to
    100 MB, file objects without `status`."""
    windows = {f"{h}h": h * 3600 for h in (24, 48, 72)} | {f"{d}d": d * DAY for d in range(1, 8)}
    return CompatibleProfile(windows=windows, drop_file_fields=("status",), max_file_bytes=100 * MB)


def together_like() -> CompatibleProfile:
    """Together (docs.together.ai/docs/batch-inference): the create answers {"job": {...}},
    statuses in capitals, ISO-8601 times."""
    return CompatibleProfile(capitalised=True, iso_times=True, wrap_create="job")
