"""The batch lifecycle as a library: upload, start, follow, download and join, through the ledger.

Commands (upload-batch-file, start-batch, get-batch-results, run) are thin wrappers around these
functions. Everything that costs money is checked against the ledger first, under a cross-process
lock, so running a command twice (or two at once) never uploads or starts the same content twice.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import ApiError, BatchError
from openai_batch.ledger.digests import digest_of, matches, new_digest
from openai_batch.ledger.store import BatchRecord, Ledger, RequestFileRecord, download_path
from openai_batch.local import output_guard
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.requestfile.limits import OPENAI, FileLimits, human_decimal
from openai_batch.results import join
from openai_batch.results import merge as results
from openai_batch.results.tablewriter import TableTarget
from openai_batch.service import api
from openai_batch.service import shape as batchshape
from openai_batch.ui import console

if TYPE_CHECKING:
    from openai.types import Batch, FileObject

    from openai_batch.requestfile.make import MakeResult

UPLOAD_EXPIRY_MARGIN = 3600  # an upload about to expire is not worth starting a batch on
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
DEFAULT_DESCRIPTION = "batch job"
UNTRACKED_SCAN_LIMIT = 1000  # batches listed when looking for one the ledger missed
UNRECOGNISED_PREFIX = "unrecognised-"  # ledger ids for creates answered without a batch id


# ---------------------------------------------------------------------------------------------
# Request files


@dataclass
class RequestFileInfo:
    """What one pass over a request file tells us; also the checks the API would make."""

    path: Path
    digest: str
    bytes: int
    requests: int
    endpoint: str | None
    model: str | None


def scan_request_file(
    path: Path, *, check: bool = True, limits: FileLimits = OPENAI
) -> RequestFileInfo:
    """Hash and count a request file; with `check`, refuse what the API would reject.

    The check is `utils validate`'s (every line, every body against the SDK's request types),
    so a mistake costs seconds here rather than a failed batch later.
    """
    path = Path(path)
    check_request_path(path)
    size = path.stat().st_size
    if check:
        _check_outside(path, size, limits)
    hasher = new_digest()
    urls: dict[str, None] = {}
    models: dict[str, None] = {}
    lines = 0
    with open(path, "rb") as fh:
        for raw in fh:
            hasher.update(raw)
            if not raw.strip():
                continue
            lines += 1
            _note_url_and_model(raw, urls, models)
    if check:
        check_request_file(path, limits)
    endpoint = next(iter(urls), None)
    model = next(iter(models), None)
    return RequestFileInfo(path, hasher.hexdigest(), size, lines, endpoint, model)


def _note_url_and_model(raw: bytes, urls: dict[str, None], models: dict[str, None]) -> None:
    if len(urls) > 1 and len(models) > 1:
        return
    try:
        request = json.loads(raw)
        urls.setdefault(str(request["url"]), None)
        model = request["body"].get("model")
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    if isinstance(model, str):
        models.setdefault(model, None)


def _check_outside(path: Path, size: int, limits: FileLimits = OPENAI) -> None:
    if path.suffix.lower() != ".jsonl":
        raise BatchError(
            f"{path}: the Batch API accepts only .jsonl files",
            hint=f"rename it to {path.with_suffix('.jsonl').name}",
        )
    if size == 0:
        raise BatchError(f"{path} is empty: there is nothing to run")
    if size > limits.file_bytes:
        limit = human_decimal(limits.file_bytes)
        raise BatchError(
            f"{path} is {console.human_bytes(size)}, over {limits.service}'s {limit} limit per "
            "file",
            hint=f"split it into files of at most {limit} (make-batch-file --max-bytes "
            f"{limit.replace(' ', '')} does this)",
        )


def check_request_file(path: Path, limits: FileLimits = OPENAI) -> None:
    """Everything the Batch API would reject (see `validate`), as one BatchError."""
    from openai_batch.validate.check import Report, render, validate_file

    report = validate_file(path, limits)
    if report.errors == 0:
        if report.warnings:
            console.warn(
                f"{path}: {console.plural(report.warnings, 'warning')}; "
                f"`openai-batch utils validate {path}` "
                "shows them"
            )
        return
    shown = [line.strip() for line in render(Report([report]))[1:] if "error:" in line]
    more = f"\n  ... and {len(shown) - 20} more" if len(shown) > 20 else ""
    raise BatchError(
        f"{path} would be rejected by the Batch API:\n  " + "\n  ".join(shown[:20]) + more,
        hint=f"fix it (or make it again); `openai-batch utils validate {path}` lists every "
        "problem; --no-check skips this check",
    )


def remember_made(made: MakeResult) -> None:
    """record_made in the default ledger; a ledger problem is a warning, never a failed make."""
    from openai_batch.ledger.store import open_ledger

    try:
        with open_ledger() as ledger:
            record_made(ledger, made)
    except (BatchError, OSError) as exc:
        console.warn(f"could not record the request files in the ledger: {exc}")
    except Exception as exc:  # sqlite3.Error and the like
        console.warn(f"could not record the request files in the ledger: {exc}")


def made_infos(made: MakeResult) -> list[RequestFileInfo]:
    """What scan_request_file would say of each file make-batch-file just wrote."""
    return [
        RequestFileInfo(Path(f.path), f.digest, f.bytes, f.requests, made.endpoint, made.model)
        for f in made.files
    ]


def record_made(ledger: Ledger, made: MakeResult) -> None:
    """Record every request file make-batch-file wrote, with how to find its rows again.

    The data file's digest lets get-batch-results refuse a table edited in place to the same
    size (rows sorted): the join is by position, so it would put answers on the wrong rows.
    Hashing costs about 0.005 s per 100 MB (see digests). One run id marks the shards of this
    run: only they may form one job without being asked (their custom_ids are disjoint).
    """
    opts = made.options
    data = Path(made.data)
    stat = data.stat()
    data_digest = digest_of(data)
    run = uuid.uuid4().hex
    table_options = {
        "id_column": opts.id_column,
        "id_prefix": opts.id_prefix,
        "limit": opts.table.limit,
        "sheet": opts.table.sheet,
        "delimiter": opts.table.delimiter,
        "encoding": opts.table.encoding,
        "keep_spaces": opts.table.keep_spaces,
        "ragged_rows": opts.table.ragged_rows,
        "data_size": stat.st_size,
        "data_mtime_ns": stat.st_mtime_ns,
    }
    for number, shard in enumerate(made.files, start=1):
        ledger.record_request_file(
            shard.path,
            shard.digest,
            bytes=shard.bytes,
            requests=shard.requests,
            endpoint=made.endpoint,
            model=made.model,
            template=made.template,
            data=data,
            table_options=table_options,
            first_row=shard.first_row,
            shard=number,
            shards=len(made.files),
            data_digest=data_digest,
            make_run=run,
        )


# ---------------------------------------------------------------------------------------------
# Uploads


@dataclass
class Uploaded:
    path: Path
    info: RequestFileInfo
    file: FileObject
    reused: bool


def _usable_upload(conn: api.Connection, ledger: Ledger, digest: str) -> FileObject | None:
    """An earlier upload of this exact content that the service still has (uploads expire)."""
    for record in ledger.uploads_for(conn.service, digest):
        found = api.retrieve_file(conn, record.file_id)
        fresh = found is not None and (
            not found.expires_at or found.expires_at > time.time() + UPLOAD_EXPIRY_MARGIN
        )
        if found is not None and fresh and found.purpose == "batch":
            return found
        ledger.mark_upload_gone(conn.service, record.file_id)
    return None


def ensure_uploaded(
    conn: api.Connection,
    ledger: Ledger,
    path: Path,
    *,
    info: RequestFileInfo | None = None,
    force: bool = False,
    progress: Callable[[int], object] | None = None,
    expires_after: int | None = None,
) -> Uploaded:
    """Upload a request file unless this exact content is already on the service.

    `progress` is called with the number of bytes sent as the upload goes."""
    info = info or scan_request_file(path, limits=conn.profile.limits)
    ledger.record_request_file(
        path, info.digest, bytes=info.bytes, requests=info.requests,
        endpoint=info.endpoint, model=info.model,
    )  # fmt: skip
    with ledger.lock(f"upload:{conn.service}:{info.digest}", notify=console.note):
        if not force:
            found = _usable_upload(conn, ledger, info.digest)
            if found is not None:
                return Uploaded(Path(path), info, found, reused=True)
        uploaded = api.upload_file(conn, Path(path), progress=progress, expires_after=expires_after)
        ledger.record_upload(conn.service, uploaded, info.digest, path)
    return Uploaded(Path(path), info, uploaded, reused=False)


# ---------------------------------------------------------------------------------------------
# Starting batches


@dataclass
class Started:
    target: str
    batch: Batch
    reused: bool
    upload: Uploaded | None = None
    earlier: list[Batch] = field(default_factory=list)  # earlier batches not reused
    origin: str | None = None  # a reused batch: the request file it was started from


def _reused(
    conn: api.Connection, ledger: Ledger, target: str, batch: Batch, **more: Any
) -> Started:
    """A batch of the same content started before, with the file it was started from: the
    same rows made again in another folder (a new wave of a study) must not surprise."""
    upload = ledger.upload(conn.service, batch.input_file_id) if batch.input_file_id else None
    origin = upload.path if upload is not None else None
    return Started(target, batch, reused=True, origin=origin, **more)


def parse_metadata(pairs: Sequence[str], description: str) -> dict[str, str]:
    """`KEY=VALUE` pairs plus the description, within the API's limits."""
    metadata = {"description": description}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BatchError(f"--metadata {pair!r} is not KEY=VALUE")
        metadata[key] = value
    if len(metadata) > METADATA_MAX_PAIRS:
        raise BatchError(
            f"{len(metadata)} metadata pairs (description included); the API allows "
            f"{METADATA_MAX_PAIRS}"
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY:
            raise BatchError(f"metadata key {key[:20]!r}... is over {METADATA_MAX_KEY} characters")
        if len(value) > METADATA_MAX_VALUE:
            raise BatchError(
                f"metadata value for {key!r} is {len(value)} characters; the API allows "
                f"{METADATA_MAX_VALUE}"
            )
    return metadata


def _reusable_batch(
    conn: api.Connection, ledger: Ledger, *, digest: str | None, file_id: str | None
) -> tuple[Batch | None, list[Batch]]:
    """The newest batch of this content still running or completed, and the others seen."""
    records = ledger.batches_for(
        conn.service, digests=[digest] if digest else [], input_file_id=file_id
    )
    others: list[Batch] = []
    for record in reversed(records):
        if record.batch_id.startswith(UNRECOGNISED_PREFIX):
            raise BatchError(
                f"an earlier start of these requests on {conn.describe()} got an answer without "
                f"a batch id (input file {record.input_file_id}): the service may be running it",
                hint="check the service's own console before starting again; --force starts "
                "another batch (and pays again if the first one runs)",
            )
        batch = api.find_batch(conn, record.batch_id)
        if batch is None:
            continue
        ledger.record_batch(conn.service, batch)
        if batchshape.is_reusable(batch):
            return batch, others
        others.append(batch)
    return None, others


def _untracked_batch(
    conn: api.Connection, ledger: Ledger, upload: FileObject, digest: str
) -> Batch | None:
    """A running batch of this upload that the ledger missed (e.g. the command was killed just
    after the service created it): the service's list, newest first, back to the upload's time."""
    since = getattr(upload, "created_at", None)
    for seen, batch in enumerate(api.iter_batches(conn)):
        older = batch.created_at is not None and isinstance(since, int) and batch.created_at < since
        if older or seen >= UNTRACKED_SCAN_LIMIT:
            break
        if batch.input_file_id == upload.id and batchshape.is_reusable(batch):
            ledger.record_batch(conn.service, batch, digest=digest)
            return batch
    return None


def looks_like_file_id(target: str) -> bool:
    return target.startswith(("file-", "file_")) and not Path(target).exists()


def start_one(
    conn: api.Connection,
    ledger: Ledger,
    target: str | Path,
    *,
    metadata: dict[str, str],
    endpoint: str | None = None,
    force: bool = False,
    check: bool = True,
    info: RequestFileInfo | None = None,
    completion_window: str = "24h",
) -> Started:
    """Start a batch for a local request file or an uploaded file id, unless one already runs.

    `info` (from make-batch-file's result) saves reading the file again; `check=False` skips
    the pre-upload validation.
    """
    target = str(target)
    if info is None and looks_like_file_id(target):
        return _start_file_id(conn, ledger, target, metadata, endpoint, force, completion_window)
    path = Path(target)
    info = info or scan_request_file(path, check=check, limits=conn.profile.limits)
    ledger.adopt_legacy(path, info.digest)  # started before ledger schema 4? still found
    with ledger.lock(f"start:{conn.service}:{info.digest}", notify=console.note):
        if not force:
            batch, others = _reusable_batch(conn, ledger, digest=info.digest, file_id=None)
            if batch is not None:
                return _reused(conn, ledger, target, batch, earlier=others)
        else:
            others = []
        upload = ensure_uploaded(conn, ledger, path, info=info)
        if upload.reused and not force:
            untracked = _untracked_batch(conn, ledger, upload.file, info.digest)
            if untracked is not None:
                return _reused(conn, ledger, target, untracked, upload=upload, earlier=others)
        batch = _create(conn, ledger, upload.file.id, endpoint or info.endpoint, metadata,
                        info.digest, completion_window)  # fmt: skip
    return Started(target, batch, reused=False, upload=upload, earlier=others)


def _start_file_id(
    conn: api.Connection,
    ledger: Ledger,
    file_id: str,
    metadata: dict[str, str],
    endpoint: str | None,
    force: bool,
    completion_window: str = "24h",
) -> Started:
    upload = ledger.upload(conn.service, file_id)
    digest = upload.digest if upload else None
    with ledger.lock(f"start:{conn.service}:{digest or file_id}", notify=console.note):
        others: list[Batch] = []
        if not force:
            batch, others = _reusable_batch(conn, ledger, digest=digest, file_id=file_id)
            if batch is not None:
                return _reused(conn, ledger, file_id, batch, earlier=others)
        if endpoint is None and digest:
            record = ledger.request_file(digest=digest)
            endpoint = record.endpoint if record else None
        if endpoint is None:
            endpoint = _endpoint_from_upload(conn, file_id)
        batch = _create(conn, ledger, file_id, endpoint, metadata, digest, completion_window)
    return Started(file_id, batch, reused=False, earlier=others)


def _endpoint_from_upload(conn: api.Connection, file_id: str) -> str:
    first = api.read_first_line(conn, file_id)
    try:
        url = json.loads(first)["url"]
    except (ValueError, KeyError, TypeError):
        raise BatchError(
            f"cannot tell the endpoint of {file_id}: its first line has no url",
            hint="give it with --endpoint /v1/chat/completions (or the right one)",
        ) from None
    return str(url)


def _create(
    conn: api.Connection,
    ledger: Ledger,
    file_id: str,
    endpoint: str | None,
    metadata: dict[str, str],
    digest: str | None,
    completion_window: str = "24h",
) -> Batch:
    if not endpoint:
        raise BatchError(
            f"cannot tell the endpoint for {file_id}",
            hint="give it with --endpoint /v1/chat/completions (or the right one)",
        )
    try:
        batch = api.create_batch(
            conn, file_id, endpoint, metadata, completion_window=completion_window
        )
    except api.UnrecognisedBatch:
        ledger.record_batch(conn.service, _unrecognised(file_id, endpoint, metadata), digest=digest)
        raise
    ledger.record_batch(conn.service, batch, digest=digest)
    return batch


def _unrecognised(file_id: str, endpoint: str, metadata: dict[str, str]) -> Batch:
    """A ledger stand-in for a create the service answered without an id: the next start of
    the same requests sees it and refuses to pay again unless forced."""
    from openai._models import construct_type
    from openai.types import Batch as BatchType

    data = {
        "id": UNRECOGNISED_PREFIX + uuid.uuid4().hex,
        "object": "batch",
        "status": batchshape.UNKNOWN,
        "input_file_id": file_id,
        "endpoint": endpoint,
        "metadata": metadata,
        "created_at": int(time.time()),
    }
    return construct_type(type_=BatchType, value=data)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Finding batches and their request files


@dataclass
class Resolved:
    """What get-batch-results works on: batches, and the request files that give the order."""

    batch_ids: list[str]
    roots: list[RequestFileRecord]  # the original request files (not retry files), in order
    labels: dict[str, str]  # batch id -> request file path, for display
    groups: dict[str, str] = field(default_factory=dict)  # batch id -> its root's digest


def looks_like_batch_id(target: str) -> bool:
    return target.startswith("batch_") and not Path(target).exists()


def _started_from(ledger: Ledger, batch: BatchRecord, digest: str, given: Path) -> str:
    """The request file a batch ran: the one given, or for a retry batch its retry file."""
    if batch.digest is None or batch.digest == digest:
        return str(given)
    record = ledger.request_file(digest=batch.digest)
    return console.shown(record.path) if record is not None else str(given)


def resolve(conn: api.Connection, ledger: Ledger, targets: Sequence[str]) -> Resolved:
    """Batch ids stay as given; a request file stands for every batch started from it (and from
    the retry files made from it), oldest first, so the latest success wins."""
    batch_ids: list[str] = []
    roots: dict[str, RequestFileRecord] = {}
    labels: dict[str, str] = {}
    groups: dict[str, str] = {}
    for target in targets:
        path = Path(target)
        if path.is_file():
            digest = digest_of(path)
            at_path = ledger.request_file(path=path, digest=digest)
            record = at_path or ledger.request_file(digest=digest)
            root = ledger.root_request_file(digest, path=path) if record else None
            root = root or record
            family = [digest]
            if root is not None:
                family = [root.digest, *(r.digest for r in ledger.request_files_derived_from(
                    root.digest))]  # fmt: skip
                roots.setdefault(root.digest, root)
            found = ledger.batches_for(conn.service, digests=family)
            if not found:
                check_request_path(path)  # a table or a template says so
                raise BatchError(
                    f"no batch was started from {path} on {conn.describe()}",
                    hint=_no_batch_hint(ledger, conn.service, path),
                )
            for record_ in found:
                if record_.batch_id not in batch_ids:
                    batch_ids.append(record_.batch_id)
                    labels[record_.batch_id] = _started_from(ledger, record_, digest, path)
                    groups[record_.batch_id] = root.digest if root else digest
        elif path.is_dir():
            check_request_path(path)  # says it is a folder
        elif looks_like_batch_id(target) or not any(c in target for c in "/\\."):
            if target not in batch_ids:
                batch_ids.append(target)
        else:
            raise BatchError(
                f"{target} is neither a file nor a batch id",
                hint="give a batch id (batch_...) or the request file a batch was started from",
            )
    return Resolved(batch_ids, list(roots.values()), labels, groups)


def _no_batch_hint(ledger: Ledger, service: str, path: Path) -> str:
    """Point at batches of an earlier version of this file, if any."""
    digests = ledger.request_file_versions(path)
    earlier = ledger.batches_for(service, digests=digests) if digests else []
    if earlier:
        ids = " ".join(b.batch_id for b in earlier[-3:])
        return (
            f"{path} changed since its batches were started; give their ids instead: "
            f"openai-batch get-batch-results {ids}"
        )
    return f"start one with `openai-batch start-batch {shlex.quote(str(path))}`"


def attach_roots(ledger: Ledger, service: str, resolved: Resolved) -> None:
    """Find the request files of batches given by id, for ordering and the join."""
    known = {r.digest for r in resolved.roots}
    for batch_id in resolved.batch_ids:
        if batch_id in resolved.groups:
            continue
        record = ledger.batch(service, batch_id)
        if record is None or not record.digest:
            continue
        root = root_of_batch(ledger, service, batch_id, warn=True)
        resolved.groups[batch_id] = root.digest if root else record.digest
        if root is not None and root.digest not in known:
            known.add(root.digest)
            resolved.roots.append(root)
            resolved.labels.setdefault(batch_id, root.path)
    _sort_shards(resolved.roots)


def root_of_batch(
    ledger: Ledger, service: str, batch_id: str, *, warn: bool = False
) -> RequestFileRecord | None:
    """The original request file of a batch: the record at the path it was uploaded from when
    several byte-identical files (made from different tables) share its content."""
    record = ledger.batch(service, batch_id)
    if record is None or not record.digest:
        return None
    upload = ledger.upload(service, record.input_file_id) if record.input_file_id else None
    root = ledger.root_request_file(record.digest, path=upload.path if upload else None)
    if warn and root is not None and root.data:
        datas = {r.data for r in ledger.request_files_with(root.digest) if r.data}
        if len(datas) > 1:
            others = ", ".join(sorted(d for d in datas if d != root.data))
            console.warn(
                f"batch {batch_id}'s requests were made, byte for byte, from {root.data} and "
                f"from {others}; joining to {root.data} (pass --data FILE to choose)"
            )
    return root


def batch_groups(ledger: Ledger, service: str, batch_ids: Sequence[str]) -> dict[str, str]:
    """batch id -> the digest of its original request file (see build_index), where known."""
    groups = {}
    for batch_id in batch_ids:
        root = root_of_batch(ledger, service, batch_id)
        if root is not None:
            groups[batch_id] = root.digest
        elif (record := ledger.batch(service, batch_id)) is not None and record.digest:
            groups[batch_id] = record.digest
    return groups


def _sort_shards(roots: list[RequestFileRecord]) -> None:
    """Shards of one table in row order (others keep their order)."""
    datas = {r.data for r in roots}
    if len(datas) == 1 and all(r.first_row is not None for r in roots):
        roots.sort(key=lambda r: r.first_row or 0)


# ---------------------------------------------------------------------------------------------
# Downloading and joining


@dataclass
class Downloaded:
    batch: Batch
    output: Path | None
    errors: Path | None


def download_results(conn: api.Connection, batch: Batch) -> Downloaded:
    """The batch's output and error files, kept by file id under the ledger's home."""
    paths: list[Path | None] = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            paths.append(None)
            continue
        dest = download_path(file_id)
        if not dest.is_file():
            api.download_file(conn, file_id, dest)
        paths.append(dest)
    return Downloaded(batch, paths[0], paths[1])


UNKNOWN_SHARED = "(the --requests file)"


def build_index(
    downloads: Sequence[Downloaded],
    groups: Mapping[str, str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    shared_unknown: bool = False,
) -> results.ResultIndex:
    """All results, the later batch winning (by creation time) within one request file.

    `groups` maps batch ids to their original request file (its digest): batches of different
    request files merge only when their custom_ids are disjoint (the shards of one table);
    otherwise this is a BatchError. A batch the ledger cannot place is a group of its own
    input file, or, with `shared_unknown` (the user named the request file with --requests),
    one group with the other unplaced batches. Without `groups`, everything is one group.
    """
    index = results.ResultIndex()
    ordered = sorted(downloads, key=lambda d: (d.batch.created_at or 0, d.batch.id))
    labels: dict[str, str] = {}
    for rank, item in enumerate(ordered):
        group = _group_of(item.batch, groups, shared_unknown)
        labels.setdefault(group, (names or {}).get(group) or f"batch {item.batch.id}")
        for path in (item.output, item.errors):
            if path is not None:
                index.add_file(path, rank, group)
    if index.conflicts:
        index.close()
        raise _conflict_error(index, labels)
    return index


def _group_of(batch: Batch, groups: Mapping[str, str] | None, shared_unknown: bool) -> str:
    if groups is None:
        return ""
    if batch.id in groups:
        return groups[batch.id]
    if shared_unknown:
        return UNKNOWN_SHARED
    return f"file:{batch.input_file_id or batch.id}"


class ResultsConflict(BatchError):
    """Two request files answer the same custom_ids. `gets` says how to get each apart: (batch
    id or request file, a responses file name); `unplaced` when some batch's request file is
    unknown to the ledger (then naming it with --requests may be the answer)."""

    def __init__(self, message: str, gets: list[tuple[str, str]], unplaced: bool) -> None:
        super().__init__(message)
        self.gets = gets
        self.unplaced = unplaced


def _conflict_error(index: results.ResultIndex, labels: Mapping[str, str]) -> ResultsConflict:
    """Two request files answer the same custom_ids: say which, and how to get each apart."""
    conflict = next(iter(index.conflicts.values()))
    first, second = (_shown_label(labels.get(g, g)) for g in conflict.groups)
    ids = ", ".join(sorted(conflict.examples, key=results.natural_key))
    more = f" and {conflict.count - len(conflict.examples):,} more" if conflict.count > 3 else ""
    involved = dict.fromkeys(g for key in index.conflicts for g in key)
    gets: list[tuple[str, str]] = []
    used: set[str] = set()
    for n, group in enumerate(involved, start=1):
        label = labels.get(group, group)
        if label.startswith("batch "):
            target, out = label.removeprefix("batch "), f"responses-{n}.jsonl"
        else:
            target, out = _shown(label), f"{Path(label).stem}-responses.jsonl"
        if out in used:
            out = f"{Path(out).stem}-{n}.jsonl"
        used.add(out)
        gets.append((target, out))
    return ResultsConflict(
        f"{first} and {second} are different request files with results for the same "
        f"custom_ids ({ids}{more}): merged, one file's answers would land on the other's rows",
        gets,
        unplaced=any(g.startswith("file:") for g in involved),
    )


def _shown_label(label: str) -> str:
    return label if label.startswith("batch ") else _shown(label)


def _shown(path: str) -> str:
    """A path as the user would type it: relative when under the working folder."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


@dataclass
class JoinPlan:
    """Where the order of requests and the data rows come from."""

    order_files: list[Path] = field(default_factory=list)
    data: Path | None = None
    table_options: dict[str, Any] = field(default_factory=dict)
    row_ranges: list[tuple[int, int]] | None = None  # rows of the data in these request files
    notes: list[str] = field(default_factory=list)

    def order(self) -> Iterator[str] | None:
        if not self.order_files:
            return None
        return (cid for path in self.order_files for cid in results.iter_request_ids(path))


def plan_join(
    roots: Sequence[RequestFileRecord],
    *,
    requests: Path | None = None,
    data: Path | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
    join: bool = True,
) -> JoinPlan:
    """Use what the user gave, else what the ledger recorded, else natural custom_id order.

    Without `join` (no CSV asked for) only the order is planned: the data file is neither
    needed nor checked, so a table moved or edited since never stops the responses file.
    """
    plan = JoinPlan()
    if requests is not None:
        if not requests.is_file():
            raise BatchError(f"--requests {requests}: no such file")
        plan.order_files = [requests]
    else:
        for root in roots:
            path = Path(root.path)
            if (
                path.is_file()
                and (root.bytes is None or path.stat().st_size == root.bytes)
                and matches(path, root.digest)
            ):
                plan.order_files.append(path)
            else:
                plan.order_files = []
                plan.notes.append(
                    f"{root.path} is gone or changed since the batch started; "
                    "results are in natural custom_id order"
                )
                break
    if not join:
        return plan
    datas = {r.data for r in roots if r.data}
    if data is not None:
        if not data.is_file():
            raise BatchError(f"--data {data}: no such file")
        plan.data = data
        plan.table_options = dict(roots[0].table_options) if len(datas) == 1 and roots else {}
    elif len(datas) == 1:
        recorded = Path(next(iter(datas)))
        plan.table_options = dict(roots[0].table_options)
        _check_data_unchanged(recorded, plan.table_options, _recorded_hash(roots))
        plan.data = recorded
    elif len(datas) > 1:
        plan.notes.append("these batches come from different data files: pass --data")
    if id_column is not None:
        plan.table_options["id_column"] = id_column
    if id_prefix is not None:
        plan.table_options["id_prefix"] = id_prefix
    if (
        plan.data is not None
        and roots
        and all(r.first_row is not None and r.requests is not None for r in roots)
    ):
        plan.row_ranges = [
            (r.first_row or 0, (r.first_row or 0) + (r.requests or 0)) for r in roots
        ]
    return plan


def _recorded_hash(roots: Sequence[RequestFileRecord]) -> list[str]:
    """The data file's digests when the request files were made: one, or a refusal.

    Two are fine when one is a SHA-256 from before ledger schema 4 and the other a digest from
    after: the same content may have both (the file is checked against each)."""
    from openai_batch.ledger.digests import LEGACY_HEX_LENGTH

    hashes = sorted({r.data_digest for r in roots if r.data_digest})
    legacy = [h for h in hashes if len(h) == LEGACY_HEX_LENGTH]
    if len(legacy) > 1 or len(hashes) - len(legacy) > 1:
        raise BatchError(
            "these request files were made from different versions of the same data file: "
            "no one table matches all of them",
            hint="get their results separately, each with --data FILE for its table",
        )
    return hashes


def _check_data_unchanged(data: Path, options: dict[str, Any], digests: list[str]) -> None:
    """The join matches rows by position or id: a changed table would misplace answers.

    The content is hashed every time (XXH3: about 0.01 s per 100 MB): size and mtime prove
    nothing, since `touch -r`, `cp -p`, `rsync -t` or a tar restore bring back the old mtime
    on reordered rows. A size that differs is refused before hashing; without a recorded
    digest (an older version recorded none) only a changed mtime can be noticed, as a warning.
    """
    if not data.is_file():
        raise BatchError(
            f"the data file {data} recorded for these requests is gone",
            hint="pass the table the request file was made from with --data FILE",
        )
    stat = data.stat()
    size = options.get("data_size")
    if size is not None and stat.st_size != size:
        raise BatchError(
            f"the data file {data} changed since the request file was made "
            f"({size:,} bytes then, {stat.st_size:,} now): answers could land on the "
            "wrong rows",
            hint="pass the original table with --data FILE (it is trusted as given)",
        )
    if not digests:
        mtime = options.get("data_mtime_ns")
        if mtime is not None and stat.st_mtime_ns != mtime:
            console.warn(f"{data} was modified since the request file was made (same size)")
        return
    if not all(matches(data, digest) for digest in digests):
        raise BatchError(
            f"the data file {data} changed since the request file was made (same size, other "
            "content: rows sorted or edited?): answers could land on the wrong rows",
            hint="pass the original table with --data FILE (it is trusted as given)",
        )


def iter_data(plan: JoinPlan) -> Iterator[tuple[list[str], Any]]:
    from openai_batch.requestfile.make import iter_identified_chunks

    assert plan.data is not None
    opts = plan.table_options
    return iter_identified_chunks(
        plan.data,
        id_column=opts.get("id_column"),
        id_prefix=opts.get("id_prefix") or "id_",
        limit=opts.get("limit"),
        sheet=opts.get("sheet"),
        delimiter=opts.get("delimiter"),
        encoding=opts.get("encoding"),
        keep_spaces=bool(opts.get("keep_spaces")),
        ragged_rows=bool(opts.get("ragged_rows")),
    )


def keep_rows(plan: JoinPlan) -> Callable[[int, str], bool] | None:
    ranges = plan.row_ranges
    if not ranges:
        return None
    return lambda row, _cid: any(lo <= row < hi for lo, hi in ranges)


@dataclass
class Collected:
    downloads: list[Downloaded]
    responses: results.ResponsesSummary | None
    csv: join.CsvSummary | None  # the table, whatever its format
    plan: JoinPlan
    failing_files: list[Path] = field(default_factory=list)  # order files with failed/missing
    notes: list[str] = field(default_factory=list)  # what was odd in the result files
    groups: dict[str, str] = field(default_factory=dict)  # batch id -> its request file


def collect(
    conn: api.Connection,
    batches: Sequence[Batch],
    roots: Sequence[RequestFileRecord],
    *,
    output: Path,
    csv: Path | None = None,
    table: TableTarget | None = None,
    requests: Path | None = None,
    data: Path | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
    groups: Mapping[str, str] | None = None,
    progress: bool = False,
    parallel: int = 4,
) -> Collected:
    """Download every file, merge, write the responses file (and the table: `table`, or CSV
    at `csv`).

    `groups` (batch id -> original request file's digest, from Resolved or batch_groups) keeps
    unrelated request files from merging: see build_index. The data is only looked for and
    checked when a table is asked for. Both files are written even when no batch produced
    any (a batch failed validation): every row then says `missing`, and an older table at that
    path never passes for this run's.
    """
    if table is None and csv is not None:
        table = TableTarget(Path(csv), "csv")
    plan = plan_join(
        roots, requests=requests, data=data, id_column=id_column, id_prefix=id_prefix,
        join=table is not None,
    )  # fmt: skip
    guard_outputs(
        [("-o", output), *([(table.flag, table.path)] if table is not None else [])],
        roots, data=plan.data or data, requests=requests, order_files=plan.order_files,
    )  # fmt: skip
    from openai_batch.service.downloads import download_all

    downloads = download_all(conn, batches, parallel=parallel)
    names = {r.digest: r.path for r in roots}
    index = build_index(downloads, groups, names=names, shared_unknown=requests is not None)
    failing: list[Path] = []
    try:
        notes = results.problems(index)
        responses = results.write_responses(index, output, plan.order())
        summary = None
        if table is not None:
            chunks = iter_data(plan) if plan.data is not None else None
            schema = join.response_schema(plan.order_files[0] if plan.order_files else None)
            summary = join.write_table(
                index, table, chunks=chunks, order=plan.order(), keep_row=keep_rows(plan),
                schema=schema, progress=progress,
            )  # fmt: skip
        counted = summary or responses
        if counted.error or counted.missing:
            failing = results.files_with_failures(index, plan.order_files)
    finally:
        index.close()
    return Collected(downloads, responses, summary, plan, failing, notes, dict(groups or {}))


def guard_outputs(
    outputs: Sequence[tuple[str, Path]],
    roots: Sequence[RequestFileRecord],
    *,
    data: Path | None = None,
    requests: Path | None = None,
    order_files: Sequence[Path] = (),
) -> None:
    """No results file or table is written over an input of these batches or one the ledger
    knows (`output_guard`), nor two outputs over each other."""
    from openai_batch.ledger.store import open_ledger

    reads: list[tuple[str, Path | str | None]] = [("data file", data), ("request file", requests)]
    for root in roots:
        reads += [
            ("request file", root.path),
            ("template", root.template),
            ("data file", root.data),
        ]
    reads += [("request file", path) for path in order_files]
    seen: dict[Path, str] = {}
    with open_ledger() as ledger:
        for flag, path in outputs:
            output_guard.check_output(path, flag=flag, reads=reads, ledger=ledger)
            resolved = path.expanduser().resolve()
            if resolved in seen:
                raise BatchError(
                    f"{flag} {path} is also given as {seen[resolved]}: one would overwrite the "
                    "other.",
                    hint=f"give {flag} another name.",
                )
            seen[resolved] = flag


def require_batches(batch_ids: Sequence[str]) -> None:
    if not batch_ids:
        raise BatchError("no batch given", hint="give a batch id (batch_...) or a request file")


__all__ = [
    "ApiError",
    "Collected",
    "Resolved",
    "ResultsConflict",
    "Started",
    "Uploaded",
    "attach_roots",
    "batch_groups",
    "build_index",
    "collect",
    "ensure_uploaded",
    "parse_metadata",
    "record_made",
    "resolve",
    "root_of_batch",
    "scan_request_file",
    "start_one",
]
