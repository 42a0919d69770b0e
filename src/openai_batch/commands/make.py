"""`openai-batch make-batch-file`: the CLI face of `batchfile.make_batch_files`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from openai_batch.errors import BatchError
from openai_batch.estimate.options import EstimateOptions
from openai_batch.flow.submit import remember_made
from openai_batch.requestfile.endpoints import CHAT
from openai_batch.requestfile.make import MakeOptions, MakeResult, make_batch_files, preview
from openai_batch.sizes import parse_size
from openai_batch.table.read import TableOptions
from openai_batch.ui import console, hints


@Parameter(name="*")  # flattened: each field is a top-level option of the command using it
@dataclass
class RenderArgs:
    """make-batch-file's options, shared with `run` so the two never drift apart."""

    output: Annotated[Path, Parameter(alias="-o")] = Path("batch-requests.jsonl")
    """Request file to write (<stem>-001.jsonl, -002, ... when over the API's limits)."""
    endpoint: str = CHAT
    """Each request's url: /v1/chat/completions, responses, embeddings, completions, moderations."""
    max_requests: int | None = None
    """At most this many requests per file (default: the service's limit; OpenAI's is 50,000,
    Azure's 100,000)."""
    max_bytes: str | None = None
    """At most this size per file: bytes, or e.g. 200MB, 150MiB (default: the service's limit;
    OpenAI's is 200MB, Groq's 100MB)."""
    service: str | None = None
    """The batch service whose limits apply (openai, azure, groq, deepinfra, ...; default: from
    AZURE_OPENAI_ENDPOINT / OPENAI_BASE_URL, else OpenAI). See docs/services.md."""
    id_column: str | None = None
    """Make custom_ids from this column's values (id_<value>) instead of the row number."""
    id_prefix: str = "id_"
    """Put this before each custom_id's number or value."""
    limit: int | None = None
    """Only the first N rows."""
    sheet: str | None = None
    """Excel sheet to read (default: the first)."""
    delimiter: str | None = None
    """CSV delimiter (default: detected from the header row; "tab" for tabs)."""
    encoding: str | None = None
    """Text encoding of a CSV/JSONL file (default UTF-8, with or without BOM)."""
    keep_spaces: bool = False
    """Keep the space after each delimiter of a CSV written with ", " between all fields (by
    default that space is dropped from headers and cells)."""
    ragged_rows: bool = False
    """Accept CSV rows with fewer fields than the header (empty cells) or more (extra fields
    ignored); by default such a row is an error naming it."""
    image_size: str | None = None
    """For the cost estimate: the size (WxH) of remote images, which are not downloaded."""
    expected_output: int | None = None
    """For the cost estimate: the output tokens you expect per request."""

    def options(self, quiet: bool) -> MakeOptions:
        from openai_batch.service.profiles import select

        limits = select(self.service).limits
        return MakeOptions(
            output=self.output,
            endpoint=self.endpoint,
            max_requests=limits.requests if self.max_requests is None else self.max_requests,
            max_bytes=limits.file_bytes if self.max_bytes is None else parse_size(self.max_bytes),
            limits=limits,
            id_column=self.id_column,
            id_prefix=self.id_prefix,
            table=TableOptions(
                self.sheet,
                self.delimiter,
                self.encoding,
                self.limit,
                self.keep_spaces,
                self.ragged_rows,
            ),
            progress=not quiet,
        )

    def estimate_options(self) -> EstimateOptions:
        return EstimateOptions(image_size=self.image_size, expected_output=self.expected_output)


def make_batch_file(
    template: Path,
    data: Path,
    *,
    render: RenderArgs = RenderArgs(),  # noqa: B008 - an immutable default, read only
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
    preview_rows
        Print the first N rendered requests and write nothing.
    quiet
        Only errors and the result lines: no progress bar, notes, warnings or details.
    json_output
        Print the summary as one JSON object.
    """
    console.set_quiet(quiet)
    opts = render.options(quiet)
    if preview_rows is not None:
        if preview_rows < 1:
            raise BatchError(f"--preview must be at least 1, not {preview_rows}")
        requests = preview(template, data, opts, preview_rows)
        for request in requests:
            console.say(json.dumps(request, indent=2, ensure_ascii=False))
        return 0
    from concurrent.futures import ThreadPoolExecutor

    from openai_batch.requestfile.review import Warmup, review_files

    # The SDK's types and the tokenizer load while rows render, started once the template and
    # the table have opened (a mistake there fails at once) and waited for on every path, so
    # no thread outlives the command (one still importing at exit crashes the interpreter).
    with Warmup() as warm:

        def inputs_open() -> None:
            warm.start(data=data)
            opts.checker = warm.child

        opts.inputs_open = inputs_open
        result = make_batch_files(template, data, opts)
        child = warm.child
        files = [(f.path, f.requests) for f in result.files]
        with ThreadPoolExecutor(1) as pool:  # the review overlaps the ledger's hashing
            review = pool.submit(
                review_files, files, child=child, options=render.estimate_options()
            )
            problem = remember_made(result)  # ledger: lets get-batch-results find the rows
            if problem:
                console.warn(problem)
            report(result, json_output, review=review.result())
    return 0


def report(
    result: MakeResult,
    json_output: bool,
    review: Any = None,
    options: EstimateOptions | None = None,
) -> None:
    """The summary: one line per file written, the cost estimate, any doubts (or JSON).

    `review` is `review.review_files`'s answer when the caller already has it."""
    from openai_batch.estimate.report import summary_line
    from openai_batch.requestfile.review import review_files

    if review is None:
        files = [(f.path, f.requests) for f in result.files]
        review = review_files(files, options=options)
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
    if result.skipped_spaces:
        console.info(
            f"Read {result.data} without the space after each delimiter (every field is "
            "written with one); --keep-spaces keeps it."
        )
    for path in result.stale:
        console.warn(f"{path} is from an earlier run and is not part of this output.")
    if len(result.files) > 1:
        console.say(
            f"{console.plural(result.requests, 'request')} in {len(result.files)} files "
            f"({console.human_bytes(result.bytes)})"
        )
    console.info(f"Estimate: {summary_line(review.estimate)}")
    if review.checked < review.total:
        console.info(
            f"Checked {review.checked:,} of the {review.total:,} requests, sampled at random; "
            "the token count is scaled from them (`utils validate` checks every line)."
        )
    for warning in review.estimate.warnings:
        console.warn(warning)
    for problem in review.problems[:10]:
        where = f"line {problem.line}" if problem.line else "a sampled line"
        console.warn(f"{problem.severity} in {where}: {problem.path}: {problem.message}")
    if review.errors:
        validate = hints.command(["utils", "validate", *(f.path for f in result.files)])
        console.warn(f"the API may reject some requests; `{validate}`")
