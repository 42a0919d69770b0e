"""Batch results: merge output and error files, put them in request order, join them to the rows.

The Batch API returns successes and failures in two files, in no particular order. Here they are
indexed by custom_id (file offsets only, so memory does not grow with the size of the answers),
merged across several batches of one request file (the latest success wins; an error only replaces
an older error), written back in the request file's order, and joined to the input table as CSV
with one row per input row: `ok`, `error` or `missing`.

Each file is indexed under a group: the request file its batch was started from (retry files
count as their original). Groups may share one index only while their custom_ids are disjoint
(the shards of one table); the same custom_id from two groups is a conflict, never a merge,
since both files' default ids are id_0, id_1, ... and one's answers would land on the other's rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import console, files

if TYPE_CHECKING:
    import pandas as pd

RESULT_COLUMNS = (
    "custom_id",
    "status",
    "content",
    "finish_reason",
    "refusal",
    "prompt_tokens",
    "completion_tokens",
    "error",
)


# ---------------------------------------------------------------------------------------------
# Ordering


_DIGITS = re.compile(r"([0-9]+)")


def natural_key(custom_id: str) -> tuple[Any, ...]:
    """Sort key where digit runs compare as numbers: id_2 < id_10."""
    parts = _DIGITS.split(custom_id)  # odd positions are the digit runs
    return tuple((0, int(p), p) if i % 2 else (1, 0, p) for i, p in enumerate(parts))


_ID_AT_START = re.compile(rb'^\{\s*"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")')


def iter_request_ids(path: Path) -> Iterator[str]:
    """The custom_ids of a request file, in its line order (fast path for our own files)."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            match = _ID_AT_START.match(line)
            if match:
                yield json.loads(match.group(1))
                continue
            try:
                custom_id = json.loads(line).get("custom_id")
            except (ValueError, AttributeError):
                continue
            if isinstance(custom_id, str):
                yield custom_id


# ---------------------------------------------------------------------------------------------
# One result line, understood


@dataclass
class RowResult:
    """What a person wants to see of one request's result."""

    status: str  # ok, error, missing
    content: str = ""
    finish_reason: str = ""
    refusal: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str = ""
    fields: dict[str, Any] | None = None  # the content's JSON object (structured outputs)

    def cells(self) -> list[Any]:
        return [
            self.status,
            self.content,
            self.finish_reason,
            self.refusal,
            "" if self.prompt_tokens is None else self.prompt_tokens,
            "" if self.completion_tokens is None else self.completion_tokens,
            self.error,
        ]


MISSING = RowResult("missing")


def is_success(record: dict[str, Any]) -> bool:
    response = record.get("response")
    return (
        not record.get("error")
        and isinstance(response, dict)
        and response.get("status_code") == 200
        and isinstance(response.get("body"), dict)
    )


def extract(record: dict[str, Any]) -> RowResult:
    """The answer (or the error) of one output/error-file line, for any batch endpoint."""
    if not is_success(record):
        return RowResult("error", error=_error_text(record))
    body = record["response"]["body"]
    result = RowResult("ok")
    obj = body.get("object")
    if obj == "chat.completion" or ("choices" in body and obj != "text_completion"):
        _from_chat(body, result)
    elif obj == "response" or "output" in body:
        _from_responses(body, result)
    elif obj == "list" and "data" in body:
        _from_embeddings(body, result)
    elif obj == "text_completion":
        _from_completion(body, result)
    elif "results" in body:
        result.content = _dump(body["results"][0] if len(body["results"]) == 1 else body["results"])
    else:
        result.content = _dump(body)
    _usage(body.get("usage"), result)
    result.fields = _json_object(result.content)
    return result


def _from_chat(body: dict[str, Any], result: RowResult) -> None:
    choices = body.get("choices") or []
    if not choices:
        return
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is None and message.get("tool_calls"):
        content = _dump(message["tool_calls"])
    result.content = content or ""
    result.refusal = message.get("refusal") or ""
    result.finish_reason = choice.get("finish_reason") or ""


def _from_responses(body: dict[str, Any], result: RowResult) -> None:
    texts, refusals = [], []
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    refusals.append(part.get("refusal", ""))
        elif item.get("type") == "function_call":
            texts.append(_dump(item))
    result.content = "".join(texts)
    result.refusal = "".join(refusals)
    reason = body.get("status") or ""
    details = body.get("incomplete_details") or {}
    if isinstance(details, dict) and details.get("reason"):
        reason = f"{reason}: {details['reason']}"
    result.finish_reason = reason


def _from_embeddings(body: dict[str, Any], result: RowResult) -> None:
    vectors = [item.get("embedding") for item in body.get("data") or []]
    result.content = _dump(vectors[0] if len(vectors) == 1 else vectors)


def _from_completion(body: dict[str, Any], result: RowResult) -> None:
    choices = body.get("choices") or []
    if choices:
        result.content = choices[0].get("text") or ""
        result.finish_reason = choices[0].get("finish_reason") or ""


