"""A job as the ledger keeps it: a named, ordered list of shards (request files) and their state.

A shard is `queued` (maybe uploaded), `running` (a batch is in flight) or `done` (its batch is
final). These records are what ledger/jobstore.py reads and writes; flow/jobs.py moves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUEUED = "queued"
RUNNING = "running"
DONE = "done"


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


@dataclass(frozen=True)
class JobInputs:
    """What a job is made from, as recorded: absolute paths, the batches' settings, the quota.

    `max_enqueued_tokens` None keeps a recorded quota, 0 removes it; `force` queues every shard
    again for a new batch."""

    template: str | None
    data: str | None
    output: str | None
    endpoint: str | None = None
    metadata: dict[str, str] | None = None
    max_enqueued_tokens: int | None = None
    force: bool = False
