"""Uploading request files and starting batches, never twice.

Everything that costs money is checked against the ledger first, under a cross-process lock,
so running a command twice (or two at once) never uploads or starts the same content twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, quoted
from openai_batch.flow.session import UNRECOGNISED_PREFIX, Session
from openai_batch.ledger.digests import digest_of
from openai_batch.ledger.locks import Notify
from openai_batch.ledger.requestfiles import RequestFileFacts
from openai_batch.ledger.store import Ledger
from openai_batch.requestfile.read import parse_line
from openai_batch.requestfile.scan import RequestFileInfo, scan_request_file
from openai_batch.service import shape as batchshape
from openai_batch.service.batch_calls import iter_batches
from openai_batch.service.connection import Connection
from openai_batch.service.file_calls import read_first_line, retrieve_file
from openai_batch.table.spec import TableSpec

if TYPE_CHECKING:
    from openai.types import Batch, FileObject

    from openai_batch.requestfile.make import MakeResult

UPLOAD_EXPIRY_MARGIN = 3600  # an upload about to expire is not worth starting a batch on
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
DEFAULT_DESCRIPTION = "batch job"
UNTRACKED_SCAN_LIMIT = 1000  # batches listed when looking for one the ledger missed


def remember_made(made: MakeResult) -> str | None:
    """record_made in the default ledger; a ledger problem is a warning (returned for the
    command to show), never a failed make."""
    from openai_batch.ledger.store import open_ledger

    try:
        with open_ledger() as ledger:
            record_made(ledger, made)
    except Exception as exc:  # BatchError, OSError, sqlite3.Error and the like
        return f"could not record the request files in the ledger: {exc}"
    return None


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
    run = uuid.uuid4().hex
    table = TableSpec(
        path=str(data.resolve()),
        **opts.table.named(),
        id_column=opts.id_column,
        id_prefix=opts.id_prefix,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        digest=digest_of(data),
    )
    for number, shard in enumerate(made.files, start=1):
        facts = RequestFileFacts(
            shard.path,
            shard.digest,
            bytes=shard.bytes,
            requests=shard.requests,
            endpoint=made.endpoint,
            model=made.model,
            template=made.template,
            table=table,
            first_row=shard.first_row,
            shard=number,
            shards=len(made.files),
            make_run=run,
        )
        ledger.record_request_file(facts)


def scanned_facts(path: Path | str, info: RequestFileInfo) -> RequestFileFacts:
    """What a scan of a request file tells the ledger (no template or table: those only
    make-batch-file knows, and the ledger keeps them when it has them)."""
    return RequestFileFacts(
        path, info.digest, bytes=info.bytes, requests=info.requests,
        endpoint=info.endpoint, model=info.model,
    )  # fmt: skip


@dataclass
class Uploaded:
    path: Path
    info: RequestFileInfo
    file: FileObject
    reused: bool


def _usable_upload(conn: Connection, ledger: Ledger, digest: str) -> FileObject | None:
    """An earlier upload of this exact content that the service still has (uploads expire)."""
    for record in ledger.uploads_for(conn.service, digest):
        found = retrieve_file(conn, record.file_id)
        fresh = found is not None and (
            not found.expires_at or found.expires_at > time.time() + UPLOAD_EXPIRY_MARGIN
        )
        if found is not None and fresh and found.purpose == "batch":
            return found
        ledger.mark_upload_gone(conn.service, record.file_id)
    return None


def ensure_uploaded(
    conn: Connection,
    ledger: Ledger,
    path: Path,
    *,
    info: RequestFileInfo | None = None,
    force: bool = False,
    progress: Callable[[int], object] | None = None,
    expires_after: int | None = None,
    notify: Notify | None = None,
) -> Uploaded:
    """Upload a request file unless this exact content is already on the service.

    `progress` is called with the number of bytes sent as the upload goes; `notify` hears what
    a wait for another command's lock is waiting for."""
    info = info or scan_request_file(path, limits=conn.profile.limits, ledger=ledger)
    ledger.record_request_file(scanned_facts(path, info))
    with ledger.lock(f"upload:{conn.service}:{info.digest}", notify=notify):
        if not force:
            found = _usable_upload(conn, ledger, info.digest)
            if found is not None:
                return Uploaded(Path(path), info, found, reused=True)
        uploaded = Session(conn, ledger).upload(
            Path(path), info.digest, progress=progress, expires_after=expires_after
        )
    return Uploaded(Path(path), info, uploaded, reused=False)


@dataclass
class Started:
    target: str
    batch: Batch
    reused: bool
    upload: Uploaded | None = None
    earlier: list[Batch] = field(default_factory=list)  # earlier batches not reused
    origin: str | None = None  # a reused batch: the request file it was started from


