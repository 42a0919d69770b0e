"""Jobs: the request files made from one template and one table, run as one thing.

A job is a named, ordered list of shards (request files) in the ledger. Each shard is `queued`
(maybe uploaded), `running` (a batch is in flight) or `done` (its batch is final). Every command
that touches a job moves it forward from what the ledger says, so a killed command loses
nothing: run it again and it continues.

The enqueued-token quota. OpenAI caps the prompt tokens an organisation may have queued per
model; a batch over it fails with `token_limit_exceeded`. With `max_enqueued_tokens` a shard is
started only while the estimated prompt tokens of the job's running batches, plus its own, stay
within the quota; shards start in order, the next as earlier ones finish. A single shard larger
than the quota is started alone (with a warning) rather than never. A batch that fails with
`token_limit_exceeded` anyway (the organisation's real limit is lower, or other work holds it) is
put back in the queue: it waits for another batch of the job to finish, or, when none is running,
for a delay that doubles up to 30 minutes, and is started again. It is never reported as lost.

Token figures are the offline estimate of `estimate`, from a uniform sample of each shard's lines
(`review.sample_lines`), recorded once in the ledger when the shard joins the job.

Concurrency: starting is serialised per job by the ledger's cross-process lock
(`job:<service>:<name>`), so two processes on one job never both start a shard or overshoot the
quota; every state change is a compare-and-set on the shard's batch id, so a stale process cannot
undo a newer one.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError
from openai_batch.flow import submit
from openai_batch.ledger.digests import matches
from openai_batch.ledger.store import Ledger, RequestFileRecord
from openai_batch.requestfile import scan
from openai_batch.results import merge as results
from openai_batch.service import api
from openai_batch.service import shape as batchshape
from openai_batch.service import status as batchstatus
from openai_batch.ui import console
from openai_batch.ui.progress import progress_bar

if TYPE_CHECKING:
    from openai.types import Batch

    from openai_batch.requestfile.make import MakeResult

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
TOKEN_SAMPLE = 1_000  # lines tokenized per shard for its prompt-token figure
REQUEUE_BASE_FACTOR = 12.0  # a lone requeued shard first waits 12 poll intervals...
REQUEUE_MAX_DELAY = 1800.0  # ...doubling up to 30 minutes
WAIT_FOR_A_FINISH = -1.0  # not_before: start again once another batch of the job is final
LONELY_WARNING_AFTER = 3  # requeues with nothing else running before we say it may never fit
MAX_POLL_INTERVAL = 60.0
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SHARD_SUFFIX = re.compile(r"-\d{3,}$")


# ---------------------------------------------------------------------------------------------
# The model


@dataclass
class Shard:
    """One request file of a job and where it stands."""

    number: int
    path: str
    digest: str
    requests: int | None
    bytes: int | None
    first_row: int | None
    prompt_tokens: int | None
    file_id: str | None
    batch_id: str | None
    state: str
    status: str | None
    completed: int | None
    failed: int | None
    total: int | None
    requeues: int
    not_before: float
    force: bool
    note: str | None

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def tokens(self) -> int:
        return self.prompt_tokens or 0

    def ready(self, now: float, others_running: bool) -> bool:
        """A queued shard whose requeue wait (if any) is over.

        One waiting for another batch to finish is ready once none runs: whoever saw the last
        one finish may not have seen this one requeued."""
        if self.state != QUEUED:
            return False
        if self.not_before < 0:
            return not others_running
        return self.not_before <= now

    def done_requests(self) -> int:
        if self.state == QUEUED:
            return 0
        return (self.completed or 0) + (self.failed or 0)


@dataclass
class Job:
    name: str
    service: str
    template: str | None
    data: str | None
    output: str | None
    endpoint: str | None
    metadata: dict[str, str]
    max_enqueued_tokens: int | None
    shards: list[Shard] = field(default_factory=list)

    def in_state(self, state: str) -> list[Shard]:
        return [s for s in self.shards if s.state == state]

    @property
    def finished(self) -> bool:
        return all(s.state == DONE for s in self.shards)

    def running_tokens(self) -> int:
        return sum(s.tokens for s in self.in_state(RUNNING))

    @property
    def requests(self) -> int:
        return sum(s.requests or 0 for s in self.shards)

    def done_requests(self) -> int:
        return sum(s.done_requests() for s in self.shards)

    def summary(self) -> str:
        """ "2 running, 3 queued, 2 done"."""
        parts = [f"{len(self.in_state(st))} {st}" for st in (RUNNING, QUEUED, DONE)]
        return ", ".join(p for p in parts if not p.startswith("0 ")) or "empty"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "template": self.template,
            "data": self.data,
            "max_enqueued_tokens": self.max_enqueued_tokens,
            "requests": self.requests,
            "finished": self.finished,
            "shards": [
                {
                    "shard": s.number,
                    "path": s.path,
                    "requests": s.requests,
                    "prompt_tokens_estimate": s.prompt_tokens,
                    "file_id": s.file_id,
                    "batch_id": s.batch_id,
                    "state": s.state,
                    "status": s.status,
                    "completed": s.completed,
                    "failed": s.failed,
                    "total": s.total,
                    "requeues": s.requeues,
                    "note": s.note,
                }
                for s in self.shards
            ],
        }


@dataclass
class ShardSpec:
    """A request file about to join a job (from make-batch-file or start-batch's scan)."""

    path: Path
    digest: str
    requests: int
    bytes: int
    first_row: int | None = None


# ---------------------------------------------------------------------------------------------
# Reading and writing the ledger


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
                else "start one with `openai-batch "
                "run TEMPLATE DATA` or `openai-batch start-batch FILE... --job NAME`"
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


def _set(ledger: Ledger, job: str, shard: Shard, expect_batch: str | None, **values: Any) -> bool:
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


# ---------------------------------------------------------------------------------------------
# Registering


def default_name(data: str | Path | None, first_file: str | Path) -> str:
    """The data file's stem (`emails`), else the first request file's without `-001`."""
    stem = Path(data).stem if data else _SHARD_SUFFIX.sub("", Path(first_file).stem)
    if stem.endswith((".csv", ".jsonl", ".tsv")):  # emails.csv.gz
        stem = Path(stem).stem
    return _NAME_CHARS.sub("-", stem).strip("-.") or "job"


def estimate_tokens(path: Path, requests: int) -> int:
    """Estimated prompt tokens of a request file, from a uniform sample of its lines."""
    from openai_batch.estimate.cost import estimate_lines
    from openai_batch.requestfile.review import sample_lines

    sample = sample_lines([(Path(path), requests)], k=TOKEN_SAMPLE)
    est = estimate_lines(
        (request for _, _, request in sample),
        scale_to=requests if len(sample) < requests else None,
    )
    return int(est.prompt_tokens)


def _known_tokens(ledger: Ledger, digest: str) -> int | None:
    row = ledger.db.execute(
        "SELECT prompt_tokens FROM job_shards WHERE digest = ? AND prompt_tokens IS NOT NULL "
        "LIMIT 1",
        (digest,),
    ).fetchone()
    return int(row[0]) if row else None


def register(
    ledger: Ledger,
    service: str,
    specs: Sequence[ShardSpec],
    *,
    name: str | None = None,
    template: str | Path | None = None,
    data: str | Path | None = None,
    endpoint: str | None = None,
    metadata: dict[str, str] | None = None,
    max_enqueued_tokens: int | None = None,
    force: bool = False,
) -> tuple[Job, bool]:
    """Create the job for these request files, or find the one they already form.

    Without `name`, the job made from the same template, data and output files with the same
    contents is found again (so rerunning a command resumes it); otherwise a new name is derived
    from the data file, made unique. Returns (job, created). `max_enqueued_tokens` None keeps the
    recorded quota, 0 removes it. `force` queues every shard again for a new batch.
    """
    if not specs:
        raise BatchError("a job needs at least one request file")
    tokens = {}
    for spec in specs:  # outside the write transaction: tokenizing takes a moment
        ledger.adopt_legacy(spec.path, spec.digest)  # a job from before ledger schema 4
        known = _known_tokens(ledger, spec.digest)
        tokens[spec.digest] = (
            known if known is not None else estimate_tokens(spec.path, spec.requests)
        )
    digests = [s.digest for s in specs]
    template_s, data_s = _abs(template), _abs(data)
    output_s = _abs(specs[0].path)
    now = time.time()
    with ledger.transaction() as db:
        if name is None:
            name = _matching_job(db, service, template_s, data_s, output_s, digests)
        created = name is None
        if name is None:
            name = _unique_name(db, default_name(data, specs[0].path))
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
                    template_s,
                    data_s,
                    output_s,
                    endpoint,
                    json.dumps(metadata or {}),
                    max_enqueued_tokens or None,
                    now,
                    now,
                ),
            )
        else:
            _update_job(
                db, name, template_s, data_s, output_s, endpoint, metadata, max_enqueued_tokens, now
            )
        _set_shards(db, name, specs, tokens, force, now)
    for spec in specs:
        ledger.record_request_file(
            spec.path,
            spec.digest,
            bytes=spec.bytes,
            requests=spec.requests,
            endpoint=endpoint,
            first_row=spec.first_row,
            job=name,
        )
    return load_job(ledger, name), created


