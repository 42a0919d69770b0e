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

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openai_batch.local import files
from openai_batch.requestfile.customids import natural_key
from openai_batch.results import answers
from openai_batch.results.answers import MISSING, RowResult, extract, is_success  # noqa: F401 - the library's names
from openai_batch.results.index import Conflict, ResultIndex  # noqa: F401 - the library's names
from openai_batch.results.requestids import (
    iter_request_ids,  # noqa: F401 - the library's names
    request_id_blocks,
)
from openai_batch.ui import console

LOOKUP_BLOCK = 4096
RESPONSES_BLOCK = 16_384  # ids the responses file looks up at a time (fewer numpy calls
# per id than by 4,096)

# ---------------------------------------------------------------------------------------------
# The order


class RequestOrder:
    """The custom_ids of request files, in order (each iteration reads them again), and which
    of the files have a request that failed or has no result, as the responses file's pass
    marks them (`mark`): the retry hint needs them, and reading the request files once more
    for it cost up to 1.3 CPU s per million requests after everything else was done."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = list(paths)
        self._starts: list[int] = []  # where each file's ids begin in the order, as read
        self._failing: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for block in self.blocks():
            yield from block

    def blocks(self, size: int = 0) -> Iterator[list[str]]:
        """The ids in order, `size` at a time (the last block fewer), or with no size as
        they are read (a list per block of bytes): no generator step per id."""
        self._starts = []
        at = 0
        pending: list[str] = []
        for path in self.paths:
            self._starts.append(at)
            for ids in request_id_blocks(path):
                at += len(ids)
                if not size:
                    yield ids
                    continue
                pending.extend(ids)
                while len(pending) >= size:
                    yield pending[:size]
                    del pending[:size]
        if pending:
            yield pending

    def mark(self, first: int, failed: Any) -> None:
        """The ids at `first` + the true places of `failed` (numpy bools, ids read already)
        failed or have no result."""
        import numpy as np

        where = np.flatnonzero(failed)
        if len(where):
            files = np.searchsorted(self._starts, where + first, side="right") - 1
            self._failing.update(files.tolist())

    def failing(self) -> list[Path]:
        """The files with a request marked as failed or without a result, in order."""
        return [path for n, path in enumerate(self.paths) if n in self._failing]


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
    failing: list[Path] | None = None  # of a RequestOrder: its files with failed or missing


def write_responses(
    index: ResultIndex, dest: Path, order: Iterable[str] | None = None
) -> ResponsesSummary:
    """One line per result, output and error lines together, in `order` (else natural order).

    Results for custom_ids the order does not list (should not happen) follow at the end, in
    natural order, so nothing is lost.
    """
    try:
        return _write_responses(index, dest, order)
    finally:
        index.release_lines()


def _write_responses(
    index: ResultIndex, dest: Path, order: Iterable[str] | None
) -> ResponsesSummary:
    import numpy as np

    written = index.new_mask()  # per result: already written (a repeated custom_id is skipped)
    place_type = np.min_scalar_type(RESPONSES_BLOCK)
    places = np.zeros(len(written), dtype=place_type)  # per result: its place in its block
    ok_flags = index.ok_flags()
    ok = error = missing = 0
    with files.atomic_write(dest, "wb") as fh:
        ids = order if order is not None else index.natural_order()
        tracked = order if isinstance(order, RequestOrder) else None
        listed = 0  # ids listed
        for block in batched(ids, RESPONSES_BLOCK):
            found = index.found(block)
            if tracked is not None:  # which request files need a retry, on the way
                failed = found < 0
                failed[~failed] = ~ok_flags[found[~failed]]
                tracked.mark(listed, failed)
                listed += len(block)
            have = found[found >= 0]
            missing += len(found) - len(have)
            have = have[~written[have]]  # not written by an earlier block
            written[have] = True
            # a custom_id repeated in the block keeps the place of its last listing: then (and
            # only then: a sort per block, or a count of every flag, costs more) its first only
            listing = np.arange(len(have), dtype=place_type)
            places[have] = listing
            if (places[have] != listing).any():
                _, first = np.unique(have, return_index=True)
                have = have[np.sort(first)]
            fh.writelines(index.raw_lines(have))
            block_ok = int(ok_flags[have].sum())
            ok += block_ok
            error += len(have) - block_ok
        rest = (~written).nonzero()[0]
        left = list(zip(index.custom_ids_at(rest), rest.tolist(), strict=True))
        left.sort(key=lambda pair: natural_key(pair[0]))
        extra = len(left)
        for _custom_id, position in left:
            fh.write(index.raw_line_at(position))
            if index.ok_at(position):
                ok += 1
            else:
                error += 1
    failing = tracked.failing() if tracked is not None else None
    return ResponsesSummary(dest, ok + error, ok, error, missing, extra, failing)


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of up to `size` items (lookups go a block at a time); a RequestOrder's are
    made of the lists its files are read in."""
    if isinstance(items, RequestOrder):
        return items.blocks(size)
    return _batched(items, size)


def _batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while block := list(itertools.islice(iterator, size)):
        yield block


class _Counts(Protocol):
    ok: int
    error: int
    missing: int


def summarize_counts(summary: _Counts) -> str:
    parts = [f"{summary.ok:,} ok", f"{summary.error:,} error"]
    if summary.missing:
        parts.append(f"{summary.missing:,} missing")
    return ", ".join(parts)


def problems(index: ResultIndex) -> list[str]:
    """What was odd in the result files: unreadable, malformed and repeated lines."""
    found = []
    if index.unreadable:
        lines = console.plural(index.unreadable, "result line")
        found.append(f"{lines} without a custom_id, skipped")
    if index.malformed:
        found.append(
            f"{console.plural(index.malformed, 'result line')} not a readable answer: their rows "
            f"say {answers.MALFORMED} (the lines are in the responses file as received)"
        )
    if index.duplicate_count:
        shown = ", ".join(
            f"{cid} ({count} times in {path.name})"
            for cid, (count, path) in index.duplicates.items()
        )
        more = len(index.duplicates) < index.duplicate_count and index.duplicate_count > 3
        found.append(
            f"{console.plural(index.duplicate_count, 'custom_id')} answered more than once by one "
            "batch: "
            f"{shown}{' and more' if more else ''}; a success is kept over an error, else the "
            "later line"
        )
    return found