def _usage(usage: Any, result: RowResult) -> None:
    if not isinstance(usage, dict):
        return
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    result.prompt_tokens = prompt if isinstance(prompt, int) else None
    result.completion_tokens = completion if isinstance(completion, int) else None


def _error_text(record: dict[str, Any]) -> str:
    error = record.get("error")
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if not error and isinstance(response, dict):
        body = response.get("body")
        error = body.get("error") if isinstance(body, dict) else None
        if error is None and body is not None:
            error = {"message": body if isinstance(body, str) else _dump(body)}
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or (f"http_{status}" if status else "")
        message = error.get("message") or ""
        text = f"{code}: {message}" if code and message else code or message
    else:
        text = str(error) if error else ""
    return text or (f"HTTP {status}" if status else "unknown error")


def _json_object(content: str) -> dict[str, Any] | None:
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def cell_text(value: Any) -> str:
    """A JSON value as a CSV cell: strings as they are, everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _dump(value)


# ---------------------------------------------------------------------------------------------
# The index


@dataclass(slots=True)
class _Entry:
    source: int
    offset: int
    length: int
    ok: bool
    rank: int
    group: str = ""


@dataclass
class Conflict:
    """Two groups (request files) that both have results for some custom_ids."""

    groups: tuple[str, str]
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ResultIndex:
    """Where each custom_id's winning line is, across the downloaded files of several batches."""

    sources: list[Path] = field(default_factory=list)
    entries: dict[str, _Entry] = field(default_factory=dict)
    json_keys: dict[str, None] = field(default_factory=dict)  # ordered set
    unreadable: int = 0
    conflicts: dict[tuple[str, str], Conflict] = field(default_factory=dict)
    _handles: dict[int, IO[bytes]] = field(default_factory=dict, repr=False)

    def add_file(self, path: Path, rank: int, group: str = "") -> int:
        """Index one output or error file; `rank` orders batches (later wins) within a `group`
        (one request file and its retries). Returns lines."""
        source = len(self.sources)
        self.sources.append(path)
        lines = 0
        offset = 0
        with open(path, "rb") as fh:
            for raw in fh:
                length = len(raw)
                start, offset = offset, offset + length
                if not raw.strip():
                    continue
                lines += 1
                try:
                    record = json.loads(raw)
                    custom_id = record["custom_id"]
                    if not isinstance(custom_id, str):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    self.unreadable += 1
                    continue
                ok = is_success(record)
                self._offer(custom_id, _Entry(source, start, length, ok, rank, group))
                if ok:
                    fields = extract(record).fields
                    if fields:
                        self.json_keys.update(dict.fromkeys(fields))
        return lines

    def _offer(self, custom_id: str, new: _Entry) -> None:
        old = self.entries.get(custom_id)
        if old is None:
            self.entries[custom_id] = new
        elif new.group != old.group:  # another request file's answer: never a replacement
            self._conflict(custom_id, old.group, new.group)
        elif new.ok != old.ok:  # a success beats an error, whichever batch came first
            if new.ok:
                self.entries[custom_id] = new
        elif new.rank >= old.rank:  # same kind: the later batch wins
            self.entries[custom_id] = new

    def _conflict(self, custom_id: str, first: str, second: str) -> None:
        key = (first, second)
        conflict = self.conflicts.get(key)
        if conflict is None:
            conflict = self.conflicts[key] = Conflict(key)
        conflict.count += 1
        if len(conflict.examples) < 3:
            conflict.examples.append(custom_id)

    def __contains__(self, custom_id: object) -> bool:
        return custom_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def raw_line(self, custom_id: str) -> bytes:
        entry = self.entries[custom_id]
        fh = self._handles.get(entry.source)
        if fh is None:
            fh = self._handles[entry.source] = open(self.sources[entry.source], "rb")  # noqa: SIM115
        fh.seek(entry.offset)
        line = fh.read(entry.length)
        return line if line.endswith(b"\n") else line + b"\n"

    def record(self, custom_id: str) -> dict[str, Any]:
        return json.loads(self.raw_line(custom_id))

    def result(self, custom_id: str) -> RowResult:
        if custom_id not in self.entries:
            return MISSING
        return extract(self.record(custom_id))

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()

    def counts(self) -> dict[str, int]:
        ok = sum(1 for e in self.entries.values() if e.ok)
        return {"ok": ok, "error": len(self.entries) - ok}

    def natural_order(self) -> list[str]:
        return sorted(self.entries, key=natural_key)

    def needs_retry(self, custom_id: str) -> bool:
        entry = self.entries.get(custom_id)
        return entry is None or not entry.ok


def files_with_failures(index: ResultIndex, paths: Iterable[Path]) -> list[Path]:
    """The request files with at least one request that failed or has no result."""
    return [p for p in paths if any(index.needs_retry(c) for c in iter_request_ids(p))]


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass
class ResponsesSummary:
    path: Path
    lines: int
    ok: int
    error: int
    missing: int  # request lines with no result at all
    extra: int  # results whose custom_id is not in the request order


