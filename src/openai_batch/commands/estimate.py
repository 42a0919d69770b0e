"""`openai-batch utils estimate FILE...`: tokens and cost of request files, offline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.ui import console

if TYPE_CHECKING:
    from openai_batch.estimate.cost import Estimate


def estimate(
    *files: Path,
    image_size: str | None = None,
    expected_output: int | None = None,
    price_input: float | None = None,
    price_output: float | None = None,
    model: Annotated[str | None, Parameter(alias="-m")] = None,
    sample: int | None = None,
    per_request: bool = False,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Count prompt tokens, the output ceiling and the cost of request files, before uploading.

    Parameters
    ----------
    files
        Request files (.jsonl) to estimate.
    image_size
        Size of remote (http/https) images as WIDTHxHEIGHT, e.g. 2048x683. Without it each
        remote image is assumed to cost the most it can.
    expected_output
        Output tokens you expect per request, for a realistic cost next to the ceiling.
    price_input
        Input price in USD per 1M tokens (default: the bundled batch price of the model).
    price_output
        Output price in USD per 1M tokens (default: the bundled batch price of the model).
    model
        Model to assume for requests whose body names none.
    sample
        Tokenize only a random sample of this many requests per file and scale up (fast
        for very large files).
    per_request
        Also list every request's tokens (table on stdout, or `per_request` in --json).
    as_json
        Print one JSON object instead of the table.
    """
    from openai_batch.estimate.cost import estimate_files
    from openai_batch.estimate.options import EstimateOptions
    from openai_batch.estimate.report import summary_line, table

    if not files:
        raise BatchError("no request file given.", hint=Command("utils", "estimate", "FILE.jsonl"))
    for name, value in (("--price-input", price_input), ("--price-output", price_output)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise BatchError(f"{name} must be a finite, non-negative number (USD per 1M tokens).")
    options = EstimateOptions(
        model_hint=model,
        image_size=image_size,
        expected_output=expected_output,
        sample=sample,
        price_input=price_input,
        price_output=price_output,
    )
    est = estimate_files(files, options)
    if as_json:
        console.print_json(est.to_dict(per_request=per_request))
        return 0
    console.say(table(est))
    if per_request:
        _print_per_request(est)
    console.say()
    console.say(summary_line(est))
    for text in est.assumptions:
        console.note(f"assumed: {text}")
    for text in est.warnings:
        console.warn(text)
    return 0


def _print_per_request(est: Estimate) -> None:
    for f in est.files or [est]:
        if f.per_request is None:
            console.note(f"{f.path}: no per-request figures when --sample is used")
            continue
        console.say()
        console.say(f"{f.path}:")
        console.say(f"  {'line':>6}  {'custom_id':<24} {'prompt':>9} {'output ≤':>9}")
        for r in f.per_request:
            cid = r.custom_id or "-"
            console.say(f"  {r.line:>6}  {cid:<24} {r.prompt_tokens:>9,} {r.max_output_tokens:>9,}")
