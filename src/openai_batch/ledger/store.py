"""The ledger: what this machine made, uploaded and started, so nothing is paid for twice.

A SQLite database (`ledger.sqlite3` under `$OPENAI_BATCH_HOME`, default the user data directory)
records each request file made (path, digest, the template and data it came from, and how to
recover its custom_id order), each upload (file id) and each batch. It lets a local path stand for
an id, stops double uploads and double starts, and lets get-batch-results find the data to join.
It holds no secrets: no keys, no request or response content.

Files are recognised by a content digest (`digests.digest_of`, xxh3-128, 32 hex characters).

Schema changes are ordered, recorded migrations. WAL mode and a busy timeout let several commands
use it at once; `lock()` serializes check-then-act sequences (is it started? no: start it) across
processes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai_batch import settings
from openai_batch.errors import BatchError
from openai_batch.ledger import faults as ledger_faults
from openai_batch.ledger.locks import Heartbeat, Holder, Notify, owner, takeover_note, waiting_note
from openai_batch.table.spec import TableSpec

DB_NAME = "ledger.sqlite3"
BUSY_TIMEOUT_MS = 30_000

# Ordered migrations: (version, name, steps), each step an SQL statement or a function of the
# connection. All run in one transaction at open; the versions applied are recorded in
# `schema_migrations`. Never edit a released one: append the next version. Version 1 is the
# first released schema (the development history before it was squashed into it).
Step = str | Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[int, str, list[Step]]] = [
    (
        1,
        "request files, uploads, batches, locks, jobs",
        [
            # request files by content: `digest` (digests.py); how to find their rows again
            """CREATE TABLE request_files (
                id INTEGER PRIMARY KEY,
                path TEXT NOT NULL,
                digest TEXT NOT NULL,
                bytes INTEGER,
                requests INTEGER,
                endpoint TEXT,
                model TEXT,
                template TEXT,
                data TEXT,
                data_digest TEXT,
                table_options TEXT,
                first_row INTEGER,
                shard INTEGER,
                shards INTEGER,
                parent_digest TEXT,
                job TEXT,
                make_run TEXT,
                recorded_at REAL NOT NULL,
                UNIQUE (path, digest)
            )""",
            "CREATE INDEX request_files_by_digest ON request_files (digest)",
            # `service` is the base URL without user name or password (redaction.public_url)
            """CREATE TABLE uploads (
                file_id TEXT NOT NULL,
                service TEXT NOT NULL,
                digest TEXT NOT NULL,
                path TEXT,
                bytes INTEGER,
                purpose TEXT,
                created_at INTEGER,
                expires_at INTEGER,
                gone INTEGER NOT NULL DEFAULT 0,
                recorded_at REAL NOT NULL,
                PRIMARY KEY (service, file_id)
            )""",
            "CREATE INDEX uploads_by_digest ON uploads (service, digest)",
            """CREATE TABLE batches (
                batch_id TEXT NOT NULL,
                service TEXT NOT NULL,
                input_file_id TEXT,
                digest TEXT,
                endpoint TEXT,
                description TEXT,
                metadata TEXT,
                status TEXT,
                created_at INTEGER,
                output_file_id TEXT,
                error_file_id TEXT,
                total INTEGER,
                completed INTEGER,
                failed INTEGER,
                recorded_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (service, batch_id)
            )""",
            "CREATE INDEX batches_by_digest ON batches (service, digest)",
            "CREATE INDEX batches_by_input ON batches (service, input_file_id)",
            """CREATE TABLE locks (
                name TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                acquired_at REAL NOT NULL
            )""",
            # jobs: the shards of one template x table, their queue and their batches
            """CREATE TABLE jobs (
                name TEXT PRIMARY KEY,
                service TEXT NOT NULL,
                template TEXT,
                data TEXT,
                output TEXT,
                endpoint TEXT,
                metadata TEXT,
                max_enqueued_tokens INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE INDEX jobs_by_inputs ON jobs (service, template, data, output)",
            """CREATE TABLE job_shards (
                job TEXT NOT NULL REFERENCES jobs (name),
                shard INTEGER NOT NULL,
                path TEXT NOT NULL,
                digest TEXT NOT NULL,
                requests INTEGER,
                bytes INTEGER,
                first_row INTEGER,
                prompt_tokens INTEGER,
                file_id TEXT,
                batch_id TEXT,
                state TEXT NOT NULL DEFAULT 'queued',
                status TEXT,
                completed INTEGER,
                failed INTEGER,
                total INTEGER,
                requeues INTEGER NOT NULL DEFAULT 0,
                not_before REAL NOT NULL DEFAULT 0,
                force INTEGER NOT NULL DEFAULT 0,
                note TEXT,
                updated_at REAL NOT NULL,
                PRIMARY KEY (job, shard)
            )""",
            """CREATE TABLE job_batches (
                job TEXT NOT NULL,
                shard INTEGER NOT NULL,
                service TEXT NOT NULL,
                batch_id TEXT NOT NULL,
                recorded_at REAL NOT NULL,
                PRIMARY KEY (job, service, batch_id)
            )""",
        ],
    ),
]


