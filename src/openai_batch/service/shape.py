"""One shape for every service's batch objects, and the one place that knows the status words.

OpenAI, Azure OpenAI and the compatible services answer the same questions in different
spellings: Azure's older API versions send `"Validating"`, ISO-8601 times and request counts of
`null` while validating, `""` for absent file ids and `"endpoint": null`; Together wraps a new batch
in `{"job": {...}}` and writes `IN_PROGRESS`; others leave out `status`, `created_at` or
`input_file_id`. `normalize` turns each answer into the SDK's `Batch` with OpenAI's vocabulary,
so the rest of the tool reads one shape. A status this module cannot place becomes `unknown`:
the batch exists and may be running, so it is never started again without --force, and
waiting on it stops after a while and says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openai_batch.errors import quoted

if TYPE_CHECKING:
    from openai.types import Batch

UNKNOWN = "unknown"
STATUSES = (
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling",
    "cancelled",
)  # fmt: skip
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# A batch in one of these may still run (or has run): starting the same requests again pays twice.
REUSABLE = frozenset({"validating", "in_progress", "finalizing", "completed", UNKNOWN})
# Other services' words for OpenAI's statuses (Together, Mistral, vLLM-style servers, Azure's
# older API versions); compared after lower-casing and turning spaces and hyphens into "_".
_SYNONYMS = {
    "queued": "validating",
    "pending": "validating",
    "submitted": "validating",
    "notstarted": "validating",
    "not_started": "validating",
    "running": "in_progress",
    "inprogress": "in_progress",
    "processing": "in_progress",
    "progress": "in_progress",
    "succeeded": "completed",
    "success": "completed",
    "timeout_exceeded": "expired",
    "timed_out": "expired",
    "cancellation_requested": "cancelling",
    "canceling": "cancelling",
    "canceled": "cancelled",
}
TIME_FIELDS = (
    "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at", "failed_at",
    "expired_at", "cancelling_at", "cancelled_at",
)  # fmt: skip
# Where a service nests the batch it created instead of answering with it (Together: "job").
_WRAPPERS = ("job", "batch", "data")
SERVICE_STATUS = "service_status"  # the service's own word, kept when it is not OpenAI's


def canonical_status(raw: object) -> str:
    """OpenAI's word for a service's status, or `unknown`."""
    if not isinstance(raw, str) or not raw.strip():
        return UNKNOWN
    word = re.sub(r"[\s\-]+", "_", raw.strip().lower())
    word = _SYNONYMS.get(word, word)
    return word if word in STATUSES else UNKNOWN


def is_final(batch: Batch) -> bool:
    return batch.status in FINAL


def is_reusable(batch: Batch) -> bool:
    """Running, done, or in a state we cannot read: never start its requests again unasked."""
    return batch.status in REUSABLE


def service_status(batch: Batch) -> str | None:
    """The status as the service wrote it, when that is not OpenAI's word for it."""
    value = (batch.model_extra or {}).get(SERVICE_STATUS)
    return value if isinstance(value, str) else None


def status_text(batch: Batch) -> str:
    """`in_progress`, or `unknown (service says 'QUEUED_X')` / `unknown (no status)`."""
    said = service_status(batch)
    if batch.status == UNKNOWN:
        return f"unknown (service says {quoted(said)})" if said else "unknown (no status)"
    return batch.status


UNKNOWN_POLLS = 10  # answers in a row without a status we know before waiting stops


class UnknownWatch:
    """Counts, per batch, the polls in a row whose status is `unknown`: waiting on such a batch
    could go on forever, so after UNKNOWN_POLLS it stops and says so (the batch is kept)."""

    def __init__(self, limit: int = UNKNOWN_POLLS) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def see(self, batch_id: str | None, status: str | None, shown: str | None = None) -> None:
        from openai_batch.errors import ApiError, Command

        if batch_id is None:
            return
        if status != UNKNOWN:
            self.counts.pop(batch_id, None)
            return
        self.counts[batch_id] = seen = self.counts.get(batch_id, 0) + 1
        if seen >= self.limit:
            raise ApiError(
                f"stopped waiting: batch {batch_id} answered {seen} times with a status this "
                f"tool does not know ({shown or 'unknown'})",
                hint=(
                    "the batch exists and may still run (it is never started again without "
                    "--force); check it on the service's console, then `",
                    Command("get-batch-results", batch_id),
                    "` once it is done",
                ),
            )


