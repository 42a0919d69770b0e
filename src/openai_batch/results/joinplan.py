"""Where the order of the results and the table's rows come from, and the checks that the
data did not change since the request files were made (a changed table would put answers on
the wrong rows)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError
from openai_batch.ledger.digests import matches
from openai_batch.ledger.store import RequestFileRecord
from openai_batch.requestfile.fallback import Fallback
from openai_batch.results import merge as results
from openai_batch.results.outputs import Outputs
from openai_batch.table.spec import TableSpec


@dataclass
class JoinPlan:
    """Where the order of requests and the data rows come from."""

    order_files: list[Path] = field(default_factory=list)
    table: TableSpec | None = None  # the data file to join to, and how to read it
    row_ranges: list[tuple[int, int]] | None = None  # rows of the data in these request files
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said before the join, as warnings

    @property
    def data(self) -> Path | None:
        return Path(self.table.path) if self.table is not None else None

    def order(self) -> results.RequestOrder | None:
        """The request files' custom_ids in order (None: no request files, natural order)."""
        if not self.order_files:
            return None
        return results.RequestOrder(self.order_files)


def plan_join(roots: Sequence[RequestFileRecord], given: Outputs, *, join: bool = True) -> JoinPlan:
    """Use what the user gave (`given`: --requests, --data, --id-column, --id-prefix), else
    what the ledger recorded, else natural custom_id order.

    Without `join` (no CSV asked for) only the order is planned: the data file is neither
    needed nor checked, so a table moved or edited since never stops the responses file.
    """
    plan = JoinPlan()
    requests, data = given.requests, given.data
    if requests is not None:
        if not requests.is_file():
            raise BatchError(f"--requests {requests}: no such file")
        plan.order_files = [requests]
    else:
        for root in roots:
            path = Path(root.path)
            if (
                path.is_file()
                and (root.bytes is None or path.stat().st_size == root.bytes)
                and matches(path, root.digest)
            ):
                plan.order_files.append(path)
            else:
                plan.order_files = []
                plan.notes.append(
                    f"{root.path} is gone or changed since the batch started; "
                    "results are in natural custom_id order"
                )
                break
    if not join:
        return plan
    datas = {r.data for r in roots if r.data}
    if data is not None:
        if not data.is_file():
            raise BatchError(f"--data {data}: no such file")
        recorded_table = roots[0].table if len(datas) == 1 and roots else None
        plan.table = (recorded_table or TableSpec(str(data))).elsewhere(str(data))
    elif len(datas) == 1:
        plan.table = roots[0].table
        assert plan.table is not None
        changed = _check_data_unchanged(plan.table, _recorded_hash(roots))
        plan.warnings += [changed] if changed else []
    elif len(datas) > 1:
        plan.notes.append("these batches come from different data files: pass --data")
    if plan.table is not None:
        plan.table = plan.table.with_ids(given.id_column, given.id_prefix)
    if (
        plan.data is not None
        and roots
        and all(r.first_row is not None and r.requests is not None for r in roots)
    ):
        plan.row_ranges = [
            (r.first_row or 0, (r.first_row or 0) + (r.requests or 0)) for r in roots
        ]
    return plan


def _recorded_hash(roots: Sequence[RequestFileRecord]) -> list[str]:
    """The data file's digest when the request files were made: one (or none), or a refusal."""
    hashes = sorted({r.data_digest for r in roots if r.data_digest})
    if len(hashes) > 1:
        raise BatchError(
            "these request files were made from different versions of the same data file: "
            "no one table matches all of them",
            hint="get their results separately, each with --data FILE for its table",
        )
    return hashes


def _check_data_unchanged(table: TableSpec, digests: list[str]) -> str | None:
    """The join matches rows by position or id: a changed table would misplace answers.
    Returns a warning when only a changed mtime tells.

    The content is hashed every time (XXH3: about 0.01 s per 100 MB): size and mtime prove
    nothing, since `touch -r`, `cp -p`, `rsync -t` or a tar restore bring back the old mtime
    on reordered rows. A size that differs is refused before hashing; without a recorded
    digest (an older version recorded none) only a changed mtime can be noticed, as a warning.
    """
    data = Path(table.path)
    if not data.is_file():
        raise BatchError(
            f"the data file {data} recorded for these requests is gone",
            hint="pass the table the request file was made from with --data FILE",
        )
    stat = data.stat()
    size = table.size
    if size is not None and stat.st_size != size:
        raise BatchError(
            f"the data file {data} changed since the request file was made "
            f"({size:,} bytes then, {stat.st_size:,} now): answers could land on the "
            "wrong rows",
            hint="pass the original table with --data FILE (it is trusted as given)",
        )
    if not digests:
        mtime = table.mtime_ns
        if mtime is not None and stat.st_mtime_ns != mtime:
            return f"{data} was modified since the request file was made (same size)"
        return None
    if not all(matches(data, digest) for digest in digests):
        raise BatchError(
            f"the data file {data} changed since the request file was made (same size, other "
            "content: rows sorted or edited?): answers could land on the wrong rows",
            hint="pass the original table with --data FILE (it is trusted as given)",
        )
    return None


def iter_data(plan: JoinPlan) -> DataRows:
    assert plan.table is not None
    return DataRows(plan.table)


class DataRows:
    """The data table's rows, each with its custom_id, for the join: iterated, as pandas
    chunks (any format make-batch-file reads); for the CSV/TSV writer also as Arrow blocks,
    read as make-batch-file's fast path reads them (no pandas, no conversion to Arrow)."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec

    def __iter__(self) -> Iterator[tuple[list[str], Any]]:
        from openai_batch.requestfile.make import iter_identified_chunks

        return iter_identified_chunks(self.spec)

    def arrow_blocks(self) -> Iterator[tuple[list[str], Any]] | None:
        """The same rows as Arrow record batches of string columns with the same custom_ids,
        or None when the fast reader does not read this table. It raises Fallback (at any
        block, even after the last) where its rows could differ from the general reader's:
        the join then starts again with the chunks."""
        from openai_batch.requestfile import fastread
        from openai_batch.table.read import open_table

        table = open_table(Path(self.spec.path), self.spec.read_options())
        return self._blocks(table) if fastread.readable(table) else None

    def _blocks(self, table: Any) -> Iterator[tuple[list[str], Any]]:
        import pyarrow as pa

        from openai_batch.requestfile import fastread
        from openai_batch.requestfile.make import IdMaker

        maker = IdMaker(table, self.spec.id_column, self.spec.id_prefix)
        start = 0
        try:
            for block in fastread.blocks(table, table.columns):
                yield maker.ids(block, start), block
                start += len(block)
        except pa.ArrowException:  # a row Arrow cannot read: the general reader decides
            raise Fallback from None


def keep_rows(plan: JoinPlan) -> KeptRows | None:
    ranges = plan.row_ranges
    if not ranges:
        return None
    return KeptRows(ranges)


class KeptRows:
    """Whether a data row is in these request files (its row number in one of their
    ranges): for one row, as keep_row(row, custom_id), or for a block of rows at once."""

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        self._ranges = list(ranges)

    def __call__(self, row: int, _custom_id: str = "") -> bool:
        return any(lo <= row < hi for lo, hi in self._ranges)

    def block(self, start: int, count: int) -> Any:
        """Per row of rows start .. start + count - 1: kept (numpy bools)."""
        import numpy as np

        rows = np.arange(start, start + count)
        kept = np.zeros(count, dtype=bool)
        for lo, hi in self._ranges:
            kept |= (rows >= lo) & (rows < hi)
        return kept
