"""`openai-batch get-batch-results BATCH_ID_OR_PATH...`: status, timeline, results, CSV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from cyclopts import Parameter

from openai_batch.commands.options import (
    EXIT_INTERRUPTED,
    EXIT_NOT_ALL_OK,
    POLL_INTERVAL,
    check_job_options,
    job_exit_code,
)
from openai_batch.errors import BatchError, Command
from openai_batch.flow import collect, resolve
from openai_batch.flow import follow as following
from openai_batch.flow.session import Session
from openai_batch.ledger.store import Ledger, RequestFileRecord, open_ledger
from openai_batch.results.outputs import Outputs
from openai_batch.service.batch_calls import is_final
from openai_batch.service.connection import Connection, connect
from openai_batch.ui import batchview, console, hints, progress
from openai_batch.ui import collected as collected_view

if TYPE_CHECKING:
    from openai.types import Batch


def get_batch_results(
    *targets: str,
    output: Annotated[Path, Parameter(alias="-o")] = Path("batch-responses.jsonl"),
    csv: Path | None = None,
    table: Path | None = None,
    data: Path | None = None,
    requests: Path | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
    wait: Annotated[bool, Parameter(alias="-w")] = False,
    poll_interval: Annotated[float | None, POLL_INTERVAL] = None,
    job: str | None = None,
    max_enqueued_tokens: int | None = None,
    parallel: int = 4,
    quiet: Annotated[bool, Parameter(alias="-q")] = False,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Show batches' status and timeline; once finished, write every result in request order.

    Example: openai-batch get-batch-results batch-requests.jsonl --wait --csv results.csv

    Output and error lines go together into one file, in the order of the request file
    (natural custom_id order when it is unknown). Several batches of one request file (retries)
    merge: the latest success wins. Different request files combine only when their custom_ids
    differ (the files of one make-batch-file run); the same custom_id answered for two request
    files is refused, never merged: get those one at a time. Exit status: 0 when every batch
    completed and every request succeeded; 4 when a batch failed, expired or was cancelled, or
    some requests failed (what exists is still written); 130 when Ctrl-C stopped --wait (the
    batches go on).

    Parameters
    ----------
    targets
        Batch ids (batch_...), or request files: a file stands for every batch started from it
        (and from retry files made from it).
    output
        Where to write the merged results (JSON lines, one per request).
    csv
        Also write a table: every input row plus custom_id, status (ok, error, missing),
        content, finish_reason, refusal, prompt_tokens, completion_tokens, error, and one
        column per top-level key of JSON answers (the response schema's properties, else the
        keys a tenth of the answers share).
    table
        Like --csv, in the format the extension names: .csv, .tsv, .jsonl, .parquet (typed:
        token counts as integers, schema columns typed) or .xlsx (every cell text, so no
        formula runs when it is opened; at most 1,048,575 rows).
    data
        With --csv: the table the requests were made from, trusted as given (default: the one
        recorded by make-batch-file, refused if it changed since).
    requests
        The request file, for the order of the results when the ledger does not know it; the
        batches the ledger cannot place are then taken as batches of this one file.
    id_column
        With --data: the column the custom_ids were made from (as make-batch-file --id-column).
    id_prefix
        With --data: the custom_id prefix (as make-batch-file --id-prefix).
    wait
        Poll until every batch has finished, with a progress bar. Ctrl-C stops waiting, not
        the batch.
    poll_interval
        Seconds between the first polls; the interval grows to at most a minute (default 5;
        60 on Azure, which asks for at least a minute between status calls).
    job
        A job (from run or start-batch) instead of targets: one status table for its request
        files, queued ones started as the quota allows (with --wait until all are final), then
        one responses file and one CSV for the whole table.
    max_enqueued_tokens
        With --job: change the job's quota of estimated prompt tokens enqueued (0: none).
    parallel
        Download this many output and error files at once (and with --job, upload this many
        of its files at once, if some are not uploaded yet).
    quiet
        Only errors and the result lines: no progress bar, notes, warnings or details.
    as_json
        Print the API's batch objects plus what this command adds (files written, counts).
    """
    outputs = Outputs(output, csv, table, data, requests, id_column, id_prefix)
    outputs.target()  # a wrong table name (or both --csv and --table) fails now
    if parallel < 1:
        raise BatchError("--parallel must be at least 1")
    console.set_quiet(quiet)
    if job is not None:
        return _job_results(
            targets, job, replace(outputs, requests=None), wait=wait,
            poll_interval=poll_interval, quota=max_enqueued_tokens, parallel=parallel,
            quiet=quiet, as_json=as_json,
        )  # fmt: skip
    collect.require_batches(targets)
    conn = connect()
    poll_interval = conn.profile.poll_interval if poll_interval is None else poll_interval
    with open_ledger() as ledger:
        resolved = resolve.resolve(conn, ledger, targets)
        # before any waiting: an output over an input is refused now, not after hours
        collect.guard_outputs(outputs.written(), [], data=data, requests=requests)
        args = hints.results_args(resolved.batch_ids, outputs)
        batches = _follow_batches(
            conn, ledger, resolved.batch_ids, wait, poll_interval, quiet, as_json, args
        )
        if batches is None:
            return EXIT_INTERRUPTED
        resolve.attach_roots(ledger, conn.service, resolved)
        for warning in resolved.warnings:
            console.warn(warning)
        return finish(
            conn, batches, resolved.roots, outputs, labels=resolved.labels, as_json=as_json,
            resume=args, groups=resolved.groups, progress=not quiet, parallel=parallel,
        )  # fmt: skip


