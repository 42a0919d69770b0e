"""Retry what failed: a new request file holding the original lines of every request that did not
succeed, recorded in the ledger as derived from the original request file.

The results come from every batch made for one request file (the original and its earlier
retries, merged as get-batch-results merges them: a success anywhere counts), or from results
files the user names. A request is retried when its result is an error (non-200 or an error
object: rate limits, server errors, `batch_expired`, `batch_cancelled`) or when there is no
result at all (the batch expired, was cancelled or failed validation). Lines are copied byte for
byte, in the original order, so the retry asks exactly what the original asked; because the
ledger records the retry file's parent, `get-batch-results ORIGINAL` merges every batch and the
CSV keeps one row per input row.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, Command, quoted
from openai_batch.flow import collect, resolve
from openai_batch.flow.downloads import download_results
from openai_batch.flow.session import Session
from openai_batch.flow.submit import scanned_facts
from openai_batch.ledger.digests import digest_of, matches, new_digest
from openai_batch.ledger.locks import Notify
from openai_batch.ledger.requestfiles import RequestFileFacts
from openai_batch.ledger.store import Ledger, RequestFileRecord
from openai_batch.local import files, output_guard
from openai_batch.requestfile import scan
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.requestfile.read import RequestLine, first_line, first_request, read_lines
from openai_batch.results import merge as results
from openai_batch.results.answers import failure_reason
from openai_batch.service import shape as batchshape
from openai_batch.service.batch_calls import is_final, retrieve_batch
from openai_batch.service.connection import Connection
from openai_batch.ui import console
from openai_batch.ui.commandline import option

if TYPE_CHECKING:
    from openai.types import Batch


@dataclass
class Tally:
    """How the requests of one request file ended, across the results consulted."""

    total: int = 0
    ok: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # reason -> requests
    expired: int = 0
    cancelled: int = 0
    missing: int = 0  # no result at all

    @property
    def retried(self) -> int:
        return sum(self.failed.values()) + self.expired + self.cancelled + self.missing

    def add(self, index: results.ResultIndex, custom_id: str) -> bool:
        """Count one request; True when it needs another go."""
        self.total += 1
        entry_ok = index.entry_ok(custom_id)
        if entry_ok is None:
            self.missing += 1
            return True
        if entry_ok:
            self.ok += 1
            return False
        kind, reason = failure_reason(index.record(custom_id))
        if kind == "expired":
            self.expired += 1
        elif kind == "cancelled":
            self.cancelled += 1
        else:
            self.failed[reason] += 1
        return True

    def describe(self) -> str:
        """`12 failed (429 rate_limit_exceeded: 10, 500 server_error: 2), 3 missing`."""
        parts = []
        failed = sum(self.failed.values())
        if failed:
            reasons = ", ".join(f"{r}: {n:,}" for r, n in self.failed.most_common())
            parts.append(f"{failed:,} failed ({reasons})")
        for label, n in (
            ("expired", self.expired),
            ("cancelled", self.cancelled),
            ("missing", self.missing),
        ):
            if n:
                parts.append(f"{n:,} {label}")
        return ", ".join(parts) or "none"


# ---------------------------------------------------------------------------------------------
# Where the results and the original lines come from


@dataclass
class Source:
    """The results to judge by, the request file whose lines are copied, and its root."""

    requests: Path  # the original lines come from here (byte for byte)
    root_digest: str  # the request file every retry of this family derives from
    root: RequestFileRecord | None  # its ledger record
    index: results.ResultIndex
    batches: list[Batch] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)  # results files given by the user
    service: str | None = None  # where `batches` ran (None: results files, offline)


def looks_like_request_file(path: Path) -> bool:
    """Request lines carry method/url/body; result lines carry response/error."""
    line = first_line(path)
    first = line.request if line is not None else None
    return first is not None and "body" in first and "response" not in first


def from_results_files(
    ledger: Ledger, paths: Sequence[Path], requests: Path | None, *, warn: Notify | None = None
) -> Source:
    """Results files (get-batch-results' merged file, or raw Batch output/error files): the
    later file wins for a custom_id, a success beats an error. `warn` hears what is odd in
    them."""
    if requests is None:
        raise BatchError(
            "a results file does not say which request file it answers",
            hint=("name it: ", _naming_requests(paths), " (or give the batch id instead)"),
        )
    _require_file(requests, "--requests")
    index = results.ResultIndex()
    for rank, path in enumerate(paths):
        _require_file(path, "results file")
        index.add_file(path, rank)
    _tell(warn, results.problems(index))
    if not len(index):
        index.close()
        raise BatchError(
            f"{', '.join(map(str, paths))} holds no results",
            hint="give the batch id instead: a batch that produced no output is retried whole",
        )
    digest = digest_of(requests)
    known = ledger.request_file(digest=digest)
    root = ledger.root_request_file(digest, path=requests) if known else None
    if root is None:  # remember it, so get-batch-results on it finds the retry's batches
        root = _record_plain(ledger, requests)
    return Source(requests, root.digest, root, index, inputs=list(paths))


def from_batches(
    conn: Connection,
    ledger: Ledger,
    target: str,
    requests: Path | None,
    *,
    warn: Notify | None = None,
) -> Source:
    """A batch id or a request file: every batch of its family (the original request file and
    its retries), all of which must have ended. `warn` hears of batches the service does not
    know and of what is odd in their results."""
    if resolve.looks_like_batch_id(target):
        root = _root_of_batch(conn, ledger, target, requests)
    else:
        if requests is not None:
            raise BatchError(
                "--requests goes with a batch id or a results file, not a request file",
                hint=Command("utils", "retry-failed", target, "-o", "retry.jsonl"),
            )
        root = _root_of_request_file(ledger, Path(target))
    family = [root.digest, *(r.digest for r in ledger.request_files_derived_from(root.digest))]
    records = ledger.batches_for(conn.service, digests=family)
    if not records:
        raise BatchError(
            f"no batch was started from {root.path} on {conn.describe()}",
            hint=("start one first: ", Command("start-batch", root.path)),
        )
    batches = _final_batches(conn, ledger, [r.batch_id for r in records], warn)
    lines_from = _original_lines(root, requests)
    downloads = [download_results(conn, b) for b in batches]
    index = collect.build_index(downloads)
    _tell(warn, results.problems(index))
    return Source(lines_from, root.digest, root, index, batches=batches, service=conn.service)


def _root_of_batch(
    conn: Connection, ledger: Ledger, batch_id: str, requests: Path | None
) -> RequestFileRecord:
    session = Session(conn, ledger)
    record = ledger.batch(conn.service, batch_id)
    if record is None or not record.digest:
        session.batch(batch_id)  # an unknown id is a clear ApiError
    root = resolve.root_of_batch(ledger, conn.service, batch_id)
    if root is not None:
        return root
    if requests is None:
        raise BatchError(
            f"the ledger does not know the request file batch {batch_id} was started from",
            hint=("name it: ", _naming_requests([batch_id])),
        )
    _require_file(requests, "--requests")
    batch = retrieve_batch(conn, batch_id)
    info = scan.scan_request_file(requests, check=False)
    total = batch.request_counts.total if batch.request_counts else 0
    if total and total != info.requests:
        raise BatchError(
            f"batch {batch_id} has {total:,} requests but {requests} has {info.requests:,}",
            hint="give the request file this batch was started from",
        )
    root = _record_plain(ledger, requests, info)
    session.record(batch, digest=info.digest)  # get-batch-results finds it
    return root


def _naming_requests(targets: Sequence[str | Path]) -> Command:
    """retry-failed for results whose request file the ledger does not know: name it."""
    naming = ("--requests", "batch-requests.jsonl", "-o", "retry.jsonl")
    return Command("utils", "retry-failed", *targets, *naming)


def _root_of_request_file(ledger: Ledger, path: Path) -> RequestFileRecord:
    check_request_path(path)
    digest = digest_of(path)
    known = ledger.request_file(path=path, digest=digest) or ledger.request_file(digest=digest)
    root = ledger.root_request_file(digest, path=path) if known else None
    if root is None:
        raise BatchError(
            f"the ledger knows no batch of {path} (or the file changed since it was started)",
            hint="give the batch id with --requests FILE, or the results file with --requests FILE",
        )
    return root


def _record_plain(
    ledger: Ledger, path: Path, info: scan.RequestFileInfo | None = None
) -> RequestFileRecord:
    info = info or scan.scan_request_file(path, check=False)
    return ledger.record_request_file(scanned_facts(path, info))


def _tell(warn: Notify | None, warnings: Sequence[str]) -> None:
    for warning in warnings:
        if warn is not None:
            warn(warning)


def _final_batches(
    conn: Connection, ledger: Ledger, batch_ids: Sequence[str], warn: Notify | None
) -> list[Batch]:
    """The family's batches now; one still running would be paid for twice by a retry."""
    session = Session(conn, ledger)
    batches = []
    for batch_id in batch_ids:
        batch = session.find(batch_id)
        if batch is None:
            _tell(warn, [f"batch {batch_id} (in the ledger) is unknown to the service; skipped"])
            continue
        batches.append(batch)
    running = [b for b in batches if not is_final(b)]
    if running:
        ids = [b.id for b in running]
        wait = Command("get-batch-results", *ids, "--wait")
        cancel = Command("cancel-batch", *ids)
        raise BatchError(
            f"batch {running[0].id} is still {running[0].status}: retrying its requests now "
            "could pay for them twice",
            hint=("wait for it (", wait, ") or cancel it (", cancel, "), then run this again"),
        )
    return batches


def _original_lines(root: RequestFileRecord, requests: Path | None) -> Path:
    """The request file to copy lines from: --requests, else the root's path, unchanged."""
    if requests is not None:
        _require_file(requests, "--requests")
        if not matches(requests, root.digest):
            raise BatchError(
                f"--requests {requests} is not the request file these batches were started "
                f"from ({root.path}): its content differs",
                hint="give an unchanged copy of that file, or leave out --requests",
            )
        return requests
    path = Path(root.path)
    if path.is_file() and matches(path, root.digest):
        return path
    raise BatchError(
        f"{root.path}, the request file these batches were started from, is gone or changed",
        hint="give an unchanged copy with --requests FILE",
    )


def _require_file(path: Path, what: str) -> None:
    if not Path(path).is_file():
        raise BatchError(f"{what} {path}: no such file")


# ---------------------------------------------------------------------------------------------
# Writing the retry file


@dataclass
class RetryReport:
    source: Source
    tally: Tally
    output: Path | None  # None: nothing to retry, nothing written
    digest: str | None = None
    bytes: int = 0
    same_as_original: bool = False
    # completed batches of exactly this content (an earlier retry that failed the same way):
    # start-batch would show them instead of starting, so the next step needs --force
    started_as: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "output": str(self.output) if self.output else None,
            "digest": self.digest,
            "requests_file": str(self.source.requests),
            "parent_digest": self.source.root_digest,
            "batches": [{"id": b.id, "status": b.status} for b in self.source.batches],
            "results_files": [str(p) for p in self.source.inputs],
            "total": t.total,
            "ok": t.ok,
            "retried": t.retried,
            "failed": sum(t.failed.values()),
            "failed_by_reason": dict(t.failed.most_common()),
            "expired": t.expired,
            "cancelled": t.cancelled,
            "missing": t.missing,
            "same_as_original": self.same_as_original,
            "started_as": self.started_as,
        }


