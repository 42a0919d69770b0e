"""`openai-batch run TEMPLATE DATA`: make, upload, start and (with --wait) collect, in one go."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from .. import api, batchview, console, lifecycle
from ..batchfile import MAX_REQUESTS, make_batch_files
from ..ledger import open_ledger
from . import make, results


def run(
    template: Path,
    data: Path,
    *,
    output: Annotated[Path, Parameter(alias="-o")] = Path("batch-requests.jsonl"),
    endpoint: str = "/v1/chat/completions",
    max_requests: int = MAX_REQUESTS,
    max_bytes: str = "200MB",
    id_column: str | None = None,
    id_prefix: str = "id_",
    limit: int | None = None,
    sheet: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    description: str = lifecycle.DEFAULT_DESCRIPTION,
    metadata: list[str] | None = None,
    wait: Annotated[bool, Parameter(alias="-w")] = False,
    responses: Path = Path("batch-responses.jsonl"),
    csv: Path | None = None,
    poll_interval: float = 5.0,
    force: bool = False,
    quiet: Annotated[bool, Parameter(alias="-q")] = False,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Make the request files, upload them, start the batches and, with --wait, get the results.

    Example: openai-batch run config.json personas.csv --wait --csv results.csv

    Running it again with the same inputs uploads and starts nothing new: it picks up the
    batches already running or finished (--force starts new ones). Exit status as
    get-batch-results: 0 when all succeeded, 4 when something failed or is missing, 130 when
    Ctrl-C stopped --wait (the batches go on; run the same command again to pick them up).

    Parameters
    ----------
    template
        The request body as JSON with `<<Column>>` placeholders (or `{{Column}}`).
    data
        The table: .csv, .tsv, .xlsx, .parquet or .jsonl.
    output
        Request file to write (several files `<stem>-001.jsonl`, ... when over the API limits).
    endpoint
        Each request's url: /v1/chat/completions, /v1/responses, /v1/embeddings,
        /v1/completions or /v1/moderations.
    max_requests
        At most this many requests per file (the API allows 50,000).
    max_bytes
        At most this size per file: bytes, or e.g. 200MB, 150MiB (the API allows 200MB).
    id_column
        Make custom_ids from this column's values (`id_<value>`) instead of the row number.
    id_prefix
        Put this before each custom_id's number or value.
    limit
        Only the first N rows.
    sheet
        Excel sheet to read (default: the first).
    delimiter
        CSV delimiter (default: detected).
    encoding
        Text encoding of a CSV/JSONL file (default UTF-8).
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
    poll_interval
        Seconds between the first polls; grows to at most a minute.
    force
        Start new batches even if the same requests already have one running or completed.
    quiet
        No progress bars.
    as_json
        Print one JSON object: files made, batches (the API's objects), results written.
    """
    opts = make.make_options(
        output, endpoint, max_requests, max_bytes, id_column, id_prefix, limit, sheet,
        delimiter, encoding, quiet,
    )  # fmt: skip
    meta = lifecycle.parse_metadata(metadata or [], description)
    conn = api.connect()  # a missing key fails before rendering a million rows
    made = make_batch_files(template, data, opts)
    if not as_json:
        make.report(made, False)
    with open_ledger() as ledger:
        lifecycle.record_made(ledger, made)
        started = [
            lifecycle.start_one(conn, ledger, info.path, metadata=meta, force=force, info=info)
            for info in lifecycle.made_infos(made)
        ]
        if not as_json:
            for item in started:
                start_report(item)
        roots = [ledger.request_file(path=s.path, sha256=s.sha256) for s in made.files]
        ids = [s.batch.id for s in started]
        if not wait:
            return not_waiting(made, started, ids, responses, csv, as_json)
        args = [*results.resume_args(ids, responses, csv, None, None, None, None)]
        batches = results.follow(conn, ledger, ids, True, poll_interval, quiet, as_json, args)
        if batches is None:
            return results.EXIT_INTERRUPTED
    labels = {s.batch.id: str(s.target) for s in started}
    return results.finish(
        conn, batches, [r for r in roots if r is not None], labels=labels, output=responses,
        csv=csv, as_json=as_json, extra_json={"make": made.to_json()},
    )  # fmt: skip


def start_report(item: lifecycle.Started) -> None:
    from . import start

    start.report(item)


def not_waiting(
    made: object,
    started: list[lifecycle.Started],
    ids: list[str],
    responses: Path,
    csv: Path | None,
    as_json: bool,
) -> int:
    args = results.resume_args(ids, responses, csv, None, None, None, None)
    if as_json:
        console.print_json(
            {
                "make": made.to_json(),  # type: ignore[attr-defined]
                "batches": [
                    batchview.batch_json(s.batch, target=str(s.target), reused=s.reused)
                    for s in started
                ],
                "finished": False,
            }
        )
        return 0
    console.say("Get the results when they are done with:")
    console.say(f"  {lifecycle.resume_command([*args, '--wait'])}")
    return 0
