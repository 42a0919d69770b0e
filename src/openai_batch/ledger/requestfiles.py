"""Request files in the ledger: where each was made or met, its content, and its origin.

A request file is recorded by path and content digest, with the template and table it was made
from (a `TableSpec`, to read its rows again for the join), its custom_id range and, for a retry
file, the content it was derived from.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from openai_batch.ledger.connection import LedgerBase
from openai_batch.ledger.paths import abs_path
from openai_batch.table.spec import TableSpec


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


@dataclass(frozen=True)
class RequestFileFacts:
    """What a caller knows of a request file, to record: a path and content digest, and any
    of the rest (None: not known here, so what the ledger already knows is kept)."""

    path: Path | str
    digest: str
    bytes: int | None = None
    requests: int | None = None
    endpoint: str | None = None
    model: str | None = None
    template: Path | str | None = None
    table: TableSpec | None = None  # the data file it was made from, and how to read it again
    first_row: int | None = None
    shard: int | None = None
    shards: int | None = None
    parent_digest: str | None = None  # a retry file: the content it was derived from
    job: str | None = None
    make_run: str | None = None  # one id per make-batch-file run: its shards share it


class RequestFiles(LedgerBase):
    """The ledger's request_files table."""

    def record_request_file(self, facts: RequestFileFacts) -> RequestFileRecord:
        """Record (or refresh) a request file; known facts are kept when new ones are None."""
        table = facts.table
        values = {
            "bytes": facts.bytes,
            "requests": facts.requests,
            "endpoint": facts.endpoint,
            "model": facts.model,
            "template": abs_path(facts.template),
            "data": abs_path(table.path) if table is not None else None,
            "data_digest": table.digest if table is not None else None,
            "table_options": json.dumps(table.stored_options()) if table is not None else None,
            "first_row": facts.first_row,
            "shard": facts.shard,
            "shards": facts.shards,
            "parent_digest": facts.parent_digest,
            "job": facts.job,
            "make_run": facts.make_run,
        }
        path, digest = facts.path, facts.digest
        key = (abs_path(path), digest)
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
            params.append(abs_path(path))
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
            "SELECT digest FROM request_files WHERE path = ? ORDER BY recorded_at",
            (abs_path(path),),
        )
        return [row[0] for row in rows]

    def known_as(self, path: Path | str) -> str | None:
        """What the ledger knows `path` as: "request file", "data file" or "template" (an
        input of a recorded job, which no output may replace), else None."""
        where = abs_path(path)
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


def _request_file(row: sqlite3.Row) -> RequestFileRecord:
    data = dict(row)
    path, digest = data.pop("data"), data.pop("data_digest")
    options = json.loads(data.pop("table_options") or "{}")
    data["table"] = TableSpec.from_stored(path, digest, options) if path else None
    return RequestFileRecord(**data)