def write_retry_file(ledger: Ledger, source: Source, output: Path) -> RetryReport:
    """Copy the lines of every request without a success into `output` and record it in the
    ledger as derived from the root; nothing is written when every request succeeded."""
    output = Path(output)
    _check_output(ledger, source, output)
    tally = Tally()
    temp = files.temp_path_for(output)
    hasher = new_digest()
    size = 0
    seen: set[str] = set()
    try:
        with open(temp, "wb") as dst:
            for line in read_lines(source.requests):
                if line.empty:
                    continue
                custom_id = _custom_id(line, source.requests)
                if custom_id in seen:
                    raise BatchError(
                        f"{source.requests}:{line.number}: custom_id "
                        f"{quoted(custom_id)} appears twice",
                        hint="a request file the API accepted has unique custom_ids; check it",
                    )
                seen.add(custom_id)
                if tally.add(source.index, custom_id):
                    raw = line.raw if line.raw.endswith(b"\n") else line.raw + b"\n"
                    dst.write(raw)
                    hasher.update(raw)
                    size += len(raw)
        _check_results_belong(source, seen)
        if tally.retried == 0:
            files.discard(temp)
            return RetryReport(source, tally, None)
        _check_limits(tally.retried, size, output)
        files.commit(temp, output)
    except BaseException:
        files.discard(temp)
        raise
    finally:
        source.index.close()
    report = RetryReport(source, tally, output, hasher.hexdigest(), size)
    _record_retry(ledger, report)
    report.started_as = _started_as(ledger, source, report.digest)
    return report


