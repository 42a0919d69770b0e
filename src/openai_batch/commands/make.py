"""`openai-batch make-batch-file`: the CLI face of `batchfile.make_batch_files`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from .. import console
from ..batchfile import MAX_REQUESTS, MakeOptions, MakeResult, make_batch_files, preview
from ..lifecycle import remember_made
from ..sizes import parse_size
from ..tables import TableOptions


def make_options(
    output: Path,
    endpoint: str,
    max_requests: int,
    max_bytes: str,
    id_column: str | None,
    id_prefix: str,
    limit: int | None,
    sheet: str | None,
    delimiter: str | None,
    encoding: str | None,
    quiet: bool,
) -> MakeOptions:
    """MakeOptions from command-line values (shared with `run`)."""
    return MakeOptions(
        output=output,
        endpoint=endpoint,
        max_requests=max_requests,
        max_bytes=parse_size(max_bytes),
        id_column=id_column,
        id_prefix=id_prefix,
        table=TableOptions(sheet=sheet, delimiter=delimiter, encoding=encoding, limit=limit),
        progress=not quiet,
    )


def make_batch_file(
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
    image_size: str | None = None,
    expected_output: int | None = None,
    preview_rows: Annotated[int | None, Parameter(name="--preview")] = None,
    quiet: Annotated[bool, Parameter(alias="-q")] = False,
    json_output: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Render a prompt template against every row of a table into Batch API request files.

    Example: openai-batch make-batch-file config.json personas.csv -o batch-requests.jsonl

    Parameters
    ----------
    template
        The request body as JSON with <<Column>> placeholders (or {{Column}}).
    data
        The table: .csv, .tsv, .xlsx, .parquet or .jsonl (CSV/JSONL may be .gz).
    output
        Request file to write. When the rows need several files (API limits), they are
        <stem>-001.jsonl, <stem>-002.jsonl, ...
    endpoint
        Each request's url: /v1/chat/completions, /v1/responses, /v1/embeddings,
        /v1/completions or /v1/moderations.
    max_requests
        At most this many requests per file (the API allows 50,000).
    max_bytes
        At most this size per file: bytes, or e.g. 200MB, 150MiB (the API allows 200MB).
    id_column
        Make custom_ids from this column's values (id_<value>) instead of the row number.
    id_prefix
        Put this before each custom_id's number or value.
    limit
        Only the first N rows.
    sheet
        Excel sheet to read (default: the first).
    delimiter
        CSV delimiter (default: detected from the header row; "tab" for tabs).
    encoding
        Text encoding of a CSV/JSONL file (default UTF-8, with or without BOM).
    image_size
        For the cost estimate: the size (WxH) of remote images, which are not downloaded.
    expected_output
        For the cost estimate: the output tokens you expect per request.
    preview_rows
        Print the first N rendered requests and write nothing.
    quiet
        No progress bar.
    json_output
        Print the summary as one JSON object.
    """
    opts = make_options(
        output,
        endpoint,
        max_requests,
        max_bytes,
        id_column,
        id_prefix,
        limit,
        sheet,
        delimiter,
        encoding,
        quiet,
    )
    if preview_rows is not None:
        requests = preview(template, data, opts, max(1, preview_rows))
        for request in requests:
            console.say(json.dumps(request, indent=2, ensure_ascii=False))
        return 0
    from ..review import warm_up

    warm_up()
    result = make_batch_files(template, data, opts)
    remember_made(result)  # ledger: lets get-batch-results find the rows to join (lifecycle)
    report(result, json_output, image_size=image_size, expected_output=expected_output)
    return 0


def report(result: MakeResult, json_output: bool, **estimate_options: Any) -> None:
    """The summary: one line per file written, the cost estimate, any doubts (or JSON)."""
    from ..estimate import summary_line
    from ..review import review_files

    review = review_files([(f.path, f.requests) for f in result.files], **estimate_options)
    if json_output:
        console.print_json(
            {
                **result.to_json(),
                "estimate": review.estimate.to_dict(),
                "checked_requests": review.checked,
                "problems": [vars(p) for p in review.problems],
            }
        )
        return
    for info in result.files:
        console.say(
            f"Batch file created: {info.path} "
            f"({console.plural(info.requests, 'request')}, {console.human_bytes(info.bytes)})"
        )
    for path in result.stale:
        console.warn(f"{path} is from an earlier run and is not part of this output.")
    if len(result.files) > 1:
        console.say(
            f"{result.requests:,} requests in {len(result.files)} files "
            f"({console.human_bytes(result.bytes)})"
        )
    console.say(f"Estimate: {summary_line(review.estimate)}")
    for warning in review.estimate.warnings:
        console.warn(warning)
    for problem in review.problems[:10]:
        where = f"line {problem.line}" if problem.line else "a sampled line"
        console.warn(f"{problem.severity} in {where}: {problem.path}: {problem.message}")
    if review.errors:
        paths = " ".join(str(f.path) for f in result.files)
        console.warn(f"the API may reject some requests; `openai-batch utils validate {paths}`")
