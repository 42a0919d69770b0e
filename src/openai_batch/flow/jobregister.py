"""Forming a job: which request files make one, under what name, and recording it.

Rerunning a command finds the job its files already form (same template, data and output,
same file contents) so it resumes rather than starting twice. Files given to start-batch form a
job unasked only when they are shards of one make-batch-file run; others must have disjoint
custom_ids, since a job merges its results by custom_id.

Each shard's prompt-token figure (what the quota counts) is the offline estimate of
estimate/sampled.py, made once when the shard first joins a job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError, Command, quoted
from openai_batch.ledger import jobstore
from openai_batch.ledger.jobrecords import Job, JobInputs, ShardSpec
from openai_batch.ledger.paths import abs_path
from openai_batch.ledger.requestfiles import RequestFileFacts
from openai_batch.ledger.store import Ledger
from openai_batch.requestfile import scan
from openai_batch.results import merge as results
from openai_batch.ui.console import plural

if TYPE_CHECKING:
    from openai_batch.requestfile.make import MakeResult

_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SHARD_SUFFIX = re.compile(r"-\d{3,}$")


def default_name(data: str | Path | None, first_file: str | Path) -> str:
    """The data file's stem (`emails`), else the first request file's without `-001`."""
    stem = Path(data).stem if data else _SHARD_SUFFIX.sub("", Path(first_file).stem)
    if stem.endswith((".csv", ".jsonl", ".tsv")):  # emails.csv.gz
        stem = Path(stem).stem
    return _NAME_CHARS.sub("-", stem).strip("-.") or "job"


def register(
    ledger: Ledger,
    service: str,
    specs: Sequence[ShardSpec],
    *,
    name: str | None = None,
    template: str | Path | None = None,
    data: str | Path | None = None,
    endpoint: str | None = None,
    metadata: dict[str, str] | None = None,
    max_enqueued_tokens: int | None = None,
    force: bool = False,
) -> tuple[Job, bool]:
    """Create the job for these request files, or find the one they already form.

    Without `name`, the job made from the same template, data and output files with the same
    contents is found again (so rerunning a command resumes it); otherwise a new name is derived
    from the data file, made unique. Returns (job, created). `max_enqueued_tokens` None keeps the
    recorded quota, 0 removes it. `force` queues every shard again for a new batch.
    """
    from openai_batch.estimate.sampled import prompt_tokens  # tokenizers load on first use

    if not specs:
        raise BatchError("a job needs at least one request file")
    tokens = {}
    for spec in specs:  # outside the write transaction: tokenizing takes a moment
        known = jobstore.known_tokens(ledger, spec.digest)
        tokens[spec.digest] = (
            known if known is not None else prompt_tokens(spec.path, spec.requests)
        )
    inputs = JobInputs(
        template=abs_path(template),
        data=abs_path(data),
        output=abs_path(specs[0].path),
        endpoint=endpoint,
        metadata=metadata,
        max_enqueued_tokens=max_enqueued_tokens,
        force=force,
    )
    try:
        name, created = jobstore.save_job(
            ledger, service, specs, tokens, inputs, name=name,
            new_name=default_name(data, specs[0].path),
        )  # fmt: skip
    except jobstore.OtherShards as other:
        follow = Command("get-batch-results", "--job", other.name)
        raise BatchError(
            f"{other} ({plural(other.recorded, 'file')}; these {other.given} differ)",
            hint=(
                "give these files a new job name with --job NAME, or follow the old job with `",
                follow,
                "`",
            ),
        ) from None
    for spec in specs:
        facts = RequestFileFacts(
            spec.path,
            spec.digest,
            bytes=spec.bytes,
            requests=spec.requests,
            endpoint=endpoint,
            first_row=spec.first_row,
            job=name,
        )
        ledger.record_request_file(facts)
    return jobstore.load_job(ledger, name), created


def specs_from_made(made: MakeResult) -> list[ShardSpec]:
    return [ShardSpec(Path(f.path), f.digest, f.requests, f.bytes, f.first_row) for f in made.files]


def specs_from_infos(ledger: Ledger, infos: Iterable[scan.RequestFileInfo]) -> list[ShardSpec]:
    """Request files given to start-batch: their row offsets when make-batch-file recorded them."""
    specs = []
    for info in infos:
        record = ledger.request_file(path=info.path, digest=info.digest)
        first_row = record.first_row if record else None
        specs.append(ShardSpec(info.path, info.digest, info.requests, info.bytes, first_row))
    return specs


def one_make_run(ledger: Ledger, infos: Iterable[scan.RequestFileInfo]) -> bool:
    """Whether these request files are shards of one make-batch-file run: only those form a
    job unasked (their custom_ids are disjoint rows of one table). Files recorded before run
    ids were: the same template, data and table options, and distinct shard numbers."""
    records = [ledger.request_file(path=i.path, digest=i.digest) for i in infos]
    if not records or any(r is None or not r.data for r in records):
        return False
    found = [r for r in records if r is not None]
    if len({r.digest for r in found}) != len(found):
        return False
    runs = {r.make_run for r in found}
    if None not in runs:
        return len(runs) == 1
    tables = {(r.template, r.table, r.shards) for r in found}
    numbers = [r.shard for r in found]
    return len(tables) == 1 and None not in numbers and len(set(numbers)) == len(numbers)


def check_disjoint_ids(paths: Sequence[Path]) -> None:
    """Refuse request files that share a custom_id: one job merges its results by custom_id,
    so one file's answers would replace the other's and land on the wrong rows."""
    seen: dict[str, Path] = {}
    for path in paths:
        for custom_id in results.iter_request_ids(path):
            first = seen.setdefault(custom_id, path)
            if first != path:
                raise BatchError(
                    f"{first} and {path} both have custom_id {quoted(custom_id)}: as one job their "
                    "results would be merged, and answers joined to the wrong rows",
                    hint="start them as separate batches (without --job and "
                    "--max-enqueued-tokens), or make them with different --id-prefix",
                )


def recorded_data(ledger: Ledger, specs: Sequence[ShardSpec]) -> tuple[str | None, str | None]:
    """(template, data) make-batch-file recorded for these files, when they all share them."""
    pairs = set()
    for spec in specs:
        record = ledger.request_file(path=spec.path, digest=spec.digest)
        pairs.add((record.template, record.data) if record else (None, None))
    return next(iter(pairs)) if len(pairs) == 1 else (None, None)
