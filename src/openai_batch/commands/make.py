"""`openai-batch make-batch-file`: the CLI face of `batchfile.make_batch_files`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from openai_batch.commands.options import RenderArgs
from openai_batch.errors import BatchError
from openai_batch.flow.submit import remember_made
from openai_batch.requestfile.make import make_batch_files, preview
from openai_batch.ui import console
from openai_batch.ui import made as made_view


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
            try:
                problem = remember_made(result)  # ledger: lets get-batch-results find the rows
                if problem:
                    console.warn(problem)
                made_view.report(result, json_output, review=review.result())
            except BaseException:  # Ctrl-C: the pool's exit must not wait for the child
                warm.abandon()
                raise
    return 0