def home_dir() -> Path:
    """`$OPENAI_BATCH_HOME`, else the platform's user data directory for openai-batch."""
    home = settings.home()
    if home is not None:
        return home
    from platformdirs import user_data_dir

    return Path(user_data_dir("openai-batch", appauthor=False))


def downloads_dir() -> Path:
    """Where downloaded output/error files are kept, by file id (their content never changes)."""
    return home_dir() / "downloads"


def download_path(file_id: str) -> Path:
    """Where the download of `file_id` is kept; the id is checked first (see ids.py)."""
    from openai_batch.service.ids import file_name

    return downloads_dir() / file_name(file_id, ".jsonl")


@dataclass
class RequestFileRecord:
    id: int
    path: str
    digest: str
    bytes: int | None
    requests: int | None
    endpoint: str | None
    model: str | None
    template: str | None
    table: TableSpec | None = None  # the data file it was made from, and how to read it again
    first_row: int | None = None
    shard: int | None = None
    shards: int | None = None
    parent_digest: str | None = None
    job: str | None = None
    recorded_at: float = 0.0
    make_run: str | None = None  # one id per make-batch-file run: its shards share it

    @property
    def data(self) -> str | None:
        """The data file's absolute path, when known."""
        return self.table.path if self.table is not None else None

    @property
    def data_digest(self) -> str | None:
        """The data file's content when the request file was made, when known."""
        return self.table.digest if self.table is not None else None


@dataclass
class UploadRecord:
    file_id: str
    service: str
    digest: str
    path: str | None
    bytes: int | None
    purpose: str | None
    created_at: int | None
    expires_at: int | None
    gone: bool
    recorded_at: float


@dataclass
class BatchRecord:
    batch_id: str
    service: str
    input_file_id: str | None
    digest: str | None
    endpoint: str | None
    description: str | None
    metadata: dict[str, str]
    status: str | None
    created_at: int | None
    output_file_id: str | None
    error_file_id: str | None
    total: int | None
    completed: int | None
    failed: int | None
    recorded_at: float
    updated_at: float


