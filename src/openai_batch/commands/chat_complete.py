"""`openai-batch utils chat-complete`: the CLI face of `flow/chat_complete.run_requests`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from openai_batch.errors import quoted
from openai_batch.flow.chat_complete import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GIVE_UP_AFTER,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    RunSummary,
    run_requests,
    write_table,
)
from openai_batch.results.join import formula_warning
from openai_batch.results.tablewriter import table_target
from openai_batch.ui import console

EXIT_SOME_FAILED = 4
EXIT_INTERRUPTED = 130


def chat_complete(
    file: Path,
    *,
    output: Annotated[Path | None, Parameter(alias="-o")] = None,
    concurrency: Annotated[int, Parameter(alias="-c")] = DEFAULT_CONCURRENCY,
    base_url: str | None = None,
    api_key_env: str | None = None,
    model: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    max_rps: float | None = None,
    max_tpm: float | None = None,
    give_up_after: float = DEFAULT_GIVE_UP_AFTER,
    csv: Path | None = None,
    table: Path | None = None,
    data: Path | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
    quiet: Annotated[bool, Parameter(alias="-q")] = False,
    json_output: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Run a request file through the synchronous API, writing Batch API-format results.

    Example: openai-batch utils chat-complete batch-requests.jsonl --concurrency 16

    Re-running the same command skips requests already answered and retries the failed ones.
    Exit status: 0 when every request has an answer, 4 when some failed (their lines are in the
    output, in the Batch API's error format), 130 when interrupted.

    Parameters
    ----------
    file
        A Batch API request file (.jsonl), e.g. from make-batch-file.
    output
        Results file (default: beside FILE, named after it: batch.jsonl gives
        batch.responses.jsonl).
    concurrency
        Most requests in flight at once (under a rate limit, fewer: the pace adapts to the
        server's 429s and rate-limit headers by itself).
    base_url
        An OpenAI-compatible server, e.g. http://localhost:8000/v1 for vLLM or
        http://localhost:11434/v1 for Ollama (default: OPENAI_BASE_URL, else OpenAI).
    api_key_env
        Environment variable holding the API key (default OPENAI_API_KEY; a local server
        given with --base-url needs no key).
    model
        Send every request to this model instead of the one in the file.
    max_retries
        Retries per request on 5xx, timeouts and dropped connections (429s slow the run down
        and never count against these).
    timeout
        Seconds to wait for one answer.
    max_rps
        Never send more than this many requests per second (your rate limit, if you know it).
    max_tpm
        Never send more than this many tokens per minute (estimated as characters / 4 plus
        max_tokens, as OpenAI counts them).
    give_up_after
        Stop when the server has answered nothing but 429 for this many seconds.
    csv
        Also write a table, as get-batch-results --csv does: every input row plus custom_id,
        status, content, ... and one column per top-level key of JSON answers.
    table
        Like --csv, in the format the extension names (.csv .tsv .jsonl .parquet .xlsx; see
        get-batch-results --table).
    data
        The table the requests were made from (default: the one recorded by make-batch-file).
    id_column
        With --data: the column the custom_ids were made from (as make-batch-file --id-column).
    id_prefix
        With --data: the custom_id prefix (as make-batch-file --id-prefix).
    quiet
        Only errors and the result lines: no progress bar, notes, warnings or details.
    json_output
        Print the summary as one JSON object.
    """
    target = table_target(table, csv_path=csv)  # a wrong name fails before any paid call
    console.set_quiet(quiet)
    summary = run_requests(
        file,
        output,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        model=model,
        max_rps=max_rps,
        max_tpm=max_tpm,
        give_up_after=give_up_after,
        progress=not quiet,
        on_note=console.note,
    )
    written = None
    if target is not None and summary.output.exists():
        written = write_table(
            file,
            summary.output,
            target,
            data=data,
            id_column=id_column,
            id_prefix=id_prefix,
            on_note=console.note,
            on_warning=console.warn,
        )
    report(summary, json_output, written)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0 if summary.complete else EXIT_SOME_FAILED


def report(summary: RunSummary, json_output: bool, table: Any = None) -> None:
    if json_output:
        data = summary.to_json()
        if table is not None:
            data["csv"] = {
                "path": str(table.path),
                "rows": table.rows,
                "ok": table.ok,
                "error": table.error,
                "missing": table.missing,
                "columns": table.columns,
                "format": table.kind,
                "formula_cells": table.formulas,
            }
        console.print_json(data)
        return
    answered = summary.already_done + summary.succeeded
    console.say(f"Answers written to: {summary.output}")
    if table is not None:
        console.say(
            f"Table written to: {table.path} ({console.plural(table.rows, 'row')}: "
            f"{table.ok:,} ok, "
            f"{table.error:,} error, {table.missing:,} missing)"
        )
        if table.unmatched:
            answers = console.plural(table.unmatched, "answer")
            console.warn(f"{answers} matching no row of the data: check --data")
        for text in table.notes:
            console.note(f"({text})")
        formulas = formula_warning(table)
        if formulas:
            console.warn(formulas)
    console.say(
        f"{answered:,} of {console.plural(summary.total, 'request')} answered "
        f"({summary.succeeded} now, {summary.already_done} earlier), {summary.failed} failed"
    )
    if summary.rate_limited:
        console.note(
            f"the server asked to slow down {summary.rate_limited} times (429); "
            "each of those requests was sent again"
        )
    for custom_id, reason in list(summary.failures.items())[:5]:
        console.note(f"  {quoted(custom_id)}: {reason}")
    if summary.failed > 5:
        console.note(f"  ... and {summary.failed - 5} more")
    if summary.interrupted:
        console.warn(f"interrupted; {console.plural(summary.not_run, 'request')} not run yet")
    if not summary.complete:
        console.note(f"run the same command again to retry the {summary.total - answered} left")