def _started_as(ledger: Ledger, source: Source, digest: str | None) -> list[str]:
    """The family's completed batches whose content is `digest`: a retry that failed again
    the same way has the content of the retry before it."""
    if source.service is None or digest is None:
        return []
    found = []
    for batch in source.batches:
        record = ledger.batch(source.service, batch.id)
        same = record is not None and record.digest == digest
        if same and batchshape.is_reusable(batch):
            found.append(batch.id)
    return found


def _custom_id(line: RequestLine, path: Path) -> str:
    custom_id = line.custom_id()
    if custom_id is None:
        raise BatchError(
            f"{path}:{line.number}: not a request line with a custom_id",
            hint="give the request file the batch was started from",
        )
    return custom_id


def _check_results_belong(source: Source, seen: set[str]) -> None:
    """Results for custom_ids the request file lacks: the wrong request file was given."""
    stray = [c for c in source.index.custom_ids() if c not in seen]
    if stray:
        raise BatchError(
            f"{console.plural(len(stray), 'result')} with custom_ids not in {source.requests} "
            f"(e.g. {quoted(stray[0])}): these results do not answer that request file",
            hint="give the request file these results came from with --requests",
        )


def _check_limits(requests: int, size: int, output: Path) -> None:
    """A retry is a subset of a file the API took, so this only trips on a foreign --requests.
    The limits are the service's (Azure takes 100,000 requests a file)."""
    from openai_batch.service.profiles import select

    limits = select().limits
    if limits.exceeded_by(requests, size):
        raise BatchError(
            f"{output} would hold {requests:,} requests ({console.human_bytes(size)}), over "
            f"{limits.service}'s limit of {limits.describe()} per file",
            hint="split the request file with make-batch-file --max-requests / --max-bytes",
        )


