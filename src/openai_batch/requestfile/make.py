"""make-batch-file as a library: template + table -> request files the Batch API accepts.

Rows stream through in chunks; lines go to temp files that are renamed into place only when every
row has rendered, so a failure at row 900,000 leaves no file and an existing output untouched.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from openai_batch.errors import BatchError, Command
from openai_batch.ledger.digests import new_digest
from openai_batch.local import files, interrupts, output_guard
from openai_batch.requestfile.endpoints import CHAT, ENDPOINTS, MODERATIONS
from openai_batch.requestfile.limits import OPENAI, FileLimits, human_decimal
from openai_batch.table.read import Table, TableOptions, open_table
from openai_batch.table.spec import TableSpec
from openai_batch.template.compile import load_template
from openai_batch.template.prompt import Template
from openai_batch.ui.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class MakeOptions:
    """Everything make-batch-file can be told besides the template and the data."""

    output: Path = Path("batch-requests.jsonl")
    endpoint: str = CHAT
    max_requests: int = OPENAI.requests
    max_bytes: int = OPENAI.file_bytes
    limits: FileLimits = OPENAI  # the service's (service_profiles); bounds the two above
    id_column: str | None = None
    id_prefix: str = "id_"
    table: TableOptions = field(default_factory=TableOptions)
    progress: bool = True
    # `review.ReviewProcess`: checks the first request in a child process (keeps the SDK's
    # imports out of this one while rows render); the same answer as `check_first_line`
    checker: Any = field(default=None, repr=False, compare=False)
    # called once the template and the table have opened: background work starts only then
    inputs_open: Callable[[], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class ShardInfo:
    """One request file written."""

    path: Path
    requests: int
    bytes: int
    digest: str
    first_row: int  # 0-based index of the data row on its first line


@dataclass
class MakeResult:
    """What was written, and how to find each line's data row again."""

    files: list[ShardInfo]
    template: Path
    data: Path
    endpoint: str
    model: str | None
    options: MakeOptions
    stale: list[Path] = field(default_factory=list)  # older outputs that are not part of this one
    skipped_spaces: bool = False  # the table's ", " separators were read as ","

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [{**asdict(f), "path": str(f.path)} for f in self.files],
            "requests": self.requests,
            "bytes": self.bytes,
            "template": str(self.template),
            "data": str(self.data),
            "endpoint": self.endpoint,
            "model": self.model,
            "id_column": self.options.id_column,
            "id_prefix": self.options.id_prefix,
            "skipped_spaces": self.skipped_spaces,
        }


# ---------------------------------------------------------------------------------------------
# Options and ids
# ---------------------------------------------------------------------------------------------


def check_options(opts: MakeOptions) -> None:
    """Reject options the API would make the user pay for discovering later."""
    limits = opts.limits
    if opts.endpoint not in ENDPOINTS:
        raise BatchError(
            f"unknown endpoint {opts.endpoint!r}.",
            hint="the Batch API takes " + ", ".join(ENDPOINTS) + ".",
        )
    refused = limits.endpoint_problem(opts.endpoint)
    if refused:
        raise BatchError(refused + ".", hint="pick another --endpoint, or another --service")
    if not 1 <= opts.max_requests <= limits.requests:
        raise BatchError(
            f"--max-requests must be between 1 and {limits.requests:,} ({limits.service}'s "
            "limit per file)."
        )
    if not 1 <= opts.max_bytes <= limits.file_bytes:
        limit = human_decimal(limits.file_bytes)
        raise BatchError(
            f"--max-bytes must be at most {limit.replace(' ', '')} ({limits.file_bytes:,} "
            f"bytes), {limits.service}'s limit per file."
        )
    if opts.output.suffix != ".jsonl":
        raise BatchError(
            f"output {opts.output} must end in .jsonl: the Batch API accepts only .jsonl files.",
            hint=f"use -o {opts.output.with_suffix('.jsonl')}",
        )
    if opts.output.is_dir():
        raise BatchError(
            f"output {opts.output} is a folder.", hint="give a file name ending .jsonl"
        )


