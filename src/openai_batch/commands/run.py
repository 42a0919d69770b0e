"""`openai-batch run TEMPLATE DATA`: make, upload, start and (with --wait) collect, in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from openai_batch.commands.options import (
    POLL_INTERVAL,
    RenderArgs,
    check_job_options,
    job_exit_code,
)
from openai_batch.flow import jobregister, jobs, submit
from openai_batch.flow.jobrun import Follow, follow_job
from openai_batch.ledger.store import open_ledger
from openai_batch.local import output_guard
from openai_batch.requestfile.make import make_batch_files
from openai_batch.results.outputs import Outputs
from openai_batch.service.connection import connect
from openai_batch.ui import console
from openai_batch.ui import made as made_view
from openai_batch.ui.jobview import JobPrinter


def run(
    template: Path,
    data: Path,
    *,
    render: RenderArgs = RenderArgs(),  # noqa: B008 - immutable, read only
    description: str = submit.DEFAULT_DESCRIPTION,
    metadata: list[str] | None = None,
    wait: Annotated[bool, Parameter(alias="-w")] = False,
    responses: Path = Path("batch-responses.jsonl"),
    csv: Path | None = None,
    table: Path | None = None,
    poll_interval: Annotated[float | None, POLL_INTERVAL] = None,
    completion_window: str = "24h",
    job: str | None = None,
    max_enqueued_tokens: int | None = None,
    parallel: int = 4,
    force: bool = False,
    quiet: Annotated[bool, Parameter(alias="-q")] = False,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Make the request files, upload them, start the batches and, with --wait, get the results.

    Example: openai-batch run config.json personas.csv --wait --csv results.csv

    The request files form one job in the ledger (named after the data file, or --job). With
    --max-enqueued-tokens only as many files run at once as fit the organisation's enqueued-token
    limit; the others start as earlier ones finish, and a batch that fails with
    token_limit_exceeded is queued again. Running it again with the same inputs uploads and
    starts nothing new: it continues the job from the ledger, even after a kill (--force starts
    new batches). Exit status as get-batch-results: 0 when all succeeded, 4 when something
    failed or is missing, 130 when Ctrl-C stopped --wait (the batches go on; run the same
    command again to pick them up).

    Parameters
    ----------
    template
        The request body as JSON with `<<Column>>` placeholders (or `{{Column}}`).
    data
        The table: .csv, .tsv, .xlsx, .parquet or .jsonl.
    description
        The batches' metadata "description".
    metadata
        More metadata as KEY=VALUE (repeatable).
    wait
        Wait for the batches to finish, then write --responses (and --csv).
    responses
        With --wait: where to write the merged results.
    csv
        With --wait: also write the table of every input row with its result.
    table
        Like --csv, in the format the extension names (.csv .tsv .jsonl .parquet .xlsx; see
        get-batch-results --table).
    poll_interval
        Seconds between the first polls; grows to at most a minute (default 5; 60 on Azure,
        which asks for at least a minute between status calls).
    completion_window
        The time the service has to finish each batch: 24h on OpenAI and Azure; some
        compatible services take more (Groq: 24h to 7d).
    job
        Name of the job (default: the data file's name, made unique; the same inputs find
        their job again). get-batch-results --job NAME and list-batches --job NAME follow it.
    max_enqueued_tokens
        Start request files only while the estimated prompt tokens of the job's running
        batches stay within N (your organisation's batch queue limit for the model, on its
        limits page). A single file over N runs alone. 0 removes a quota set earlier.
    parallel
        Upload this many request files at once.
    force
        Start new batches even if the same requests already have one running or completed.
    quiet
        Only errors and the result lines: no progress bar, notes, warnings or details.
    as_json
        Print one JSON object: files made, batches (the API's objects), results written.
    """
    console.set_quiet(quiet)
    opts = render.options(quiet)
    meta = submit.parse_metadata(metadata or [], description)
    check_job_options(max_enqueued_tokens, parallel)
    outputs = Outputs(responses, csv, table)
    target = outputs.target()  # a wrong name fails before anything is made
    written = [("--responses", responses), *([(target.flag, target.path)] if target else [])]
    inputs = [("template", template), ("data file", data), ("request file", opts.output)]
    with open_ledger() as ledger:  # before anything is paid for (collect checks again)
        for flag, path in written:
            output_guard.check_output(path, flag=flag, reads=inputs, ledger=ledger)
    conn = connect(service=render.service)  # a missing key fails before rendering rows
    conn.profile.check_window(completion_window)
    meta = jobs.with_window(meta, completion_window)
    made = make_batch_files(template, data, opts)
    if not as_json:
        made_view.report(made, False, options=render.estimate_options())
    with open_ledger() as ledger:
        submit.record_made(ledger, made)
        the_job, _ = jobregister.register(
            ledger, conn.service, jobregister.specs_from_made(made), name=job, template=template,
            data=data, endpoint=made.endpoint, metadata=meta,
            max_enqueued_tokens=max_enqueued_tokens, force=force,
        )  # fmt: skip
        how = Follow(
            wait=wait, parallel=parallel,
            poll_interval=conn.profile.poll_interval if poll_interval is None else poll_interval,
            outputs=outputs, collect_when_done=False, fresh=[f.digest for f in made.files],
            progress=not quiet,
        )  # fmt: skip
        printer = JobPrinter(
            outputs, quiet=quiet, as_json=as_json, extra_json={"make": made.to_json()}
        )
        outcome = follow_job(conn, ledger, the_job, how, printer)
        printer.show(outcome)
        return job_exit_code(outcome)