def _check_output(ledger: Ledger, source: Source, output: Path) -> None:
    """Never overwrite the original, the results being read, or another job's request file."""
    if output.suffix.lower() != ".jsonl":
        raise BatchError(
            f"-o {output}: the Batch API accepts only .jsonl files",
            hint=f"use {option('-o', output.with_suffix('.jsonl').name)}",
        )
    reads: list[tuple[str, Path | str | None]] = [("request file", source.requests)]
    reads += [("results file", path) for path in source.inputs]
    if source.root is not None:
        reads.append(("request file", source.root.path))
    # the ledger's request files are judged below (a retry may replace one of its family)
    output_guard.check_output(
        output, flag="-o", reads=reads, ledger=ledger, may_replace=lambda w: w == "request file"
    )
    target = output.expanduser().resolve()
    if not target.is_file():
        return
    digest = digest_of(target)
    record = ledger.request_file(digest=digest)
    if record is None or digest == source.root_digest:
        return
    if record.parent_digest != source.root_digest:
        raise BatchError(
            f"-o {output} is the request file {record.path} of other batches (the ledger "
            "knows it); overwriting it would lose it",
            hint="write the retry file elsewhere, e.g. -o retry.jsonl",
        )


def _record_retry(ledger: Ledger, report: RetryReport) -> None:
    """The retry derives from the root; a retry of every request is the root's very content,
    so it is recorded like the root (a parent equal to itself would be a cycle)."""
    assert report.output is not None and report.digest is not None
    source, root = report.source, report.source.root
    first = first_request(report.output)
    endpoint, model = first.get("url"), (first.get("body") or {}).get("model")
    facts = RequestFileFacts(
        report.output, report.digest, bytes=report.bytes, requests=report.tally.retried,
        endpoint=endpoint, model=model,
    )  # fmt: skip
    if report.digest == source.root_digest:
        report.same_as_original = True
        if root is not None:
            facts = dataclasses.replace(
                facts, template=root.template, table=root.table, first_row=root.first_row,
                shard=root.shard, shards=root.shards, make_run=root.make_run,
            )  # fmt: skip
        ledger.record_request_file(facts)
        return
    ledger.record_request_file(dataclasses.replace(facts, parent_digest=source.root_digest))


__all__ = [
    "RetryReport",
    "Source",
    "Tally",
    "failure_reason",
    "from_batches",
    "from_results_files",
    "looks_like_request_file",
    "write_retry_file",
]
