"""From what the user named (batch ids, request files) to batches and their request files.

A request file stands for every batch started from it and from the retry files made from it;
a batch given by id finds its original request file through the ledger, for the order of the
results and the table to join.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openai_batch.errors import BatchError, Command, Hint
from openai_batch.ledger.digests import digest_of
from openai_batch.ledger.store import BatchRecord, Ledger, RequestFileRecord
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.service.connection import Connection
from openai_batch.ui import console


@dataclass
class Resolved:
    """What get-batch-results works on: batches, and the request files that give the order."""

    batch_ids: list[str]
    roots: list[RequestFileRecord]  # the original request files (not retry files), in order
    labels: dict[str, str]  # batch id -> request file path, for display
    groups: dict[str, str] = field(default_factory=dict)  # batch id -> its root's digest
    warnings: list[str] = field(default_factory=list)  # for the command to show


def looks_like_batch_id(target: str) -> bool:
    return target.startswith("batch_") and not Path(target).exists()


def _started_from(ledger: Ledger, batch: BatchRecord, digest: str, given: Path) -> str:
    """The request file a batch ran: the one given, or for a retry batch its retry file."""
    if batch.digest is None or batch.digest == digest:
        return str(given)
    record = ledger.request_file(digest=batch.digest)
    return console.shown(record.path) if record is not None else str(given)


def resolve(conn: Connection, ledger: Ledger, targets: Sequence[str]) -> Resolved:
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


def _no_batch_hint(ledger: Ledger, service: str, path: Path) -> Hint:
    """Point at batches of an earlier version of this file, if any."""
    digests = ledger.request_file_versions(path)
    earlier = ledger.batches_for(service, digests=digests) if digests else []
    if earlier:
        ids = [b.batch_id for b in earlier[-3:]]
        again = Command("get-batch-results", *ids)
        return (f"{path} changed since its batches were started; give their ids instead: ", again)
    return ("start one with `", Command("start-batch", path), "`")


def attach_roots(ledger: Ledger, service: str, resolved: Resolved) -> None:
    """Find the request files of batches given by id, for ordering and the join."""
    known = {r.digest for r in resolved.roots}
    for batch_id in resolved.batch_ids:
        if batch_id in resolved.groups:
            continue
        record = ledger.batch(service, batch_id)
        if record is None or not record.digest:
            continue
        root = root_of_batch(ledger, service, batch_id, warnings=resolved.warnings)
        resolved.groups[batch_id] = root.digest if root else record.digest
        if root is not None and root.digest not in known:
            known.add(root.digest)
            resolved.roots.append(root)
            resolved.labels.setdefault(batch_id, root.path)
    _sort_shards(resolved.roots)


def root_of_batch(
    ledger: Ledger, service: str, batch_id: str, *, warnings: list[str] | None = None
) -> RequestFileRecord | None:
    """The original request file of a batch: the record at the path it was uploaded from when
    several byte-identical files (made from different tables) share its content (said in
    `warnings`, if given)."""
    record = ledger.batch(service, batch_id)
    if record is None or not record.digest:
        return None
    upload = ledger.upload(service, record.input_file_id) if record.input_file_id else None
    root = ledger.root_request_file(record.digest, path=upload.path if upload else None)
    if warnings is not None and root is not None and root.data:
        datas = {r.data for r in ledger.request_files_with(root.digest) if r.data}
        if len(datas) > 1:
            others = ", ".join(sorted(d for d in datas if d != root.data))
            warnings.append(
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
