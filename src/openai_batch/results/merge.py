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
from typing import Protocol

from openai_batch.local import files
from openai_batch.requestfile.customids import natural_key
from openai_batch.results import answers
from openai_batch.results.answers import MISSING, RowResult, extract, is_success  # noqa: F401 - the library's names
from openai_batch.results.index import Conflict, ResultIndex  # noqa: F401 - the library's names
from openai_batch.results.requestids import iter_request_ids
from openai_batch.ui import console

LOOKUP_BLOCK = 4096
RESPONSES_BLOCK = 16_384  # ids the responses file looks up at a time: sorted, they lie
# closer together in the index, and its search costs a quarter less than by 4,096

# ---------------------------------------------------------------------------------------------
# The index


def files_with_failures(index: ResultIndex, paths: Iterable[Path]) -> list[Path]:
    """The request files with at least one request that failed or has no result."""
    return [
        path
        for path in paths
        if any(
            index.any_needs_retry(block) for block in batched(iter_request_ids(path), LOOKUP_BLOCK)
        )
    ]


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
    try:
        return _write_responses(index, dest, order)
    finally:
        index.release_lines()


def _write_responses(
    index: ResultIndex, dest: Path, order: Iterable[str] | None
) -> ResponsesSummary:
    import numpy as np

    written = index.new_mask()  # per result: already written (a repeated custom_id is skipped)
    ok_flags = index.ok_flags()
    ok = error = missing = 0
    with files.atomic_write(dest, "wb") as fh:
        ids = order if order is not None else index.natural_order()
        for block in batched(ids, RESPONSES_BLOCK):
            found = index.found(block)
            have = found[found >= 0]
            missing += len(found) - len(have)
            _, first = np.unique(have, return_index=True)  # a custom_id repeated in the block
            have = have[np.sort(first)]
            have = have[~written[have]]  # or written by an earlier block
            written[have] = True
            fh.writelines(index.raw_lines(have))
            block_ok = int(ok_flags[have].sum())
            ok += block_ok
            error += len(have) - block_ok
        left = [(index.custom_id_at(int(p)), int(p)) for p in (~written).nonzero()[0]]
        left.sort(key=lambda pair: natural_key(pair[0]))
        extra = len(left)
        for _custom_id, position in left:
            fh.write(index.raw_line_at(position))
            if index.ok_at(position):
                ok += 1
            else:
                error += 1
    return ResponsesSummary(dest, ok + error, ok, error, missing, extra)


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of up to `size` items (lookups go a block at a time)."""
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