def write_responses(
    index: ResultIndex, dest: Path, order: Iterable[str] | None = None
) -> ResponsesSummary:
    """One line per result, output and error lines together, in `order` (else natural order).

    Results for custom_ids the order does not list (should not happen) follow at the end, in
    natural order, so nothing is lost.
    """
    written: set[str] = set()
    ok = error = missing = 0
    with files.atomic_write(dest, "wb") as fh:
        for custom_id in order if order is not None else index.natural_order():
            if custom_id in written:
                continue
            if custom_id not in index:
                missing += 1
                continue
            fh.write(index.raw_line(custom_id))
            written.add(custom_id)
            if index.entries[custom_id].ok:
                ok += 1
            else:
                error += 1
        extra = [c for c in index.natural_order() if c not in written]
        for custom_id in extra:
            fh.write(index.raw_line(custom_id))
            if index.entries[custom_id].ok:
                ok += 1
            else:
                error += 1
    return ResponsesSummary(dest, ok + error, ok, error, missing, len(extra))


@dataclass
class CsvSummary:
    path: Path
    rows: int
    ok: int
    error: int
    missing: int
    unmatched: int  # results whose custom_id matches no data row
    columns: list[str]


def result_column_names(taken: Iterable[str], json_keys: Iterable[str]) -> list[str]:
    """Our columns after the data's; a clash gets `_result` appended, so no column is lost."""
    used = set(taken)
    names = []
    for name in (*RESULT_COLUMNS, *json_keys):
        unique = name
        n = 1
        while unique in used:
            unique = f"{name}_result" if n == 1 else f"{name}_result{n}"
            n += 1
        used.add(unique)
        names.append(unique)
    return names


def _result_cells(index: ResultIndex, custom_id: str, keys: list[str]) -> list[Any]:
    result = index.result(custom_id)
    fields = result.fields or {}
    return [
        custom_id,
        *result.cells(),
        *(cell_text(fields[k]) if k in fields else "" for k in keys),
    ]


def write_csv(
    index: ResultIndex,
    dest: Path,
    *,
    chunks: Iterable[tuple[list[str], pd.DataFrame]] | None = None,
    order: Iterable[str] | None = None,
    keep_row: Callable[[int, str], bool] | None = None,
) -> CsvSummary:
    """The results as a table: every data row (or every custom_id) plus the result columns.

    `chunks` are the data rows with their custom_ids (batchfile.iter_identified_chunks);
    `keep_row(row_number, custom_id)` drops rows that were not in these request files (other
    shards, rows beyond --limit). Without data, one row per custom_id in `order`.
    """
    keys = list(index.json_keys)
    counts = {"ok": 0, "error": 0, "missing": 0}
    seen: set[str] = set()
    rows = 0
    with files.atomic_write(dest, "w") as fh:
        if chunks is None:
            columns = result_column_names((), keys)
            import csv

            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            for custom_id in order if order is not None else index.natural_order():
                if custom_id in seen:
                    continue
                seen.add(custom_id)
                cells = _result_cells(index, custom_id, keys)
                counts[cells[1]] += 1
                writer.writerow(cells)
                rows += 1
        else:
            columns = []
            row_number = 0
            for ids, frame in chunks:
                if not columns:
                    columns = [*frame.columns, *result_column_names(frame.columns, keys)]
                wanted = [
                    i
                    for i, custom_id in enumerate(ids)
                    if keep_row is None or keep_row(row_number + i, custom_id)
                ]
                row_number += len(ids)
                if not wanted:
                    continue
                if len(wanted) != len(ids):
                    frame = frame.iloc[wanted]
                    ids = [ids[i] for i in wanted]
                extra = [_result_cells(index, custom_id, keys) for custom_id in ids]
                for cells in extra:
                    counts[cells[1]] += 1
                seen.update(ids)
                _write_frame(fh, frame, extra, columns, header=rows == 0)
                rows += len(ids)
            if not columns:
                import csv

                columns = result_column_names((), keys)
                csv.writer(fh, lineterminator="\n").writerow(columns)
    unmatched = sum(1 for c in index.entries if c not in seen)
    return CsvSummary(
        dest, rows, counts["ok"], counts["error"], counts["missing"], unmatched, columns
    )


def _write_frame(
    fh: IO[str], frame: pd.DataFrame, extra: list[list[Any]], columns: list[str], *, header: bool
) -> None:
    """The data cells exactly as read, then ours; written by pandas so quoting is standard."""
    out = frame.reset_index(drop=True).copy()
    data_cols = len(out.columns)
    for j, name in enumerate(columns[data_cols:]):
        out[name] = [cells[j] for cells in extra]
    out.to_csv(fh, index=False, header=header, lineterminator="\n")


def summarize_counts(summary: CsvSummary | ResponsesSummary) -> str:
    parts = [f"{summary.ok:,} ok", f"{summary.error:,} error"]
    if summary.missing:
        parts.append(f"{summary.missing:,} missing")
    return ", ".join(parts)


def warn_unreadable(index: ResultIndex) -> None:
    if index.unreadable:
        console.warn(f"{index.unreadable} result line(s) could not be read and were skipped")
