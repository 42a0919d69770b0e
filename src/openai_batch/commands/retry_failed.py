"""`openai-batch utils retry-failed SOURCE -o FILE`: a request file of what failed or never ran."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.ui import console, hints
from openai_batch.ui.console import shown

if TYPE_CHECKING:
    from openai_batch.ledger.store import Ledger
    from openai_batch.results.retry import RetryReport, Source


def retry_failed(
    *sources: str,
    output: Annotated[Path, Parameter(alias="-o")],
    requests: Path | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Write a request file with the original lines of every request that failed or has no result.

    Example: openai-batch utils retry-failed batch-requests.jsonl -o retry.jsonl

    A request is retried when its result is an error (HTTP status other than 200, or an error
    object such as batch_expired) or when it has no result at all (the batch expired, was
    cancelled or failed). Its line is copied byte for byte, same custom_id, in the original
    order. The new file is recorded as a retry of the original, so after `start-batch FILE`,
    `get-batch-results ORIGINAL` merges every batch (the latest success wins) into one result
    per request and one CSV row per input row. With nothing to retry no file is written.

    Parameters
    ----------
    sources
        A batch id or a request file: judged by every batch made for that request file (the
        original and its retries), all of which must have ended. Or results files (what
        get-batch-results writes, or a Batch output/error file), with --requests.
    output
        The retry request file to write (.jsonl). Never the original request file.
    requests
        The request file the batch or results answer, when the ledger does not know it.
    as_json
        Print one JSON object: output, counts by outcome and reason, batches consulted.
    """
    from openai_batch.ledger.store import open_ledger
    from openai_batch.results import retry

    if not sources:
        raise BatchError(
            "no batch id, request file or results file given",
            hint=Command("utils", "retry-failed", "batch_...", "-o", "retry.jsonl"),
        )
    with open_ledger() as ledger:
        source = _source(ledger, sources, requests)
        report = retry.write_retry_file(ledger, source, output)
    if as_json:
        console.print_json(report.to_json())
    else:
        say_report(report, output)
    return 0


def _source(ledger: Ledger, sources: tuple[str, ...], requests: Path | None) -> Source:
    """One batch id or request file (the API is asked), or results files (offline)."""
    from openai_batch.results import retry
    from openai_batch.service.connection import connect

    paths = [Path(s) for s in sources]
    single = len(sources) == 1
    if single and not paths[0].exists() and not any(c in sources[0] for c in "/\\."):
        return retry.from_batches(connect(), ledger, sources[0], requests, warn=console.warn)
    for path in paths:
        if path.exists():
            check_request_path(path, results_allowed=True)  # a folder, a table, a template
    missing = [p for p in paths if not p.is_file()]
    if missing:
        alone = "; a batch id goes alone" if str(missing[0]).startswith("batch_") else ""
        raise BatchError(
            f"{missing[0]}: no such file{alone}",
            hint="give a batch id (batch_...), a request file, or results files",
        )
    kinds = [retry.looks_like_request_file(p) for p in paths]
    if single and kinds[0]:
        return retry.from_batches(connect(), ledger, sources[0], requests, warn=console.warn)
    if any(kinds):
        raise BatchError(
            f"{paths[kinds.index(True)]} is a request file; give it alone, or results files only",
            hint=Command("utils", "retry-failed", "batch-requests.jsonl", "-o", "retry.jsonl"),
        )
    return retry.from_results_files(ledger, paths, requests, warn=console.warn)


def say_report(report: RetryReport, output: Path) -> None:
    source, tally = report.source, report.tally
    if source.batches:
        seen = ", ".join(f"{b.id} ({b.status})" for b in source.batches)
        batches = console.plural(len(source.batches), "batch", "batches")
        console.note(f"Results of {batches}: {seen}")
    lines_from = shown(source.requests)
    original = shown(source.root.path if source.root is not None else source.requests)
    if report.output is None:
        every = "the request" if tally.total == 1 else f"all {tally.total:,} requests"
        console.say(f"Nothing to retry: {every} of {lines_from} succeeded.")
        if output.exists():
            console.warn(
                f"{output} exists from before and was left as it was; nothing needs it now"
            )
        return
    console.say(
        f"Retry file written: {report.output} ({tally.retried:,} of "
        f"{console.plural(tally.total, 'request')} "
        f"of {lines_from})"
    )
    console.say(f"  {tally.describe()}")
    force = False
    if report.same_as_original:
        console.note("(every request needs another go: the file has the original's content)")
    if report.same_as_original or report.started_as:
        # start-batch would show the finished batch of this content instead of starting one
        if report.started_as and not report.same_as_original:
            console.note(
                f"(the same requests failed again: batch {report.started_as[-1]} already ran "
                "this exact content, so starting it again needs --force)"
            )
        force = True
    console.say(f"Start it:  {hints.start_again(report.output, force=force)}")
    then = hints.command(["get-batch-results", original, "--wait", "--csv", "results.csv"])
    console.say(f"Then:      {then}  (merges every batch of it; the latest success wins)")