class Ledger:
    """A connection to the ledger database. Use as a context manager, or call close()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise ledger_faults.cannot_open(path, exc) from None
        try:
            self._setup()
        except (OSError, sqlite3.Error) as exc:
            self.db.close()
            raise ledger_faults.cannot_open(path, exc) from None

    def _setup(self) -> None:
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        with contextlib.suppress(sqlite3.OperationalError):  # e.g. on a network filesystem
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        with self.transaction() as db:
            done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            newest = max((v for v, _, _ in MIGRATIONS), default=0)
            if done and max(done) > newest:
                raise BatchError(
                    f"the ledger {self.path} was written by a newer openai-batch "
                    f"(schema {max(done)} > {newest})",
                    hint="upgrade openai-batch, or point OPENAI_BATCH_HOME elsewhere",
                )
            for version, name, steps in MIGRATIONS:
                if version in done:
                    continue
                for step in steps:
                    if callable(step):
                        step(db)
                    else:
                        db.execute(step)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )

    def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    @contextlib.contextmanager
    def lock(
        self,
        name: str,
        *,
        wait_seconds: float = 3600.0,
        poll: float = 0.1,
        notify: Notify | None = None,
    ) -> Iterator[None]:
        """Hold a named lock across processes and hosts (e.g. "start:<digest>").

        Waits for a live holder; a dead one (see ledger_locks) is taken over. `notify` hears,
        once, what this waits for, and of a takeover."""
        me = owner()
        deadline = time.monotonic() + wait_seconds
        told = False
        while (holder := self._try_lock(name, me, notify)) is not True:
            if not told and notify is not None and isinstance(holder, Holder):
                notify(waiting_note(name, holder))
                told = True
            if time.monotonic() > deadline:
                raise BatchError(
                    f"another openai-batch command holds the lock {name!r}",
                    hint="wait for it to finish, then run this command again",
                )
            time.sleep(poll)
        try:
            with Heartbeat(self.path, name, me):
                yield
        finally:
            with self.transaction() as db:
                db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, me))

    def _try_lock(self, name: str, me: str, notify: Notify | None) -> Holder | bool:
        """True when taken; else the live holder it waits for."""
        with self.transaction() as db:
            row = db.execute("SELECT owner, acquired_at FROM locks WHERE name = ?", (name,))
            held = row.fetchone()
            if held is not None and held["owner"] != me:
                holder = Holder.parse(held["owner"], held["acquired_at"])
                if not holder.dead():
                    return holder
                if notify is not None:
                    notify(takeover_note(name, holder))
            db.execute(
                "INSERT OR REPLACE INTO locks (name, owner, acquired_at) VALUES (?, ?, ?)",
                (name, me, time.time()),
            )
            return True

    # -- request files ----------------------------------------------------------------------

    def record_request_file(
        self,
        path: Path | str,
        digest: str,
        *,
        bytes: int | None = None,
        requests: int | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        template: Path | str | None = None,
        table: TableSpec | None = None,
        first_row: int | None = None,
        shard: int | None = None,
        shards: int | None = None,
        parent_digest: str | None = None,
        job: str | None = None,
        make_run: str | None = None,
    ) -> RequestFileRecord:
        """Record (or refresh) a request file; known facts are kept when new ones are None."""
        values = {
            "bytes": bytes,
            "requests": requests,
            "endpoint": endpoint,
            "model": model,
            "template": _abs(template),
            "data": _abs(table.path) if table is not None else None,
            "data_digest": table.digest if table is not None else None,
            "table_options": json.dumps(table.stored_options()) if table is not None else None,
            "first_row": first_row,
            "shard": shard,
            "shards": shards,
            "parent_digest": parent_digest,
            "job": job,
            "make_run": make_run,
        }
        key = (_abs(path), digest)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM request_files WHERE path = ? AND digest = ?", key
            ).fetchone()
            if row is None:
                cols = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                db.execute(
                    f"INSERT INTO request_files (path, digest, {cols}, recorded_at) "
                    f"VALUES (?, ?, {marks}, ?)",
                    (*key, *values.values(), time.time()),
                )
            else:
                given = {k: v for k, v in values.items() if v is not None}
                sets = "".join(f"{k} = ?, " for k in given)
                db.execute(
                    f"UPDATE request_files SET {sets}recorded_at = ? WHERE id = ?",
                    (*given.values(), time.time(), row["id"]),
                )
        found = self.request_file(path=path, digest=digest)
        assert found is not None
        return found

    def request_file(
        self, *, path: Path | str | None = None, digest: str | None = None
    ) -> RequestFileRecord | None:
        """The newest record matching the path and/or content hash."""
        clauses, params = [], []
        if path is not None:
            clauses.append("path = ?")
            params.append(_abs(path))
        if digest is not None:
            clauses.append("digest = ?")
            params.append(digest)
        if not clauses:
            return None
        query = (
            f"SELECT * FROM request_files WHERE {' AND '.join(clauses)} "
            "ORDER BY recorded_at DESC, id DESC LIMIT 1"
        )
        row = self.db.execute(query, params).fetchone()
        return _request_file(row) if row else None

    def request_file_versions(self, path: Path | str) -> list[str]:
        """Every content (digest) recorded at this path, oldest first."""
        rows = self.db.execute(
            "SELECT digest FROM request_files WHERE path = ? ORDER BY recorded_at", (_abs(path),)
        )
        return [row[0] for row in rows]

    def known_as(self, path: Path | str) -> str | None:
        """What the ledger knows `path` as: "request file", "data file" or "template" (an
        input of a recorded job, which no output may replace), else None."""
        where = _abs(path)
        for column, what in (
            ("path", "request file"),
            ("data", "data file"),
            ("template", "template"),
        ):
            row = self.db.execute(
                f"SELECT 1 FROM request_files WHERE {column} = ? LIMIT 1", (where,)
            ).fetchone()
            if row is not None:
                return what
        return None

    def request_files_derived_from(self, digest: str) -> list[RequestFileRecord]:
        """Request files made from this one (retries of its failed requests), transitively."""
        found: dict[str, RequestFileRecord] = {}
        frontier = [digest]
        while frontier:
            parent = frontier.pop()
            for row in self.db.execute(
                "SELECT * FROM request_files WHERE parent_digest = ? ORDER BY recorded_at",
                (parent,),
            ):
                record = _request_file(row)
                if record.digest not in found and record.digest != digest:
                    found[record.digest] = record
                    frontier.append(record.digest)
        return list(found.values())

    def request_files_with(self, digest: str) -> list[RequestFileRecord]:
        """Every record of this content (byte-identical files at several paths), newest first."""
        rows = self.db.execute(
            "SELECT * FROM request_files WHERE digest = ? ORDER BY recorded_at DESC, id DESC",
            (digest,),
        )
        return [_request_file(row) for row in rows]

    def root_request_file(
        self, digest: str, *, path: Path | str | None = None
    ) -> RequestFileRecord | None:
        """Follow `parent_digest` up to the request file a retry file was derived from.

        Byte-identical request files can come from different tables (a template using only a
        column both share): the record at `path` is preferred, the newest by content only when
        no record has that path.
        """
        record = self.request_file(path=path, digest=digest) if path is not None else None
        record = record or self.request_file(digest=digest)
        seen = {digest}
        while record is not None and record.parent_digest and record.parent_digest not in seen:
            seen.add(record.parent_digest)
            parent = self.request_file(digest=record.parent_digest)
            if parent is None:
                break
            record = parent
        return record

    # -- uploads ----------------------------------------------------------------------------

    def record_upload(self, service: str, file_obj: Any, digest: str, path: Path | str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO uploads (file_id, service, digest, path, bytes, purpose, "
                "created_at, expires_at, gone, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    file_obj.id,
                    service,
                    digest,
                    _abs(path),
                    getattr(file_obj, "bytes", None),
                    getattr(file_obj, "purpose", None),
                    getattr(file_obj, "created_at", None),
                    getattr(file_obj, "expires_at", None),
                    time.time(),
                ),
            )

    def uploads_for(self, service: str, digest: str) -> list[UploadRecord]:
        """Uploads of this content on this service still believed to exist, newest first."""
        rows = self.db.execute(
            "SELECT * FROM uploads WHERE service = ? AND digest = ? AND gone = 0 "
            "ORDER BY recorded_at DESC",
            (service, digest),
        )
        return [_upload(row) for row in rows]

    def upload(self, service: str, file_id: str) -> UploadRecord | None:
        row = self.db.execute(
            "SELECT * FROM uploads WHERE service = ? AND file_id = ?", (service, file_id)
        ).fetchone()
        return _upload(row) if row else None

    def mark_upload_gone(self, service: str, file_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE uploads SET gone = 1 WHERE service = ? AND file_id = ?", (service, file_id)
            )

    # -- batches ----------------------------------------------------------------------------

    def record_batch(
        self,
        service: str,
        batch: Any,
        *,
        digest: str | None = None,
        description: str | None = None,
    ) -> None:
        """Insert or refresh a batch from the API's object; earlier facts survive a None."""
        counts = batch.request_counts
        metadata = dict(batch.metadata or {})
        with self.transaction() as db:
            old = db.execute(
                "SELECT digest, description FROM batches WHERE service = ? AND batch_id = ?",
                (service, batch.id),
            ).fetchone()
            if digest is None and old is not None:
                digest = old["digest"]
            if digest is None and batch.input_file_id:
                up = db.execute(
                    "SELECT digest FROM uploads WHERE service = ? AND file_id = ?",
                    (service, batch.input_file_id),
                ).fetchone()
                digest = up["digest"] if up else None
            if description is None:
                description = metadata.get("description") or (old["description"] if old else None)
            now = time.time()
            db.execute(
                "INSERT INTO batches (batch_id, service, input_file_id, digest, endpoint, "
                "description, metadata, status, created_at, output_file_id, error_file_id, total, "
                "completed, failed, recorded_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (service, batch_id) DO UPDATE SET digest = excluded.digest, "
                "description = excluded.description, metadata = excluded.metadata, "
                "status = excluded.status, output_file_id = excluded.output_file_id, "
                "error_file_id = excluded.error_file_id, total = excluded.total, "
                "completed = excluded.completed, failed = excluded.failed, "
                "updated_at = excluded.updated_at",
                (
                    batch.id,
                    service,
                    batch.input_file_id,
                    digest,
                    batch.endpoint,
                    description,
                    json.dumps(metadata),
                    batch.status,
                    batch.created_at,
                    batch.output_file_id or None,
                    batch.error_file_id or None,
                    counts.total if counts else None,
                    counts.completed if counts else None,
                    counts.failed if counts else None,
                    now,
                    now,
                ),
            )

    def batch(self, service: str, batch_id: str) -> BatchRecord | None:
        row = self.db.execute(
            "SELECT * FROM batches WHERE service = ? AND batch_id = ?", (service, batch_id)
        ).fetchone()
        return _batch(row) if row else None

    def batches_for(
        self,
        service: str,
        *,
        digests: Sequence[str] = (),
        input_file_id: str | None = None,
    ) -> list[BatchRecord]:
        """Batches started from any of these contents (or this upload), oldest first."""
        clauses, params = [], [service]
        if digests:
            clauses.append(f"digest IN ({', '.join('?' for _ in digests)})")
            params.extend(digests)
        if input_file_id:
            clauses.append("input_file_id = ?")
            params.append(input_file_id)
        if not clauses:
            return []
        rows = self.db.execute(
            f"SELECT * FROM batches WHERE service = ? AND ({' OR '.join(clauses)}) "
            "ORDER BY created_at, recorded_at",
            params,
        )
        return [_batch(row) for row in rows]


def open_ledger(home: Path | None = None) -> Ledger:
    """Open (creating and migrating as needed) the ledger under `home` or `home_dir()`."""
    return Ledger((home or home_dir()) / DB_NAME)


def _abs(path: Path | str | None) -> str | None:
    if path is None:
        return None
    return str(Path(path).expanduser().resolve())


def _request_file(row: sqlite3.Row) -> RequestFileRecord:
    data = dict(row)
    path, digest = data.pop("data"), data.pop("data_digest")
    options = json.loads(data.pop("table_options") or "{}")
    data["table"] = TableSpec.from_stored(path, digest, options) if path else None
    return RequestFileRecord(**data)


def _upload(row: sqlite3.Row) -> UploadRecord:
    data = dict(row)
    data["gone"] = bool(data["gone"])
    return UploadRecord(**data)


def _batch(row: sqlite3.Row) -> BatchRecord:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"]) if data["metadata"] else {}
    return BatchRecord(**data)