def _abs(path: str | Path | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path is not None else None


def _matching_job(
    db: Any,
    service: str,
    template: str | None,
    data: str | None,
    output: str | None,
    digests: list[str],
) -> str | None:
    rows = db.execute(
        "SELECT name FROM jobs WHERE service = ? AND template IS ? AND data IS ? AND output IS ? "
        "ORDER BY created_at DESC",
        (service, template, data, output),
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


def _unique_name(db: Any, base: str) -> str:
    name, n = base, 1
    while db.execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone():
        n += 1
        name = f"{base}-{n}"
    return name


def _update_job(
    db: Any,
    name: str,
    template: str | None,
    data: str | None,
    output: str | None,
    endpoint: str | None,
    metadata: dict[str, str] | None,
    max_enqueued_tokens: int | None,
    now: float,
) -> None:
    db.execute(
        "UPDATE jobs SET template = COALESCE(?, template), data = COALESCE(?, data), "
        "output = COALESCE(?, output), endpoint = COALESCE(?, endpoint), "
        "metadata = COALESCE(?, metadata), updated_at = ? WHERE name = ?",
        (template, data, output, endpoint, json.dumps(metadata) if metadata else None, now, name),
    )
    if max_enqueued_tokens is not None:
        db.execute(
            "UPDATE jobs SET max_enqueued_tokens = ? WHERE name = ?",
            (max_enqueued_tokens or None, name),
        )


def _set_shards(
    db: Any,
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
            raise BatchError(
                f"job {name!r} was started with other request files "
                f"({console.plural(len(rows), 'file')}; these {len(specs)} differ)",
                hint="give these files a new job name with --job NAME, or follow the old job "
                f"with `openai-batch get-batch-results --job {name}`",
            )
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


def specs_from_made(made: MakeResult) -> list[ShardSpec]:
    return [ShardSpec(Path(f.path), f.digest, f.requests, f.bytes, f.first_row) for f in made.files]


def specs_from_infos(ledger: Ledger, infos: Iterable[scan.RequestFileInfo]) -> list[ShardSpec]:
    """Request files given to start-batch: their row offsets when make-batch-file recorded them."""
    specs = []
    for info in infos:
        record = ledger.request_file(path=info.path, digest=info.digest)
        first_row = record.first_row if record else None
        specs.append(ShardSpec(info.path, info.digest, info.requests, info.bytes, first_row))
    return specs


def one_make_run(ledger: Ledger, infos: Iterable[scan.RequestFileInfo]) -> bool:
    """Whether these request files are shards of one make-batch-file run: only those form a
    job unasked (their custom_ids are disjoint rows of one table). Files recorded before run
    ids were: the same template, data and table options, and distinct shard numbers."""
    records = [ledger.request_file(path=i.path, digest=i.digest) for i in infos]
    if not records or any(r is None or not r.data for r in records):
        return False
    found = [r for r in records if r is not None]
    if len({r.digest for r in found}) != len(found):
        return False
    runs = {r.make_run for r in found}
    if None not in runs:
        return len(runs) == 1
    tables = {(r.template, r.data, r.shards, json.dumps(r.table_options, sort_keys=True))
              for r in found}  # fmt: skip
    numbers = [r.shard for r in found]
    return len(tables) == 1 and None not in numbers and len(set(numbers)) == len(numbers)


def check_disjoint_ids(paths: Sequence[Path]) -> None:
    """Refuse request files that share a custom_id: one job merges its results by custom_id,
    so one file's answers would replace the other's and land on the wrong rows."""
    seen: dict[str, Path] = {}
    for path in paths:
        for custom_id in results.iter_request_ids(path):
            first = seen.setdefault(custom_id, path)
            if first != path:
                raise BatchError(
                    f"{first} and {path} both have custom_id {custom_id!r}: as one job their "
                    "results would be merged, and answers joined to the wrong rows",
                    hint="start them as separate batches (without --job and "
                    "--max-enqueued-tokens), or make them with different --id-prefix",
                )


def recorded_data(ledger: Ledger, specs: Sequence[ShardSpec]) -> tuple[str | None, str | None]:
    """(template, data) make-batch-file recorded for these files, when they all share them."""
    pairs = set()
    for spec in specs:
        record = ledger.request_file(path=spec.path, digest=spec.digest)
        pairs.add((record.template, record.data) if record else (None, None))
    return next(iter(pairs)) if len(pairs) == 1 else (None, None)


# ---------------------------------------------------------------------------------------------
# Uploading


@dataclass
class UploadReport:
    uploaded: list[submit.Uploaded]
    bytes: int


def upload_pending(
    conn: api.Connection,
    ledger: Ledger,
    job: Job,
    *,
    parallel: int = 4,
    progress: bool = True,
    fresh: Iterable[str] = (),
) -> UploadReport:
    """Upload the job's queued shards that have no upload yet, `parallel` at a time.

    One progress bar in bytes. Each upload is recorded as it ends, so a kill loses at most the
    transfers in flight. Files whose digest is not in `fresh` are hashed first: a file changed
    since it joined the job is refused, never uploaded in its place.
    """
    todo = [s for s in job.shards if s.state == QUEUED and not s.file_id]
    if not todo:
        return UploadReport([], 0)
    fresh_set = set(fresh)
    for shard in todo:
        if shard.digest not in fresh_set:
            check_unchanged(shard)
    total = sum(s.bytes or 0 for s in todo)
    bar = progress_bar(
        enabled=progress,
        total=total,
        unit="B",
        unit_divisor=1000,
        desc=f"uploading {console.plural(len(todo), 'file')}",
    )
    done: list[submit.Uploaded] = []
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="upload")
    try:
        futures = {pool.submit(_upload_one, conn, ledger.path, job, s, bar.update): s for s in todo}
        for future in as_completed(futures):
            uploaded = future.result()
            done.append(uploaded)
            if uploaded.reused:  # nothing was sent: count it as done
                bar.update(futures[future].bytes or 0)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # uploads in flight finish and are recorded
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
    done.sort(key=lambda u: str(u.path))
    return UploadReport(done, total)


def _upload_one(
    conn: api.Connection,
    ledger_path: Path,
    job: Job,
    shard: Shard,
    progress: Callable[[int], object] | None = None,
) -> Any:
    """One upload on its own ledger connection (SQLite connections are not shared by threads)."""
    with Ledger(ledger_path) as ledger:
        uploaded = submit.ensure_uploaded(
            conn,
            ledger,
            Path(shard.path),
            info=_info(job, shard),
            progress=progress,
            notify=console.note,
        )
        _set(ledger, job.name, shard, None, file_id=uploaded.file.id)
    return uploaded


def _info(job: Job, shard: Shard) -> scan.RequestFileInfo:
    return scan.RequestFileInfo(
        Path(shard.path), shard.digest, shard.bytes or 0, shard.requests or 0, job.endpoint, None
    )


def check_unchanged(shard: Shard) -> None:
    path = Path(shard.path)
    if not path.is_file():
        raise BatchError(
            f"{path} (shard {shard.number} of its job) is gone and is not uploaded yet",
            hint="make the request files again with the same template and data",
        )
    if not matches(path, shard.digest):
        raise BatchError(
            f"{path} changed since it joined its job: its batch would not match the rows",
            hint="make the request files again with the same template and data, or start a new "
            "job with --job NAME",
        )


# ---------------------------------------------------------------------------------------------
# Moving a job forward


@dataclass
class Event:
    """Something that happened to a shard, for the command to tell the user."""

    kind: str  # started, reused, finished, requeued, over_quota, may_never_fit
    shard: Shard
    batch: Batch | None = None
    message: str = ""
    started: submit.Started | None = None


def is_token_limit_failure(batch: Batch) -> bool:
    if batch.status != "failed" or batch.errors is None:
        return False
    return any(e.code == "token_limit_exceeded" for e in batch.errors.data or [])


def refresh(conn: api.Connection, ledger: Ledger, job: Job, *, poll_interval: float) -> list[Event]:
    """Poll the running shards' batches; record progress, finishes and token-limit failures."""
    events: list[Event] = []
    running = job.in_state(RUNNING)
    now = batchstatus.current(conn, [s.batch_id for s in running if s.batch_id])
    for shard in running:
        assert shard.batch_id is not None
        batch = now[shard.batch_id]
        ledger.record_batch(conn.service, batch)
        counts = _counts(batch)
        if is_token_limit_failure(batch):
            others = any(s.state == RUNNING and s is not shard for s in job.shards)
            event = _requeue(ledger, job, shard, batch, others, poll_interval)
            if event:
                events.append(event)
        elif api.is_final(batch):
            if _set(
                ledger, job.name, shard, shard.batch_id, state=DONE, status=batch.status, **counts
            ):
                events.append(Event("finished", shard, batch))
        else:
            _set(ledger, job.name, shard, shard.batch_id, status=batch.status, **counts)
    return events


def _counts(batch: Batch) -> dict[str, int | None]:
    c = batch.request_counts
    return {
        "completed": c.completed if c else None,
        "failed": c.failed if c else None,
        "total": c.total if c else None,
    }


def _requeue(
    ledger: Ledger, job: Job, shard: Shard, batch: Batch, others: bool, poll_interval: float
) -> Event | None:
    """Back to the queue: after another batch of the job finishes, or after a growing delay."""
    requeues = shard.requeues + 1
    if others:
        not_before = WAIT_FOR_A_FINISH
        when = "once another batch of this job finishes"
    else:
        delay = min(REQUEUE_MAX_DELAY, poll_interval * REQUEUE_BASE_FACTOR * 2 ** (requeues - 1))
        not_before = time.time() + delay
        when = f"in {delay:.0f} s" if delay >= 1 else "now"
    note = f"token_limit_exceeded x{requeues}"
    changed = _set(
        ledger,
        job.name,
        shard,
        shard.batch_id,
        state=QUEUED,
        batch_id=None,
        status=None,
        completed=None,
        failed=None,
        total=None,
        requeues=requeues,
        not_before=not_before,
        note=note,
    )
    if not changed:
        return None
    message = (
        f"shard {shard.number} ({shard.name}): batch {batch.id} hit the organisation's "
        f"enqueued-token limit; queued again, to start {when}"
    )
    if not others and requeues >= LONELY_WARNING_AFTER:
        message += (
            f". It failed {requeues} times with nothing else of this job running: the limit for "
            f"this model may be below this shard (~{shard.tokens:,} tokens) or held by other "
            "batches; smaller files (--max-requests) would fit"
        )
    return Event("requeued", shard, batch, message)


def admit(
    conn: api.Connection,
    ledger: Ledger,
    name: str,
    *,
    emit_over_quota: bool = True,
    poll_interval: float = 5.0,
) -> list[Event]:
    """Start queued shards, in order, while the quota allows; one process at a time per job."""
    events: list[Event] = []
    probe = load_job(ledger, name)
    with ledger.lock(f"job:{probe.service}:{name}", notify=console.note):
        job = load_job(ledger, name)  # fresh, now that we hold the lock
        quota = job.max_enqueued_tokens or None
        running = len(job.in_state(RUNNING))
        tokens = job.running_tokens()
        now = time.time()
        for shard in job.in_state(QUEUED):
            if not shard.ready(now, running > 0):
                break  # in order: a requeued shard waiting for room holds the line
            if quota is not None and running and tokens + shard.tokens > quota:
                break
            if quota is not None and not running and shard.tokens > quota and emit_over_quota:
                events.append(Event("over_quota", shard, message=_over_quota(shard, quota)))
            try:
                started = _start(conn, ledger, job, shard)
            except api.TokenLimitRefused as refused:  # Azure fail-fast: nothing was started
                why = str(refused)
                events.append(_refused(ledger, job, shard, running > 0, why, poll_interval))
                break
            batch = started.batch
            final = api.is_final(batch) and not is_token_limit_failure(batch)
            values: dict[str, Any] = {
                "state": DONE if final else RUNNING,
                "batch_id": batch.id,
                "status": batch.status,
                "file_id": batch.input_file_id,
                "force": 0,
                **_counts(batch),
            }
            _set(ledger, job.name, shard, None, **values)
            _record_job_batch(ledger, job, shard, conn.service, batch.id)
            events.append(
                Event("reused" if started.reused else "started", shard, batch, started=started)
            )
            if not final:
                running += 1
                tokens += shard.tokens
    return events


def _refused(
    ledger: Ledger, job: Job, shard: Shard, others: bool, why: str, poll_interval: float
) -> Event:
    """A create refused for the quota: the shard waits for a finish, or a growing delay."""
    requeues = shard.requeues + 1
    delay = min(REQUEUE_MAX_DELAY, poll_interval * REQUEUE_BASE_FACTOR * 2 ** (requeues - 1))
    not_before = WAIT_FOR_A_FINISH if others else time.time() + delay
    when = "once another batch of this job finishes" if others else f"in {delay:.0f} s"
    _set(ledger, job.name, shard, None, requeues=requeues, not_before=not_before,
         note=f"refused: token_limit_exceeded x{requeues}")  # fmt: skip
    message = f"shard {shard.number} ({shard.name}): {why}; queued, to start {when}"
    return Event("requeued", shard, None, message)


def _over_quota(shard: Shard, quota: int) -> str:
    return (
        f"shard {shard.number} ({shard.name}) alone is ~{shard.tokens:,} estimated prompt "
        f"tokens, over --max-enqueued-tokens {quota:,}: starting it alone"
    )


def _start(conn: api.Connection, ledger: Ledger, job: Job, shard: Shard) -> submit.Started:
    path = Path(shard.path)
    if path.is_file():
        check_unchanged(shard)
    elif not shard.file_id:
        check_unchanged(shard)  # raises: gone, and never uploaded
    try:
        return submit.start_one(
            conn,
            ledger,
            path,
            metadata=shard_metadata(job, shard),
            endpoint=job.endpoint,
            force=shard.force,
            check=False,
            info=_info(job, shard),
            completion_window=completion_window(job),
            notify=console.note,
        )
    except OSError as exc:  # the file went away and its upload expired
        raise BatchError(
            f"cannot upload {path} again for shard {shard.number}: {exc}",
            hint="make the request files again with the same template and data",
        ) from None


WINDOW_KEY = "_completion_window"  # kept with the job's metadata, never sent as metadata


def with_window(metadata: dict[str, str], completion_window: str) -> dict[str, str]:
    """The job's metadata as stored: the batches' metadata plus their completion window."""
    return {**metadata, WINDOW_KEY: completion_window}


def completion_window(job: Job) -> str:
    return job.metadata.get(WINDOW_KEY) or "24h"


def shard_metadata(job: Job, shard: Shard) -> dict[str, str]:
    """The job's metadata plus job=NAME and shard=N/M, as far as the API's 16 pairs allow."""
    meta = {k: v for k, v in job.metadata.items() if k != WINDOW_KEY}
    meta = meta or {"description": submit.DEFAULT_DESCRIPTION}
    for key, value in (("job", job.name), ("shard", f"{shard.number}/{len(job.shards)}")):
        if key not in meta and len(meta) < submit.METADATA_MAX_PAIRS:
            meta[key] = value[: submit.METADATA_MAX_VALUE]
    return meta


def _record_job_batch(ledger: Ledger, job: Job, shard: Shard, service: str, batch_id: str) -> None:
    with ledger.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO job_batches (job, shard, service, batch_id, recorded_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (job.name, shard.number, service, batch_id, time.time()),
        )


def step(
    conn: api.Connection, ledger: Ledger, name: str, *, poll_interval: float = 5.0
) -> tuple[Job, list[Event]]:
    """One move: poll what runs, then start what the quota admits. Returns the job after."""
    job = load_job(ledger, name, conn.service)
    events = refresh(conn, ledger, job, poll_interval=poll_interval)
    if job.in_state(QUEUED) or any(e.kind == "requeued" for e in events):
        events += admit(conn, ledger, name, poll_interval=poll_interval)
    return load_job(ledger, name), events


class StoppedWaiting(Exception):
    """Ctrl-C while following a job: its batches go on; the caller says how to resume."""

    def __init__(self, job: Job) -> None:
        super().__init__("stopped waiting")
        self.job = job


def drive(
    conn: api.Connection,
    ledger: Ledger,
    name: str,
    *,
    poll_interval: float = 5.0,
    progress: bool = True,
    emit: Callable[[Event], None] | None = None,
    first: list[Event] | None = None,
) -> Job:
    """Move the job until every shard's batch is final, with one progress bar over all requests.

    Polls back off x1.5 up to a minute while nothing changes, and start again at
    `poll_interval` when a batch starts, ends or is requeued.
    """
    job = load_job(ledger, name, conn.service)
    bar = progress_bar(enabled=progress, total=job.requests, unit=" req", desc=job.summary())
    say = _emitter(bar, emit, progress)
    for event in first or []:
        say(event)
    interval = max(0.0, poll_interval)
    watch = batchshape.UnknownWatch()
    try:
        while True:
            job, events = step(conn, ledger, name, poll_interval=poll_interval)
            for event in events:
                say(event)
            for shard in job.in_state(RUNNING):
                watch.see(shard.batch_id, shard.status)
            bar.n = job.done_requests()
            bar.set_description_str(job.summary(), refresh=False)
            bar.refresh()
            if job.finished:
                return job
            if events:
                interval = max(0.0, poll_interval)
            time.sleep(interval)
            interval = min(max(interval * 1.5, 0.01), MAX_POLL_INTERVAL)
    except KeyboardInterrupt:
        raise StoppedWaiting(load_job(ledger, name)) from None
    finally:
        bar.close()


def _emitter(
    bar: Any, emit: Callable[[Event], None] | None, progress: bool
) -> Callable[[Event], None]:
    if emit is None:
        return lambda event: None
    if not progress:
        return emit

    def say(event: Event) -> None:
        with bar.external_write_mode(file=sys.stderr):
            emit(event)

    return say


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class JobBatches:
    """The batches whose results make up the job: one per shard, plus retries of their requests."""

    shards: list[Batch]  # each shard's current batch, in shard order
    retries: list[Batch]  # batches of retry files made from the shards (utils retry-failed)

    @property
    def all(self) -> list[Batch]:
        return [*self.shards, *self.retries]


def current_batches(conn: api.Connection, ledger: Ledger, job: Job) -> JobBatches:
    """Each started shard's batch as the service has it now, and the batches of retry files
    made from the shards (`utils retry-failed`), so their answers merge into the job's."""
    shards = []
    now = batchstatus.current(conn, [s.batch_id for s in job.shards if s.batch_id])
    for shard in job.shards:
        if shard.batch_id:
            batch = now[shard.batch_id]
            ledger.record_batch(conn.service, batch)
            shards.append(batch)
    retries = []
    seen = {b.id for b in shards}
    for shard in job.shards:
        derived = [r.digest for r in ledger.request_files_derived_from(shard.digest)]
        for record in ledger.batches_for(conn.service, digests=derived) if derived else []:
            if record.batch_id in seen:
                continue
            seen.add(record.batch_id)
            batch = api.retrieve_batch(conn, record.batch_id)
            ledger.record_batch(conn.service, batch)
            retries.append(batch)
    return JobBatches(shards, retries)


def roots(ledger: Ledger, job: Job) -> list[RequestFileRecord]:
    """The shards' request-file records, in row order: the order and the rows of the join."""
    found = []
    for shard in job.shards:
        record = ledger.request_file(path=shard.path, digest=shard.digest)
        record = record or ledger.request_file(digest=shard.digest)
        if record is None:
            raise BatchError(f"the ledger lost the request file of shard {shard.number}")
        found.append(record)
    return found


# ---------------------------------------------------------------------------------------------
# Showing a job


STATUS_HEADER = ("shard", "request file", "batch", "status", "completed/failed/total", "tokens~")


def status_rows(job: Job) -> list[list[str]]:
    rows = []
    width = len(str(len(job.shards)))
    for shard in job.shards:
        if shard.state == QUEUED:
            status = "queued" + (f" ({shard.note})" if shard.note else "")
            counts = f"-/-/{shard.requests or 0}"
        else:
            status = shard.status or shard.state
            total = shard.total if shard.total else shard.requests or 0
            counts = f"{shard.completed or 0}/{shard.failed or 0}/{total}"
        rows.append(
            [
                f"{shard.number:>{width}}/{len(job.shards)}",
                shard.name,
                shard.batch_id or "-",
                status,
                counts,
                f"{shard.tokens:,}",
            ]
        )
    return rows


def status_table(job: Job) -> str:
    from openai_batch.ui.batchview import table

    quota = f", quota {job.max_enqueued_tokens:,} tokens" if job.max_enqueued_tokens else ""
    head = (
        f"Job {job.name}: {console.plural(len(job.shards), 'shard')}, "
        f"{console.plural(job.requests, 'request')} "
        f"({job.summary()}{quota})"
    )
    return head + "\n" + table(status_rows(job), STATUS_HEADER)


__all__ = [
    "DONE",
    "QUEUED",
    "RUNNING",
    "Event",
    "Job",
    "JobBatches",
    "Shard",
    "ShardSpec",
    "StoppedWaiting",
    "admit",
    "check_disjoint_ids",
    "current_batches",
    "default_name",
    "drive",
    "find_job",
    "job_batch_ids",
    "load_job",
    "one_make_run",
    "refresh",
    "register",
    "roots",
    "set_quota",
    "specs_from_infos",
    "specs_from_made",
    "status_table",
    "step",
    "upload_pending",
]
