"""An estimate in words and tables, for people (the commands print these strings)."""

from __future__ import annotations

import math
from pathlib import Path

from openai_batch.estimate import prices
from openai_batch.estimate.cost import Estimate
from openai_batch.ui import tables
from openai_batch.ui.console import plural


def usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if value >= 0.995:
        return f"${value:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(value)))  # two significant digits
    return f"${value:.{decimals}f}"


def summary_line(est: Estimate) -> str:
    """One line for a person, e.g. for make-batch-file's summary."""
    approx = "~" if est.sampled else ""
    parts = [
        plural(est.requests, "request"),
        f"{approx}{plural(est.prompt_tokens, 'prompt token')}",
        f"output ≤ {est.max_output_tokens:,} tokens",
    ]
    if est.expected_output_tokens is not None:
        parts.append(f"~{est.expected_output_tokens:,} output tokens expected")
    if est.estimated_cost_usd is None:
        parts.append("cost unknown (no price for this model: use --price-input/--price-output)")
    elif est.expected_cost_usd is not None:
        parts.append(f"cost ~{usd(est.expected_cost_usd)} (at most {usd(est.max_cost_usd)})")
    else:
        parts.append(f"cost ≤ {usd(est.max_cost_usd)} (input {usd(est.input_cost_usd)})")
    line = " · ".join(parts)
    if est.estimated_cost_usd is not None:
        line += f", batch prices of {prices.PRICES_AS_OF}"
    return line


def table(est: Estimate) -> str:
    """Per-file rows and a total, aligned for a terminal."""
    rows = est.files or [est]
    expected = est.expected_output_tokens is not None
    header = ["file", "requests", "model", "prompt tokens", "output ≤"]
    if expected:
        header += ["output ~", "cost ~"]
    header += ["cost ≤"]
    body = [_row(f, Path(f.path).name if f.path else "-", expected) for f in rows]
    if len(rows) > 1:
        body.append(_row(est, "total", expected))
    rules = {0, len(body) - 1} if len(rows) > 1 else {0}  # under the header, above the total
    return tables.table(body, header, right=set(range(len(header))) - {0, 2}, rules_after=rules)


def _row(est: Estimate, name: str, expected: bool) -> list[str]:
    approx = "~" if est.sampled else ""
    model = est.model or ("mixed" if len(est.models) > 1 else "-")
    row = [name, f"{est.requests:,}", model, f"{approx}{est.prompt_tokens:,}"]
    row.append(f"{est.max_output_tokens:,}")
    if expected:
        row += [f"{est.expected_output_tokens or 0:,}", usd(est.expected_cost_usd)]
    row.append(usd(est.max_cost_usd))
    return row
