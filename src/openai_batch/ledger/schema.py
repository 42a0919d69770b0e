"""The ledger's schema: ordered, recorded migrations (the simonw/llm way).

Each migration runs once, in order, inside the transaction that opens the ledger, and its
version is recorded in `schema_migrations`. A ledger written by a newer openai-batch (a version
this one does not know) is refused with a clear error rather than misread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from openai_batch.errors import BatchError
from openai_batch.ledger.faults import move_aside

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
    (
        2,
        "request files the pre-upload check passed",
        [
            # by content and by what checked it (validate/stamp.py), so only the same bytes
            # checked by the same build against the same limits pass again unread
            """CREATE TABLE checked_files (
                digest TEXT NOT NULL,
                stamp TEXT NOT NULL,
                requests INTEGER NOT NULL,
                endpoint TEXT,
                model TEXT,
                warnings INTEGER NOT NULL,
                checked_at REAL NOT NULL,
                PRIMARY KEY (digest, stamp)
            )""",
        ],
    ),
    (
        3,
        "passes kept by when they were last used",
        [
            # when a pass was last recorded or matched: passes are kept by it (checkedfiles.py),
            # so a file started again and again keeps its pass; an old pass counts from when
            # it was recorded
            "ALTER TABLE checked_files ADD COLUMN used_at REAL NOT NULL DEFAULT 0",
            "UPDATE checked_files SET used_at = checked_at",
        ],
    ),
]


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations `db` (in a write transaction) lacks; refuse a newer ledger."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    done = dict(db.execute("SELECT version, name FROM schema_migrations").fetchall())
    newest = max((v for v, _, _ in MIGRATIONS), default=0)
    if done.get(1, MIGRATIONS[0][1]) != MIGRATIONS[0][1]:
        # The development history before the first release was squashed into version 1, so a
        # ledger from then has a version 1 of another name: neither newer nor readable.
        raise BatchError(
            f"the ledger {path} was written by a development version of openai-batch from "
            "before its first release, whose ledger this version cannot read",
            hint=f"move it aside (e.g. {move_aside(path, '.pre-release')}); a new ledger is "
            "started on the next run",
        )
    if done and max(done) > newest:
        raise BatchError(
            f"the ledger {path} was written by a newer openai-batch "
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


def schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
