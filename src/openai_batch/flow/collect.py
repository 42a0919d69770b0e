"""Download every result file, merge them (the later batch wins within one request file),
and write the responses file and the table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError, ResultsConflict, quoted_list
from openai_batch.flow.downloads import Downloaded, download_all
from openai_batch.ledger.locks import Notify
from openai_batch.ledger.store import RequestFileRecord
from openai_batch.local import output_guard
from openai_batch.results import join
from openai_batch.results import merge as results
from openai_batch.results.background import start_responses
from openai_batch.results.joinplan import JoinPlan, iter_data, keep_rows, plan_join
from openai_batch.results.outputs import Outputs
from openai_batch.service.connection import Connection
from openai_batch.ui.console import shown

if TYPE_CHECKING:
    from openai.types import Batch


UNKNOWN_SHARED = "(the --requests file)"


def build_index(
    downloads: Sequence[Downloaded],
    groups: Mapping[str, str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    shared_unknown: bool = False,
) -> results.ResultIndex:
    """All results, the later batch winning (by creation time) within one request file.

    `groups` maps batch ids to their original request file (its digest): batches of different
    request files merge only when their custom_ids are disjoint (the shards of one table);
    otherwise this is a BatchError. A batch the ledger cannot place is a group of its own
    input file, or, with `shared_unknown` (the user named the request file with --requests),
    one group with the other unplaced batches. Without `groups`, everything is one group.
    """
    index = results.ResultIndex()
    ordered = sorted(downloads, key=lambda d: (d.batch.created_at or 0, d.batch.id))
    labels: dict[str, str] = {}
    files: list[tuple[Path, int, str]] = []
    for rank, item in enumerate(ordered):
        group = _group_of(item.batch, groups, shared_unknown)
        labels.setdefault(group, (names or {}).get(group) or f"batch {item.batch.id}")
        files.extend((path, rank, group) for path in (item.output, item.errors) if path is not None)
    index.add_files(files)  # a big job's files: read by two processes
    if index.conflicts:
        index.close()
        raise _conflict_error(index, labels)
    return index


def _group_of(batch: Batch, groups: Mapping[str, str] | None, shared_unknown: bool) -> str:
    if groups is None:
        return ""
    if batch.id in groups:
        return groups[batch.id]
    if shared_unknown:
        return UNKNOWN_SHARED
    return f"file:{batch.input_file_id or batch.id}"


def _conflict_error(index: results.ResultIndex, labels: Mapping[str, str]) -> ResultsConflict:
    """Two request files answer the same custom_ids: say which, and how to get each apart."""
    conflict = next(iter(index.conflicts.values()))
    first, second = (_shown_label(labels.get(g, g)) for g in conflict.groups)
    examples: list[str] = sorted(conflict.examples, key=results.natural_key)
    ids = quoted_list(examples)
    more = f" and {conflict.count - len(conflict.examples):,} more" if conflict.count > 3 else ""
    involved = dict.fromkeys(g for key in index.conflicts for g in key)
    gets: list[tuple[str, str]] = []
    used: set[str] = set()
    for n, group in enumerate(involved, start=1):
        label = labels.get(group, group)
        if label.startswith("batch "):
            target, out = label.removeprefix("batch "), f"responses-{n}.jsonl"
        else:
            target, out = shown(label), f"{Path(label).stem}-responses.jsonl"
        if out in used:
            out = f"{Path(out).stem}-{n}.jsonl"
        used.add(out)
        gets.append((target, out))
    return ResultsConflict(
        f"{first} and {second} are different request files with results for the same "
        f"custom_ids ({ids}{more}): merged, one file's answers would land on the other's rows",
        gets,
        unplaced=any(g.startswith("file:") for g in involved),
    )


def _shown_label(label: str) -> str:
    return label if label.startswith("batch ") else shown(label)


@dataclass
class Collected:
    downloads: list[Downloaded]
    responses: results.ResponsesSummary | None
    csv: join.CsvSummary | None  # the table, whatever its format
    plan: JoinPlan
    failing_files: list[Path] = field(default_factory=list)  # order files with failed/missing
    notes: list[str] = field(default_factory=list)  # what was odd in the result files
    groups: dict[str, str] = field(default_factory=dict)  # batch id -> its request file


def collect(
    conn: Connection,
    batches: Sequence[Batch],
    roots: Sequence[RequestFileRecord],
    outputs: Outputs,
    *,
    groups: Mapping[str, str] | None = None,
    progress: bool = False,
    parallel: int = 4,
    warn: Notify | None = None,
) -> Collected:
    """Download every file, merge, write the responses file (and the table, if asked for).

    `groups` (batch id -> original request file's digest, from Resolved or batch_groups) keeps
    unrelated request files from merging: see build_index. The data is only looked for and
    checked when a table is asked for. Both files are written even when no batch produced
    any (a batch failed validation): every row then says `missing`, and an older table at that
    path never passes for this run's. `warn` hears what is odd about the data before the join.
    """
    table = outputs.target()
    plan = plan_join(roots, outputs, join=table is not None)
    for warning in plan.warnings:
        if warn is not None:
            warn(warning)
    guard_outputs(
        outputs.written(), roots, data=plan.data or outputs.data, requests=outputs.requests,
        order_files=plan.order_files,
    )  # fmt: skip
    downloads = download_all(conn, batches, parallel=parallel)
    names = {r.digest: r.path for r in roots}
    shared = outputs.requests is not None
    index = build_index(downloads, groups, names=names, shared_unknown=shared)
    failing: list[Path] = []
    try:
        notes = results.problems(index)
        # A big join writes the responses file in a child process meanwhile (both cores);
        # the table takes its name only once the responses file is in place (`ready`).
        pending = start_responses(
            index, outputs.responses, plan.order(), background=table is not None
        )
        summary = None
        try:
            if table is not None:
                chunks = iter_data(plan) if plan.data is not None else None
                schema = join.response_schema(plan.order_files[0] if plan.order_files else None)
                summary = join.write_table(
                    index, table, chunks=chunks, order=plan.order(), keep_row=keep_rows(plan),
                    schema=schema, progress=progress, ready=pending.result,
                )  # fmt: skip
        except BaseException:
            pending.cancel()
            raise
        responses = pending.result()
        counted = summary or responses
        if counted.error or counted.missing:  # found by the responses file's pass
            failing = responses.failing or []
    finally:
        index.close()
    return Collected(downloads, responses, summary, plan, failing, notes, dict(groups or {}))


def all_ok(batches: Sequence[Batch], collected: Collected) -> bool:
    """Every request has a success. A batch that expired, failed or was cancelled is
    fine once a retry answered all its requests, but only if the requests are known (request
    file or data rows): otherwise the ones that never ran would go unnoticed."""
    counted = collected.csv or collected.responses
    if counted is None or counted.error or counted.missing:
        return False
    complete = collected.plan.order_files or (collected.csv and collected.plan.data)
    if any(b.status != "completed" for b in batches) and not complete:
        return False
    return all(_redone(b, collected) for b in batches)


def _redone(batch: Batch, collected: Collected) -> bool:
    """A batch completed, or a later batch of its request file (a retry) did: a batch that
    failed, expired or was cancelled is not made good by its own partial output."""
    if batch.status == "completed":
        return True
    group = collected.groups.get(batch.id)
    return group is not None and any(
        d.batch.status == "completed"
        and d.batch.id != batch.id
        and collected.groups.get(d.batch.id) == group
        and d.batch.created_at >= batch.created_at
        for d in collected.downloads
    )


def guard_outputs(
    outputs: Sequence[tuple[str, Path]],
    roots: Sequence[RequestFileRecord],
    *,
    data: Path | None = None,
    requests: Path | None = None,
    order_files: Sequence[Path] = (),
) -> None:
    """No results file or table is written over an input of these batches or one the ledger
    knows (`output_guard`), nor two outputs over each other."""
    from openai_batch.ledger.store import open_ledger

    reads: list[tuple[str, Path | str | None]] = [("data file", data), ("request file", requests)]
    for root in roots:
        reads += [
            ("request file", root.path),
            ("template", root.template),
            ("data file", root.data),
        ]
    reads += [("request file", path) for path in order_files]
    seen: dict[Path, str] = {}
    with open_ledger() as ledger:
        for flag, path in outputs:
            output_guard.check_output(path, flag=flag, reads=reads, ledger=ledger)
            resolved = path.expanduser().resolve()
            if resolved in seen:
                raise BatchError(
                    f"{flag} {path} is also given as {seen[resolved]}: one would overwrite the "
                    "other.",
                    hint=f"give {flag} another name.",
                )
            seen[resolved] = flag


def require_batches(batch_ids: Sequence[str]) -> None:
    if not batch_ids:
        raise BatchError("no batch given", hint="give a batch id (batch_...) or a request file")