def raw_data(batch: Batch) -> dict[str, Any]:
    """The fields as the SDK parsed them, unknown ones included (nothing validated)."""
    return batch.model_dump(mode="python", warnings=False)


def unwrap(data: Mapping[str, Any]) -> dict[str, Any]:
    """The batch itself when a service nests it (`{"job": {...}}`), else the data as it is."""
    if not data.get("id"):
        for key in _WRAPPERS:
            inner = data.get(key)
            if isinstance(inner, Mapping) and inner.get("id"):
                return dict(inner)
    return dict(data)


def normalize(batch: Batch) -> Batch:
    """The batch in OpenAI's shape and vocabulary; what was missing stays None."""
    from openai._models import construct_type
    from openai.types import Batch as BatchType

    data = unwrap(raw_data(batch))
    raw_status = data.get("status")
    data["status"] = canonical_status(raw_status)
    if isinstance(raw_status, str) and raw_status != data["status"]:
        data[SERVICE_STATUS] = raw_status
    for name in TIME_FIELDS:
        data[name] = unix_time(data.get(name))
    for name in ("output_file_id", "error_file_id", "input_file_id", "endpoint", "id"):
        value = data.get(name)
        data[name] = value if isinstance(value, str) and value else None
    data["request_counts"] = _counts(data.get("request_counts"))
    data["errors"] = _errors(data.get("errors"))
    if not isinstance(data.get("metadata"), Mapping):
        data["metadata"] = None
    if not isinstance(data.get("completion_window"), str):
        data["completion_window"] = None
    data.setdefault("object", "batch")
    return construct_type(type_=BatchType, value=data)  # type: ignore[return-value]


_LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second datetime can show


def unix_time(value: object) -> int | None:
    """Seconds since 1970 from a number or an ISO-8601 string; None for absent, 0 or garbage.

    Some services send milliseconds (or microseconds): a number past year 9999 as seconds is
    read in the smallest unit that brings it into range, and anything still out of range is
    unknown, so a strange clock never stops a status view or the ledger."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return _seconds(int(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return _seconds(moment.timestamp())
    if isinstance(value, int | float):
        return _seconds(value)
    return None


def _seconds(value: float) -> int | None:
    if not math.isfinite(value) or value <= 0:
        return None
    for scale in (1, 1_000, 1_000_000, 1_000_000_000):
        if value / scale <= _LATEST:
            return int(value / scale) or None
    return None


def _counts(value: object) -> dict[str, int] | None:
    """Counts with nulls (Azure while validating) as 0; all null or absent: no counts yet."""
    if not isinstance(value, Mapping):
        return None
    numbers = {k: _count(value.get(k)) for k in ("total", "completed", "failed")}
    if all(v is None for v in numbers.values()):
        return None
    return {k: v or 0 for k, v in numbers.items()}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _errors(value: object) -> dict[str, Any] | None:
    """OpenAI's `{"object": "list", "data": [...]}`, also from a bare list or a message."""
    if isinstance(value, Mapping):
        data = value.get("data")
        return {"object": "list", "data": list(data)} if isinstance(data, list) else None
    if isinstance(value, list):
        return {"object": "list", "data": [e for e in value if isinstance(e, Mapping)]}
    if isinstance(value, str) and value.strip():
        return {"object": "list", "data": [{"code": "error", "message": value.strip()}]}
    return None


def differences(model: type[Any], data: Mapping[str, Any], limit: int = 5) -> list[str]:
    """Where `data` departs from the SDK's schema for `model` (for OPENAI_BATCH_STRICT=1)."""
    from pydantic import ValidationError

    try:
        model.model_validate(dict(data))
    except ValidationError as exc:
        out = []
        for error in exc.errors()[:limit]:
            where = ".".join(str(p) for p in error["loc"]) or "(object)"
            out.append(f"{where}: {error['msg']} (got {error.get('input')!r:.60})")
        return out
    return []
