"""How a batch looks to a person: status, timeline, counts and errors, as the web console shows.

Pure formatting (no API calls), so every line can be tested with a hand-made Batch.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from openai_batch.service import shape as batchshape

if TYPE_CHECKING:
    from openai.types import Batch

EVENTS = (
    ("created_at", "created"),
    ("in_progress_at", "in progress"),
    ("finalizing_at", "finalizing"),
    ("cancelling_at", "cancelling"),
    ("completed_at", "completed"),
    ("failed_at", "failed"),
    ("expired_at", "expired"),
    ("cancelled_at", "cancelled"),
)
FINAL_EVENT = {
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelled": "cancelled_at",
}
MAX_ERRORS_SHOWN = 10


def local(ts: int | float) -> datetime:
    return datetime.fromtimestamp(ts).astimezone()


def format_duration(seconds: float) -> str:
    """`1 minute, 42 seconds`, as the web console writes it."""
    seconds = max(0, round(seconds))
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    parts = []
    for name, size in units:
        value, seconds = divmod(seconds, size)
        if value:
            parts.append(f"{value} {name}{'s' if value != 1 else ''}")
    return ", ".join(parts[:2]) if parts else "0 seconds"


def timeline(batch: Batch) -> list[tuple[str, int]]:
    """(label, unix time) of each step the batch went through, in time order."""
    events = [(label, getattr(batch, attr)) for attr, label in EVENTS if getattr(batch, attr)]
    return sorted(events, key=lambda e: e[1])


def duration(batch: Batch, now: float | None = None) -> tuple[str, float] | None:
    """("Completion time"|"Running for"|..., seconds) from creation to the final step or now."""
    if not batch.created_at:
        return None  # some services leave the creation time out
    final_attr = FINAL_EVENT.get(batch.status)
    end = getattr(batch, final_attr) if final_attr else None
    if end:
        label = "Completion time" if batch.status == "completed" else "Total time"
        return label, end - batch.created_at
    if batch.status in FINAL_EVENT:
        return None
    return "Running for", (now if now is not None else time.time()) - batch.created_at


def counts_text(batch: Batch) -> str:
    counts = batch.request_counts
    if counts is None:
        return "no request counts yet"
    return f"{counts.completed:,} completed, {counts.failed:,} failed of {counts.total:,} total"


def error_lines(batch: Batch, limit: int = MAX_ERRORS_SHOWN) -> list[str]:
    """The batch-level errors (why validation failed, why it expired), grouped by code."""
    data = (batch.errors.data if batch.errors else None) or []
    lines = []
    for error in data[:limit]:
        where = f"line {error.line}: " if error.line is not None else ""
        param = f" ({error.param})" if error.param else ""
        lines.append(f"{where}{error.code or 'error'}: {error.message or ''}{param}".rstrip(": "))
    if len(data) > limit:
        codes: dict[str, int] = {}
        for error in data[limit:]:
            codes[error.code or "error"] = codes.get(error.code or "error", 0) + 1
        more = ", ".join(f"{n} {code}" for code, n in codes.items())
        lines.append(f"... and {len(data) - limit} more ({more})")
    return lines


def describe(batch: Batch, *, request_file: str | None = None, now: float | None = None) -> str:
    """The status block printed by get-batch-results and start-batch."""
    lines = [f"{batch.id}  {batchshape.status_text(batch)}"]
    meta = dict(batch.metadata or {})
    window = f"  (completion window {batch.completion_window})" if batch.completion_window else ""
    rows: list[tuple[str, str]] = [("Endpoint", f"{batch.endpoint or '-'}{window}")]
    if meta.get("description"):
        rows.append(("Description", meta["description"]))
    other = {k: v for k, v in meta.items() if k != "description"}
    if other:
        rows.append(("Metadata", ", ".join(f"{k}={v}" for k, v in other.items())))
    rows.append(("Requests", counts_text(batch)))
    input_text = (batch.input_file_id or "-") + (f"  ({request_file})" if request_file else "")
    rows.append(("Input file", input_text))
    rows.append(("Output file", batch.output_file_id or "-"))
    rows.append(("Error file", batch.error_file_id or "-"))
    if batch.expires_at and batch.status not in FINAL_EVENT:
        rows.append(("Expires", local(batch.expires_at).strftime("%Y-%m-%d %H:%M:%S %Z")))
    width = max(len(k) for k, _ in rows) + 1
    lines += [f"  {k + ':':<{width}} {v}" for k, v in rows]
    lines += _timeline_lines(batch)
    spent = duration(batch, now)
    if spent:
        lines.append(f"  {spent[0]}: {format_duration(spent[1])}")
    errors = error_lines(batch)
    if errors:
        lines.append("  Errors:")
        lines += [f"    {e}" for e in errors]
    return "\n".join(lines)


def _timeline_lines(batch: Batch) -> list[str]:
    events = timeline(batch)
    if not events:
        return []
    days = {local(ts).date() for _, ts in events}
    if len(days) == 1:
        head = local(events[0][1]).strftime("%A, %B %d, %Y").replace(" 0", " ")
        out = [f"  Timeline ({head}):"]
        fmt = "%H:%M:%S"
    else:
        out = ["  Timeline:"]
        fmt = "%Y-%m-%d %H:%M:%S"
    out += [f"    {local(ts).strftime(fmt)}  {label}" for label, ts in events]
    return out


def final_note(batch: Batch) -> str | None:
    """A plain sentence when a batch did not complete."""
    counts = batch.request_counts
    done = f" ({counts_text(batch)})" if counts else ""
    if batch.status == "failed":
        ran = bool(batch.output_file_id or batch.error_file_id)
        what = "some requests ran (their results are below)" if ran else "nothing was run"
        return f"Batch {batch.id} FAILED{done}: {what}. See the errors above."
    if batch.status == "expired":
        return (
            f"Batch {batch.id} EXPIRED after {window_text(batch.completion_window)}{done}: "
            "unfinished requests are in the error file as batch_expired."
        )
    if batch.status == "cancelled":
        return f"Batch {batch.id} was CANCELLED{done}: only the requests done before are there."
    return None


def window_text(window: str | None) -> str:
    """`24h` -> `24 hours`, `7d` -> `7 days`: the batch's own completion window, in words."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([hd])\s*", window or "")
    if not match:
        return f"its completion window ({window})" if window else "its completion window"
    number, unit = int(match[1]), {"h": "hour", "d": "day"}[match[2]]
    return f"{number} {unit}{'s' if number != 1 else ''}"


def batch_json(batch: Batch, **extra: Any) -> dict[str, Any]:
    """The API's object as it came, plus what we add (timeline, duration)."""
    data = batch.model_dump(mode="json")
    spent = duration(batch)
    data["openai_batch"] = {
        "timeline": [{"event": label, "at": ts} for label, ts in timeline(batch)],
        "duration_seconds": round(spent[1]) if spent else None,
        **extra,
    }
    return data
