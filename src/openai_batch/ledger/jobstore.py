"""The job tables' SQL: jobs, their shards and every batch they started (the only place it lives).

Every shard change is a compare-and-set on the shard's batch id (`set_shard`), so a stale
process cannot undo a newer one; registering runs in one write transaction, so two processes
never create the same job twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, Command
from openai_batch.ledger.jobrecords import DONE, QUEUED, Job, JobInputs, Shard, ShardSpec
from openai_batch.ledger.store import Ledger


class OtherShards(Exception):
    """The job already started other request files: nothing changed (the caller words it)."""

    def __init__(self, name: str, recorded: int, given: int) -> None:
        super().__init__(f"job {name!r} was started with other request files")
        self.name, self.recorded, self.given = name, recorded, given


def _shard(row: Any) -> Shard:
    return Shard(
        number=row["shard"],
        path=row["path"],
        digest=row["digest"],
        requests=row["requests"],
        bytes=row["bytes"],
        first_row=row["first_row"],
        prompt_tokens=row["prompt_tokens"],
        file_id=row["file_id"],
        batch_id=row["batch_id"],
        state=row["state"],
        status=row["status"],
        completed=row["completed"],
        failed=row["failed"],
        total=row["total"],
        requeues=row["requeues"],
        not_before=row["not_before"],
        force=bool(row["force"]),
        note=row["note"],
    )


def find_job(ledger: Ledger, name: str) -> Job | None:
    row = ledger.db.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    shards = ledger.db.execute(
        "SELECT * FROM job_shards WHERE job = ? ORDER BY shard", (name,)
    ).fetchall()
    return Job(
        name=row["name"],
        service=row["service"],
        template=row["template"],
        data=row["data"],
        output=row["output"],
        endpoint=row["endpoint"],
        metadata=json.loads(row["metadata"]) if row["metadata"] else {},
        max_enqueued_tokens=row["max_enqueued_tokens"],
        shards=[_shard(s) for s in shards],
    )


def job_names(ledger: Ledger) -> list[str]:
    rows = ledger.db.execute("SELECT name FROM jobs ORDER BY updated_at DESC")
    return [r[0] for r in rows]


def load_job(ledger: Ledger, name: str, service: str | None = None) -> Job:
    """The job called `name` (on `service`), or a BatchError naming the jobs there are."""
    job = find_job(ledger, name)
    if job is None:
        known = job_names(ledger)[:10]
        raise BatchError(
            f"no job named {name!r} in the ledger",
            hint=(
                f"jobs here: {', '.join(known)}"
                if known
                else (
                    "start one with `",
                    Command("run", "TEMPLATE", "DATA"),
                    "` or `",
                    Command("start-batch", "FILE...", "--job", "NAME"),
                    "`",
                )
            ),
        )
    if service is not None and job.service != service:
        raise BatchError(
            f"job {name!r} runs on {job.service}, not on {service}",
            hint="set OPENAI_BASE_URL (or the Azure variables) as when the job started",
        )
    return job


def set_quota(ledger: Ledger, name: str, max_enqueued_tokens: int) -> None:
    """Change a job's quota (0: none); it applies from the next start."""
    with ledger.transaction() as db:
        db.execute(
            "UPDATE jobs SET max_enqueued_tokens = ?, updated_at = ? WHERE name = ?",
            (max_enqueued_tokens or None, time.time(), name),
        )


def job_batch_ids(ledger: Ledger, name: str) -> list[tuple[int, str]]:
    """(shard, batch id) of every batch the job started, token-limit failures included."""
    rows = ledger.db.execute(
        "SELECT shard, batch_id FROM job_batches WHERE job = ? ORDER BY recorded_at, shard",
        (name,),
    )
    return [(r[0], r[1]) for r in rows]


def set_shard(
    ledger: Ledger, job: str, shard: Shard, expect_batch: str | None, **values: Any
) -> bool:
    """Compare-and-set: change the shard only if its batch id is still `expect_batch`."""
    values["updated_at"] = time.time()
    sets = ", ".join(f"{k} = ?" for k in values)
    with ledger.transaction() as db:
        cur = db.execute(
            f"UPDATE job_shards SET {sets} WHERE job = ? AND shard = ? AND batch_id IS ?",
            (*values.values(), job, shard.number, expect_batch),
        )
        changed = cur.rowcount == 1
        if changed and values.get("state") == DONE:  # a finish frees room for requeued shards
            db.execute(
                "UPDATE job_shards SET not_before = 0 WHERE job = ? AND not_before < 0", (job,)
            )
    return changed


def record_job_batch(ledger: Ledger, job: str, shard: int, service: str, batch_id: str) -> None:
    """Remember every batch a job started, including those later requeued."""
    with ledger.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO job_batches (job, shard, service, batch_id, recorded_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (job, shard, service, batch_id, time.time()),
        )


def known_tokens(ledger: Ledger, digest: str) -> int | None:
    """The prompt-token estimate recorded for a request file with this digest, if any."""
    row = ledger.db.execute(
        "SELECT prompt_tokens FROM job_shards WHERE digest = ? AND prompt_tokens IS NOT NULL "
        "LIMIT 1",
        (digest,),
    ).fetchone()
    return int(row[0]) if row else None


