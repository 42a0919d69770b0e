"""What get-batch-results, run and jobs say of the files they wrote: for a person (counts,
warnings, the retry commands) and for a program (`--json`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.results import join
from openai_batch.results import merge as results_merge
from openai_batch.ui import batchview, console, hints

if TYPE_CHECKING:
    from openai.types import Batch

    from openai_batch.flow.collect import Collected


def say_collected(batches: Sequence[Batch], collected: Collected) -> None:
    for batch in batches:
        note = batchview.final_note(batch)
        if note:
            console.say(note)
    for text in [*collected.plan.notes, *collected.notes]:
        console.warn(text)
    responses = collected.responses
    if responses is None:
        console.say("No output or error file: no responses file written.")
    else:
        console.say(
            f"Results written to: {responses.path} ({console.plural(responses.lines, 'line')}: "
            f"{results_merge.summarize_counts(responses)})"
        )
        if responses.extra:
            console.warn(
                f"{console.plural(responses.extra, 'result')} with custom_ids not in the request "
                "file: at the end"
            )
    table = collected.csv
    if table is not None:
        console.say(
            f"Table written to: {table.path} ({console.plural(table.rows, 'row')}: "
            f"{results_merge.summarize_counts(table)})"
        )
        for text in table.notes:
            console.note(f"({text})")
        formulas = join.formula_warning(table)
        if formulas:
            console.warn(formulas)
        if table.unmatched:
            console.warn(
                f"{console.plural(table.unmatched, 'result')} matching no row of the data: "
                "check --data, "
                "--id-column and --id-prefix"
            )
        if collected.plan.data is None:
            console.note("(no data file known: the table has the results only; add --data FILE)")
    counted = table or responses
    if counted is not None and (counted.error or counted.missing) and has_retry_command():
        commands = retry_commands(batches, collected)
        if commands:
            console.note("To redo the failed or missing requests:")
        for command in commands:
            console.note(f"  {command}")


def retry_commands(batches: Sequence[Batch], collected: Collected) -> list[str]:
    """One retry-failed per request file with something to redo (see hints.retry_commands)."""
    return hints.retry_commands(collected.plan.order_files, collected.failing_files, batches[-1].id)


def has_retry_command() -> bool:
    from openai_batch.cli import utils

    return "retry-failed" in utils


def collected_json(collected: Collected) -> dict[str, Any]:
    out: dict[str, Any] = {
        "downloads": [
            {"batch_id": d.batch.id, "output": _str(d.output), "errors": _str(d.errors)}
            for d in collected.downloads
        ],
        "responses": None,
        "csv": None,
        "notes": collected.plan.notes,
    }
    if collected.responses:
        r = collected.responses
        out["responses"] = {
            "path": str(r.path), "lines": r.lines, "ok": r.ok, "error": r.error,
            "missing": r.missing, "extra": r.extra,
        }  # fmt: skip
    if collected.csv:
        c = collected.csv
        out["csv"] = {
            "path": str(c.path), "rows": c.rows, "ok": c.ok, "error": c.error,
            "missing": c.missing, "unmatched": c.unmatched, "columns": c.columns,
            "format": c.kind, "formula_cells": c.formulas,
        }  # fmt: skip
    table_notes = collected.csv.notes if collected.csv else []
    out["notes"] = [*collected.plan.notes, *collected.notes, *table_notes]
    return out


def _str(path: Path | None) -> str | None:
    return str(path) if path else None