class IdMaker:
    """Gives each row its custom_id and refuses empty or repeated ones."""

    def __init__(self, table: Table, id_column: str | None, prefix: str) -> None:
        if id_column is not None and id_column not in table.columns:
            close = difflib.get_close_matches(id_column, table.columns, n=1, cutoff=0.5)
            raise BatchError(
                f"--id-column {id_column!r} is not a column of {table.path}.",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "columns: "
                + ", ".join(repr(c) for c in table.columns),
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
                    f"row {row + 1}: the id column {self.column!r} is empty.",
                    hint="every row needs its own id; or leave out --id-column for id_0, id_1, ...",
                )
            if value in seen:
                raise BatchError(
                    f"rows {seen[value] + 1} and {row + 1} have the same id {value!r} "
                    f"in column {self.column!r}; custom_ids must be unique.",
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
# Writing shards
# ---------------------------------------------------------------------------------------------


@dataclass
class _Shard:
    temp: Path
    handle: IO[bytes]
    first_row: int
    requests: int = 0
    bytes: int = 0
    digest: Any = field(default_factory=new_digest)


class ShardWriter:
    """Splits lines into files within the API's limits; nothing is visible until `finish`."""

    def __init__(self, output: Path, max_requests: int, max_bytes: int) -> None:
        self.output = output
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.shards: list[_Shard] = []
        self._pending: list[bytes] = []

    def add(self, line: bytes, row: int, label: str) -> None:
        size = len(line)
        if size > self.max_bytes:
            raise BatchError(
                f"{label} renders to a request of {size:,} bytes, over the "
                f"{self.max_bytes:,}-byte limit of a request file.",
                hint="shorten that row's text or images, or raise --max-bytes "
                f"({human_decimal(OPENAI.file_bytes)} at most).",
            )
        current = self.shards[-1] if self.shards else None
        if (
            current is None
            or current.requests >= self.max_requests
            or current.bytes + size > self.max_bytes
        ):
            current = self._roll(row)
        current.requests += 1
        current.bytes += size
        self._pending.append(line)

    def flush(self) -> None:
        if self._pending and self.shards:
            data = b"".join(self._pending)
            shard = self.shards[-1]
            shard.handle.write(data)
            shard.digest.update(data)
            self._pending = []

    def _roll(self, row: int) -> _Shard:
        self.flush()
        if self.shards:
            self.shards[-1].handle.close()
        with interrupts.deferred():  # a temp file made is a temp file `abort` knows
            temp = files.temp_path_for(self.output)
            shard = _Shard(temp, open(temp, "wb", buffering=1 << 20), row)  # noqa: SIM115
            self.shards.append(shard)
        return shard

    def final_paths(self) -> list[Path]:
        if len(self.shards) == 1:
            return [self.output]
        width = max(3, len(str(len(self.shards))))
        stem, suffix = self.output.stem, self.output.suffix
        return [
            self.output.with_name(f"{stem}-{i:0{width}d}{suffix}")
            for i in range(1, len(self.shards) + 1)
        ]

    def finish(self) -> list[ShardInfo]:
        self.flush()
        for shard in self.shards:
            shard.handle.close()
        infos = []
        with interrupts.deferred():  # all the files land, or none: never a partial set
            for shard, path in zip(self.shards, self.final_paths(), strict=True):
                files.commit(shard.temp, path)
                infos.append(
                    ShardInfo(
                        path, shard.requests, shard.bytes, shard.digest.hexdigest(), shard.first_row
                    )
                )
        return infos

    def abort(self) -> None:
        with interrupts.deferred():  # a second Ctrl-C does not leave some behind
            for shard in self.shards:
                shard.handle.close()
                files.discard(shard.temp)


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


def check_first_line(line: str, endpoint: str, template: Template) -> str | None:
    """The first rendered request must be JSON with a model; returns that model."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:  # pragma: no cover - valid by construction
        raise BatchError(f"the first rendered request is not valid JSON: {exc}") from None
    model = request["body"].get("model")
    if endpoint != MODERATIONS and (not isinstance(model, str) or not model.strip()):
        where = template.source or "the template"
        raise BatchError(
            f'{where} has no "model": every request needs one.',
            hint='add e.g. "model": "gpt-4o-mini" to the template.',
        )
    _check_request(request, template)
    return model if isinstance(model, str) else None


def _check_request(request: dict[str, Any], template: Template) -> None:
    """Every row shares the template's structure: what the API would reject in the first
    request (a wrong role, an unknown field, a malformed part) it would reject in all of them."""
    from openai_batch.validate import check as validate

    errors = [p for p in validate.check_line(request, 1) if p.severity == validate.ERROR]
    if errors:
        where = template.source or "the template"
        listed = "\n".join(f"    {p.path}: {p.message}" for p in errors[:10])
        raise BatchError(
            f"the API would reject every request {where} makes:\n{listed}",
            hint=(
                "fix the template; `",
                Command("make-batch-file", "...", "--preview", "1"),
                "` shows a body.",
            ),
        )


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
    from openai_batch.requestfile.fastpath import (
        render_fast,  # plain-column templates: vectorised, the same bytes
    )

    if (fast := render_fast(table, template, template_path, data_path, opts)) is not None:
        fast.stale = stale_outputs(opts.output, [s.path for s in fast.files])
        fast.skipped_spaces = table.skip_spaces
        return fast
    writer = ShardWriter(opts.output, opts.max_requests, opts.max_bytes)
    model: str | None = None
    start = 0
    bar = _progress(table, opts.progress)
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
        for line in render_chunk(template, chunk, ids, start, opts.endpoint):
            out.append(json.loads(line))
        if start == 0 and out:
            check_first_line(json.dumps(out[0]), opts.endpoint, template)
        start += len(chunk)
        if len(out) >= n:
            break
    return out


def _progress(table: Table, enabled: bool) -> Any:
    return progress_bar(
        enabled=enabled, total=table.total_rows, unit=" rows", desc="Rendering", leave=False
    )