def save_job(
    ledger: Ledger,
    service: str,
    specs: Sequence[ShardSpec],
    tokens: dict[str, int],
    inputs: JobInputs,
    *,
    name: str | None,
    new_name: str,
) -> tuple[str, bool]:
    """Create the job for these shards, or update the one they already form (one transaction).

    Without `name`, the job made from the same inputs and the same files (digests, in order)
    is found again; else a new one is named from `new_name`, made unique. Returns (name,
    created). OtherShards when the named job already started other files."""
    digests = [s.digest for s in specs]
    now = time.time()
    with ledger.transaction() as db:
        if name is None:
            name = _matching_job(db, service, inputs, digests)
        created = name is None
        if name is None:
            name = _unique_name(db, new_name)
        existing = db.execute("SELECT service FROM jobs WHERE name = ?", (name,)).fetchone()
        if existing is not None and existing["service"] != service:
            raise BatchError(
                f"job {name!r} runs on {existing['service']}, not on {service}",
                hint="give this one another name with --job NAME",
            )
        if existing is None:
            created = True
            db.execute(
                "INSERT INTO jobs (name, service, template, data, output, endpoint, metadata, "
                "max_enqueued_tokens, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    service,
                    inputs.template,
                    inputs.data,
                    inputs.output,
                    inputs.endpoint,
                    json.dumps(inputs.metadata or {}),
                    inputs.max_enqueued_tokens or None,
                    now,
                    now,
                ),
            )
        else:
            _update_job(db, name, inputs, now)
        _set_shards(db, name, specs, tokens, inputs.force, now)
    return name, created


def _matching_job(
    db: sqlite3.Connection, service: str, inputs: JobInputs, digests: list[str]
) -> str | None:
    rows = db.execute(
        "SELECT name FROM jobs WHERE service = ? AND template IS ? AND data IS ? AND output IS ? "
        "ORDER BY created_at DESC",
        (service, inputs.template, inputs.data, inputs.output),
    ).fetchall()
    for row in rows:
        recorded = [
            r[0]
            for r in db.execute(
                "SELECT digest FROM job_shards WHERE job = ? ORDER BY shard", (row["name"],)
            )
        ]
        if recorded == digests:
            return str(row["name"])
    return None


def _unique_name(db: sqlite3.Connection, base: str) -> str:
    name, n = base, 1
    while db.execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone():
        n += 1
        name = f"{base}-{n}"
    return name


def _update_job(db: sqlite3.Connection, name: str, inputs: JobInputs, now: float) -> None:
    metadata = json.dumps(inputs.metadata) if inputs.metadata else None
    db.execute(
        "UPDATE jobs SET template = COALESCE(?, template), data = COALESCE(?, data), "
        "output = COALESCE(?, output), endpoint = COALESCE(?, endpoint), "
        "metadata = COALESCE(?, metadata), updated_at = ? WHERE name = ?",
        (inputs.template, inputs.data, inputs.output, inputs.endpoint, metadata, now, name),
    )
    if inputs.max_enqueued_tokens is not None:
        db.execute(
            "UPDATE jobs SET max_enqueued_tokens = ? WHERE name = ?",
            (inputs.max_enqueued_tokens or None, name),
        )


def _set_shards(
    db: sqlite3.Connection,
    name: str,
    specs: Sequence[ShardSpec],
    tokens: dict[str, int],
    force: bool,
    now: float,
) -> None:
    """Keep the shards when they are the same files; replace them while nothing started."""
    rows = db.execute("SELECT * FROM job_shards WHERE job = ? ORDER BY shard", (name,)).fetchall()
    same = [r["digest"] for r in rows] == [s.digest for s in specs]
    if rows and not same:
        if any(r["batch_id"] or r["state"] != QUEUED for r in rows):
            raise OtherShards(name, len(rows), len(specs))
        db.execute("DELETE FROM job_shards WHERE job = ?", (name,))
        rows = []
    if not rows:
        for number, spec in enumerate(specs, start=1):
            db.execute(
                "INSERT INTO job_shards (job, shard, path, digest, requests, bytes, first_row, "
                "prompt_tokens, state, force, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    number,
                    str(Path(spec.path).resolve()),
                    spec.digest,
                    spec.requests,
                    spec.bytes,
                    spec.first_row,
                    tokens[spec.digest],
                    QUEUED,
                    int(force),
                    now,
                ),
            )
        return
    for number, spec in enumerate(specs, start=1):  # the files may have moved
        db.execute(
            "UPDATE job_shards SET path = ? WHERE job = ? AND shard = ?",
            (str(Path(spec.path).resolve()), name, number),
        )
    if force:
        db.execute(
            "UPDATE job_shards SET state = ?, batch_id = NULL, status = NULL, completed = NULL, "
            "failed = NULL, total = NULL, not_before = 0, force = 1, note = NULL, updated_at = ? "
            "WHERE job = ?",
            (QUEUED, now, name),
        )