def _reused(conn: Connection, ledger: Ledger, target: str, batch: Batch, **more: Any) -> Started:
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
            raise BatchError(f"--metadata {quoted(pair)} is not KEY=VALUE")
        metadata[key] = value
    if len(metadata) > METADATA_MAX_PAIRS:
        raise BatchError(
            f"{len(metadata)} metadata pairs (description included); the API allows "
            f"{METADATA_MAX_PAIRS}"
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY:
            raise BatchError(f"metadata key {quoted(key)} is over {METADATA_MAX_KEY} characters")
        if len(value) > METADATA_MAX_VALUE:
            raise BatchError(
                f"metadata value for {quoted(key)} is {len(value)} characters; the API allows "
                f"{METADATA_MAX_VALUE}"
            )
    return metadata


def _reusable_batch(
    conn: Connection, ledger: Ledger, *, digest: str | None, file_id: str | None
) -> tuple[Batch | None, list[Batch]]:
    """The newest batch of this content still running or completed, and the others seen."""
    records = ledger.batches_for(
        conn.service, digests=[digest] if digest else [], input_file_id=file_id
    )
    session = Session(conn, ledger)
    others: list[Batch] = []
    for record in reversed(records):
        if record.batch_id.startswith(UNRECOGNISED_PREFIX):
            raise BatchError(
                f"an earlier start of these requests on {conn.describe()} got an answer without "
                f"a batch id (input file {record.input_file_id}): the service may be running it",
                hint="check the service's own console before starting again; --force starts "
                "another batch (and pays again if the first one runs)",
            )
        batch = session.find(record.batch_id)
        if batch is None:
            continue
        if batchshape.is_reusable(batch):
            return batch, others
        others.append(batch)
    return None, others


def _untracked_batch(
    conn: Connection, ledger: Ledger, upload: FileObject, digest: str
) -> Batch | None:
    """A running batch of this upload that the ledger missed (e.g. the command was killed just
    after the service created it): the service's list, newest first, back to the upload's time."""
    since = getattr(upload, "created_at", None)
    for seen, batch in enumerate(iter_batches(conn)):
        older = batch.created_at is not None and isinstance(since, int) and batch.created_at < since
        if older or seen >= UNTRACKED_SCAN_LIMIT:
            break
        if batch.input_file_id == upload.id and batchshape.is_reusable(batch):
            return Session(conn, ledger).record(batch, digest=digest)
    return None


def looks_like_file_id(target: str) -> bool:
    return target.startswith(("file-", "file_")) and not Path(target).exists()


def start_one(
    conn: Connection,
    ledger: Ledger,
    target: str | Path,
    *,
    metadata: dict[str, str],
    endpoint: str | None = None,
    force: bool = False,
    check: bool = True,
    info: RequestFileInfo | None = None,
    completion_window: str = "24h",
    notify: Notify | None = None,
) -> Started:
    """Start a batch for a local request file or an uploaded file id, unless one already runs.

    `info` (from make-batch-file's result) saves reading the file again; `check=False` skips
    the pre-upload validation; `notify` hears what a wait for another command's lock waits for.
    """
    target = str(target)
    if info is None and looks_like_file_id(target):
        return _start_file_id(
            conn, ledger, target, metadata, endpoint, force, completion_window, notify
        )
    path = Path(target)
    info = info or scan_request_file(path, check=check, limits=conn.profile.limits, ledger=ledger)
    with ledger.lock(f"start:{conn.service}:{info.digest}", notify=notify) as held:
        if not force:
            batch, others = _reusable_batch(conn, ledger, digest=info.digest, file_id=None)
            if batch is not None:
                return _reused(conn, ledger, target, batch, earlier=others)
        else:
            others = []
        upload = ensure_uploaded(conn, ledger, path, info=info, notify=notify)
        if upload.reused and not force:
            untracked = _untracked_batch(conn, ledger, upload.file, info.digest)
            if untracked is not None:
                return _reused(conn, ledger, target, untracked, upload=upload, earlier=others)
        held.confirm()  # not paused past the lock's life while uploading (laptop asleep)
        batch = _create(conn, ledger, upload.file.id, endpoint or info.endpoint, metadata,
                        info.digest, completion_window)  # fmt: skip
    return Started(target, batch, reused=False, upload=upload, earlier=others)


def _start_file_id(
    conn: Connection,
    ledger: Ledger,
    file_id: str,
    metadata: dict[str, str],
    endpoint: str | None,
    force: bool,
    completion_window: str = "24h",
    notify: Notify | None = None,
) -> Started:
    upload = ledger.upload(conn.service, file_id)
    digest = upload.digest if upload else None
    with ledger.lock(f"start:{conn.service}:{digest or file_id}", notify=notify) as held:
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
        held.confirm()
        batch = _create(conn, ledger, file_id, endpoint, metadata, digest, completion_window)
    return Started(file_id, batch, reused=False, earlier=others)


def _endpoint_from_upload(conn: Connection, file_id: str) -> str:
    """The `url` of an uploaded file's first line, read as every request line is read."""
    request = parse_line(read_first_line(conn, file_id), 1).request
    url = request.get("url") if request is not None else None
    if not isinstance(url, str) or not url:
        raise BatchError(
            f"cannot tell the endpoint of {file_id}: its first line has no url",
            hint="give it with --endpoint /v1/chat/completions (or the right one)",
        )
    return url


def _create(
    conn: Connection,
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
    session = Session(conn, ledger)
    return session.start(
        file_id, endpoint, metadata, digest=digest, completion_window=completion_window
    )
