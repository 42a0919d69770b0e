"""What make-batch-file and run say of the request files they wrote: one line per file, the
cost estimate and any doubts (or one JSON object with --json)."""

from __future__ import annotations

from typing import Any

from openai_batch.estimate.options import EstimateOptions
from openai_batch.requestfile.shards import MakeResult
from openai_batch.ui import console, hints


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
