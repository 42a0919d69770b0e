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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from . import answers, console, files
from .answers import MISSING, RowResult, extract, is_success

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
# The index


MAX_TRACKED_KEYS = 10_000  # distinct JSON answer keys counted (see join.json_columns)


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
    json_key_counts: dict[str, int] = field(default_factory=dict)  # in order of first use
    json_answers: int = 0  # successes whose content is a JSON object
    unreadable: int = 0  # lines without a custom_id: nothing to join them to
    malformed: int = 0  # lines with a custom_id but no readable answer (that row's error)
    duplicates: dict[str, tuple[int, Path]] = field(default_factory=dict)  # examples
    duplicate_count: int = 0
    conflicts: dict[tuple[str, str], Conflict] = field(default_factory=dict)
    _handles: dict[int, IO[bytes]] = field(default_factory=dict, repr=False)

    def add_file(self, path: Path, rank: int, group: str = "") -> int:
        """Index one output or error file; `rank` orders batches (later wins) within a `group`
        (one request file and its retries). Returns lines.

        A line that is JSON but no known answer shape (or too deep to read) still belongs to
        its custom_id: it is indexed as a failure, and its row says `malformed_result`."""
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
                custom_id, ok = self._read(raw)
                if custom_id is None:
                    self.unreadable += 1
                    continue
                self._offer(custom_id, _Entry(source, start, length, ok, rank, group))
        return lines

    def _read(self, raw: bytes) -> tuple[str | None, bool]:
        """(custom_id, success) of one line; counts JSON answer keys for the table's columns."""
        try:
            record = answers.parse_line(raw)
        except answers.MalformedResult:
            custom_id = answers.custom_id_in(raw) if raw.lstrip().startswith(b"{") else None
            if custom_id is not None:
                self.malformed += 1
            return custom_id, False
        custom_id = record.get("custom_id") if isinstance(record, dict) else None
        if not isinstance(custom_id, str):
            return None, False
        if not is_success(record):
            return custom_id, False
        result = extract(record)
        if result.status != "ok":
            self.malformed += 1
            return custom_id, False
        if result.fields:
            self._count_keys(result.fields)
        return custom_id, True

    def _count_keys(self, fields: dict[str, Any]) -> None:
        self.json_answers += 1
        counts = self.json_key_counts
        for key in fields:
            if key in counts:
                counts[key] += 1
            elif len(counts) < MAX_TRACKED_KEYS:  # answers with ever new keys: bounded memory
                counts[key] = 1

    def _offer(self, custom_id: str, new: _Entry) -> None:
        old = self.entries.get(custom_id)
        if old is None:
            self.entries[custom_id] = new
            return
        if new.rank == old.rank and new.group == old.group:  # one batch answered it twice
            self._duplicate(custom_id, new)
        if new.group != old.group:  # another request file's answer: never a replacement
            self._conflict(custom_id, old.group, new.group)
        elif new.ok != old.ok:  # a success beats an error, whichever batch came first
            if new.ok:
                self.entries[custom_id] = new
        elif new.rank >= old.rank:  # same kind: the later batch wins
            self.entries[custom_id] = new

    def _duplicate(self, custom_id: str, new: _Entry) -> None:
        self.duplicate_count += 1
        if custom_id in self.duplicates:
            count, path = self.duplicates[custom_id]
            self.duplicates[custom_id] = (count + 1, path)
        elif len(self.duplicates) < 3:
            self.duplicates[custom_id] = (2, self.sources[new.source])

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
        """The parsed line; one that cannot be parsed reads as a `malformed_result` error."""
        try:
            record = answers.parse_line(self.raw_line(custom_id))
        except answers.MalformedResult as exc:
            record = None
            reason = str(exc)
        else:
            reason = "the line is not a JSON object"
        if isinstance(record, dict):
            return record
        message = f"{reason} (the raw line is in the responses file)"
        return {"custom_id": custom_id, "response": None,
                "error": {"code": answers.MALFORMED, "message": message}}  # fmt: skip

    def result(self, custom_id: str) -> RowResult:
        if custom_id not in self.entries:
            return MISSING
        return answers.row_result(self.raw_line(custom_id))

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


class _Counts(Protocol):
    ok: int
    error: int
    missing: int


def summarize_counts(summary: _Counts) -> str:
    parts = [f"{summary.ok:,} ok", f"{summary.error:,} error"]
    if summary.missing:
        parts.append(f"{summary.missing:,} missing")
    return ", ".join(parts)


def warn_unreadable(index: ResultIndex) -> None:
    """What was odd in the result files: unreadable, malformed and repeated lines."""
    for text in problems(index):
        console.warn(text)


def problems(index: ResultIndex) -> list[str]:
    found = []
    if index.unreadable:
        found.append(f"{index.unreadable} result line(s) have no custom_id and were skipped")
    if index.malformed:
        found.append(
            f"{index.malformed} result line(s) are not a readable answer: their rows say "
            f"{answers.MALFORMED} (the lines are in the responses file as received)"
        )
    if index.duplicate_count:
        shown = ", ".join(
            f"{cid} ({count} times in {path.name})"
            for cid, (count, path) in index.duplicates.items()
        )
        more = len(index.duplicates) < index.duplicate_count and index.duplicate_count > 3
        found.append(
            f"{index.duplicate_count:,} custom_id(s) answered more than once by one batch: "
            f"{shown}{' and more' if more else ''}; a success is kept over an error, else the "
            "later line"
        )
    return found
