"""make-batch-file as a library: template + table -> request files the Batch API accepts.

Rows stream through in chunks; lines go to temp files that are renamed into place only when every
row has rendered, so a failure at row 900,000 leaves no file and an existing output untouched.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, Command, quoted, quoted_list
from openai_batch.local import output_guard
from openai_batch.requestfile.fastpath import render_fast
from openai_batch.requestfile.firstline import check_first_line, rendered_request
from openai_batch.requestfile.options import MakeOptions, check_options
from openai_batch.requestfile.shards import MakeResult, ShardWriter
from openai_batch.table.read import Table, open_table
from openai_batch.table.spec import TableSpec
from openai_batch.template.compile import load_template
from openai_batch.template.prompt import Template

if TYPE_CHECKING:
    import pandas as pd


# ---------------------------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------------------------


class IdMaker:
    """Gives each row its custom_id and refuses empty or repeated ones."""

    def __init__(self, table: Table, id_column: str | None, prefix: str) -> None:
        if id_column is not None and id_column not in table.columns:
            close = difflib.get_close_matches(id_column, table.columns, n=1, cutoff=0.5)
            raise BatchError(
                f"--id-column {quoted(id_column)} is not a column of {table.path}.",
                hint=(f"did you mean {quoted(close[0])}? " if close else "")
                + "columns: "
                + quoted_list(table.columns),
            )
        self.column = id_column
        self.prefix = prefix
        self._seen: dict[str, int] = {}

    def ids(self, chunk: pd.DataFrame, start: int) -> list[str]:
        if self.column is None:
            return [f"{self.prefix}{i}" for i in range(start, start + len(chunk))]
        values = chunk[self.column].tolist()
        seen = self._seen
        for offset, value in enumerate(values):
            row = start + offset
            if value == "":
                raise BatchError(
                    f"row {row + 1}: the id column {quoted(self.column)} is empty.",
                    hint="every row needs its own id; or leave out --id-column for id_0, id_1, ...",
                )
            if value in seen:
                raise BatchError(
                    f"rows {seen[value] + 1} and {row + 1} have the same id {quoted(value)} "
                    f"in column {quoted(self.column)}; custom_ids must be unique.",
                    hint="fix the duplicates, or leave out --id-column for id_0, id_1, ...",
                )
            seen[value] = row
        return [f"{self.prefix}{v}" for v in values]


def iter_identified_chunks(
    spec: TableSpec | Path,
) -> Iterator[tuple[list[str], pd.DataFrame]]:
    """The data rows in order, chunk by chunk, each with the custom_id make-batch-file gave it
    (a bare path: read with the defaults, ids id_0, id_1, ...)."""
    if not isinstance(spec, TableSpec):
        spec = TableSpec(str(spec))
    table = open_table(Path(spec.path), spec.read_options())
    maker = IdMaker(table, spec.id_column, spec.id_prefix)
    start = 0
    for chunk in table.chunks():
        yield maker.ids(chunk, start), chunk
        start += len(chunk)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def line_prefix(custom_id: str, endpoint: str) -> str:
    return (
        f'{{"custom_id": {encode_basestring(custom_id)}, "method": "POST", '
        f'"url": {encode_basestring(endpoint)}, "body": '
    )


def render_chunk(
    template: Template, chunk: pd.DataFrame, ids: Sequence[str], start: int, endpoint: str
) -> list[str]:
    """One request line (with its newline) per row of the chunk."""
    columns = template.used_columns()
    values = [chunk[c].tolist() for c in columns]
    lines = []
    for offset, cells in enumerate(zip(*values, strict=True) if values else [()] * len(chunk)):
        row = dict(zip(columns, cells, strict=True))
        try:
            body = template.render(row)
        except BatchError as exc:
            raise BatchError(
                f"row {start + offset + 1} (custom_id {ids[offset]}): {exc.message}", exc.hint_parts
            ) from None
        lines.append(f"{line_prefix(ids[offset], endpoint)}{body}}}\n")
    return lines


def open_inputs(template_path: Path, data_path: Path, opts: MakeOptions) -> tuple[Table, Template]:
    check_options(opts)
    output_guard.check_output(
        opts.output, flag="-o", reads=[("template", template_path), ("data file", data_path)]
    )
    _check_order(template_path, data_path)
    table = open_table(data_path, opts.table)
    template = load_template(template_path, table.columns, base_dir=data_path.resolve().parent)
    return table, template


def _check_order(template_path: Path, data_path: Path) -> None:
    """`make-batch-file people.csv config.json`: the two given the other way round."""
    from openai_batch.table.read import FORMATS

    swapped = data_path.suffix.lower() == ".json" and (
        template_path.suffix.lower() in FORMATS.keys() - {".jsonl", ".ndjson"}
    )
    if swapped:
        raise BatchError(
            f"{data_path} looks like the template and {template_path} like the data: the "
            "template comes first",
            hint=Command("make-batch-file", data_path, template_path),
        )


def make_batch_files(template_path: Path, data_path: Path, opts: MakeOptions) -> MakeResult:
    """Render every row into request files; all or nothing."""
    table, template = open_inputs(template_path, data_path, opts)
    _check_not_known_inputs(opts.output)
    if opts.inputs_open is not None:
        opts.inputs_open()
    maker = IdMaker(table, opts.id_column, opts.id_prefix)
    # plain-column templates: vectorised, the same bytes
    if (fast := render_fast(table, template, template_path, data_path, opts)) is not None:
        fast.stale = stale_outputs(opts.output, [s.path for s in fast.files])
        fast.skipped_spaces = table.skip_spaces
        return fast
    writer = ShardWriter(opts.output, opts.max_requests, opts.max_bytes)
    model: str | None = None
    start = 0
    bar = opts.rows_progress(table.total_rows)
    try:
        for chunk in table.chunks():
            ids = maker.ids(chunk, start)
            lines = render_chunk(template, chunk, ids, start, opts.endpoint)
            if start == 0:
                check = opts.checker.check_first_line if opts.checker else check_first_line
                model = check(lines[0], opts.endpoint, template)
            for offset, line in enumerate(lines):
                writer.add(line.encode("utf-8"), start + offset, f"row {start + offset + 1}")
            writer.flush()
            start += len(chunk)
            bar.update(len(chunk))
        if start == 0:
            raise BatchError(f"{data_path} has no data rows: nothing to render.")
        shards = writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    stale = stale_outputs(opts.output, [s.path for s in shards])
    return MakeResult(
        shards, template_path, data_path, opts.endpoint, model, opts, stale, table.skip_spaces
    )


def _check_not_known_inputs(output: Path) -> None:
    """Request files are made again freely; a data file or template of a recorded job is not
    replaced (every later join of that job would refuse the changed file)."""
    from openai_batch.ledger.store import open_ledger

    with open_ledger() as ledger:
        output_guard.check_output(
            output, flag="-o", ledger=ledger, may_replace=lambda what: what == "request file"
        )


def stale_outputs(output: Path, written: list[Path]) -> list[Path]:
    """Files an earlier run left under the same name that someone might upload by mistake."""
    candidates = [output, *output.parent.glob(f"{output.stem}-[0-9][0-9][0-9]*{output.suffix}")]
    return sorted(p for p in candidates if p.exists() and p not in written)


def preview(
    template_path: Path, data_path: Path, opts: MakeOptions, n: int
) -> list[dict[str, Any]]:
    """The first `n` request lines, parsed, without writing anything."""
    table, template = open_inputs(template_path, data_path, opts)
    if opts.inputs_open is not None:
        opts.inputs_open()
    maker = IdMaker(table, opts.id_column, opts.id_prefix)
    out: list[dict[str, Any]] = []
    start = 0
    for chunk in table.chunks(chunk_rows=max(1, min(n, 10_000))):
        chunk = chunk.iloc[: n - len(out)]
        ids = maker.ids(chunk, start)
        for offset, line in enumerate(render_chunk(template, chunk, ids, start, opts.endpoint)):
            out.append(rendered_request(line, start + offset + 1))
        if start == 0 and out:
            check_first_line(json.dumps(out[0]), opts.endpoint, template)
        start += len(chunk)
        if len(out) >= n:
            break
    return out