def _job_results(
    targets: Sequence[str],
    name: str,
    outputs: Outputs,
    *,
    wait: bool,
    poll_interval: float | None,
    quota: int | None,
    parallel: int,
    quiet: bool,
    as_json: bool,
) -> int:
    """get-batch-results --job NAME: move the job forward and, when it is all final, collect."""
    from openai_batch.flow.jobrun import Follow, follow_job
    from openai_batch.ledger import jobstore
    from openai_batch.ui.jobview import JobPrinter

    if targets:
        raise BatchError(
            "give either --job NAME or batch ids / request files, not both",
            hint=Command("get-batch-results", "--job", name),
        )
    check_job_options(quota, parallel)
    conn = connect()
    poll_interval = conn.profile.poll_interval if poll_interval is None else poll_interval
    with open_ledger() as ledger:
        the_job = jobstore.load_job(ledger, name, conn.service)
        if quota is not None:
            jobstore.set_quota(ledger, name, quota)
            the_job = jobstore.load_job(ledger, name)
        how = Follow(
            wait=wait, poll_interval=poll_interval, parallel=parallel, outputs=outputs,
            progress=not quiet,
        )  # fmt: skip
        printer = JobPrinter(outputs, quiet=quiet, as_json=as_json, announce_existing=False)
        outcome = follow_job(conn, ledger, the_job, how, printer)
        printer.show(outcome)
        return job_exit_code(outcome)


def _follow_batches(
    conn: Connection,
    ledger: Ledger,
    batch_ids: Sequence[str],
    wait: bool,
    poll_interval: float,
    quiet: bool,
    as_json: bool,
    resume: list[str],
) -> list[Batch] | None:
    """The batches now, or when final with --wait; None when Ctrl-C stopped the wait."""
    if not wait:
        session = Session(conn, ledger)
        return [session.batch(b) for b in batch_ids]
    try:
        with progress.batches_bar(enabled=not quiet) as on_update:
            return following.wait_for(
                conn, ledger, batch_ids, poll_interval=poll_interval, on_update=on_update
            )
    except following.StoppedWaiting as stopped:
        if as_json:
            console.print_json({"batches": [batchview.batch_json(b) for b in stopped.batches],
                                "finished": False})  # fmt: skip
        else:
            for batch in stopped.batches:
                console.say(batchview.describe(batch))
        console.note("Stopped waiting; the batches go on. Resume with:")
        console.note(f"  {hints.wait_command(resume)}")
        return None


def finish(
    conn: Connection,
    batches: Sequence[Batch],
    roots: Sequence[RequestFileRecord],
    outputs: Outputs,
    *,
    labels: dict[str, str] | None = None,
    as_json: bool = False,
    resume: list[str] | None = None,
    groups: dict[str, str] | None = None,
    progress: bool = False,
    parallel: int = 4,
) -> int:
    """Show the batches; when all are final, download, merge and write. Returns the exit code."""
    labels = labels or {}
    if not as_json:
        for batch in batches:
            console.info(batchview.describe(batch, request_file=labels.get(batch.id)))
            console.info()
    report: dict[str, Any] = {"batches": [batchview.batch_json(b) for b in batches]}
    if not all(is_final(b) for b in batches):
        report["finished"] = False
        if as_json:
            console.print_json(report)
        else:
            running = sum(1 for b in batches if not is_final(b))
            batches_ = console.plural(running, "batch", "batches")
            console.say(f"{batches_} not finished yet: nothing downloaded.")
            if resume:
                console.note("Wait for the results with:")
                console.note(f"  {hints.wait_command(resume)}")
        return 0
    report["finished"] = True
    collected = collect.collect(
        conn,
        batches,
        roots,
        outputs,
        groups=groups,
        progress=progress,
        parallel=parallel,
        warn=console.warn,
    )
    code = 0 if collect.all_ok(batches, collected) else EXIT_NOT_ALL_OK
    if as_json:
        report.update(collected_view.collected_json(collected))
        console.print_json(report)
    else:
        collected_view.say_collected(batches, collected)
    return code
