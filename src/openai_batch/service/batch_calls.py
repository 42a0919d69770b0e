"""The Batches API calls: create, retrieve, find, cancel, list.

Every batch object goes through `normalize` (service/shape.py: OpenAI's shape and words, whatever
the server's dialect) and has its ids checked (service/ids.py) before anything uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from openai_batch.errors import ApiError, BatchError, Command, Hint, quoted
from openai_batch.service import ids
from openai_batch.service import shape as batchshape
from openai_batch.service.connection import Connection
from openai_batch.service.failures import (
    SERVER_WORDS,
    calling,
    require_openai_batches,
    reraise_missing_route,
)
from openai_batch.service.redaction import redact
from openai_batch.service.strict import report_differences

if TYPE_CHECKING:
    from openai.types import Batch

FINAL_STATUSES = batchshape.FINAL


class UnrecognisedBatch(ApiError):
    """The service answered a create with something that names no batch: it may still run one."""

    def __init__(self, message: str, *, hint: Hint, answer: str) -> None:
        super().__init__(message, hint=hint)
        self.answer = answer


def create_batch(
    conn: Connection,
    input_file_id: str,
    endpoint: str,
    metadata: dict[str, str] | None,
    *,
    completion_window: str = "24h",
) -> Batch:
    """Start a batch. An answer without a batch id raises UnrecognisedBatch (never retried)."""
    require_openai_batches(conn, f"starting a batch for {input_file_id}")
    with calling(f"starting a batch for {input_file_id}", conn):
        answer = conn.client.batches.create(
            input_file_id=input_file_id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window=completion_window,  # type: ignore[arg-type]
            metadata=metadata or None,
        )
    batch = normalize(answer, conn, "batch")
    if not batch.id:
        text = quoted(redact(str(batchshape.raw_data(answer))), SERVER_WORDS)
        raise UnrecognisedBatch(
            f"{conn.describe()} answered the batch create without a batch id: it may have "
            f"started one that this tool cannot follow (answer: {text})",
            hint=(
                f"check the service's own console for a batch on {input_file_id} before "
                "starting again; its batch API may not be OpenAI's: `",
                Command("utils", "chat-complete"),
                "` works with any chat-completions server",
            ),
            answer=text,
        )
    return batch


def retrieve_batch(conn: Connection, batch_id: str) -> Batch:
    import openai

    try:
        with calling(f"looking up batch {batch_id}", conn):
            try:
                return normalize(conn.client.batches.retrieve(batch_id), conn, "batch")
            except openai.NotFoundError as exc:
                reraise_missing_route(exc)
                raise ApiError(
                    f"no batch {batch_id} at {conn.describe()} (404)",
                    hint=(
                        "check the id with `",
                        Command("list-batches"),
                        "`; batch ids belong to one organization and project",
                    ),
                ) from None
    except ValueError:
        raise BatchError(f"not a batch id: {batch_id!r}") from None


def find_batch(conn: Connection, batch_id: str) -> Batch | None:
    """Like retrieve_batch, but None when the service does not know the id."""
    import openai

    with calling(f"looking up batch {batch_id}", conn):
        try:
            return normalize(conn.client.batches.retrieve(batch_id), conn, "batch")
        except openai.NotFoundError as exc:
            reraise_missing_route(exc)
            return None


def cancel_batch(conn: Connection, batch_id: str) -> Batch:
    import openai

    with calling(f"cancelling batch {batch_id}", conn):
        try:
            return normalize(conn.client.batches.cancel(batch_id), conn, "batch")
        except openai.NotFoundError as exc:
            reraise_missing_route(exc)
            raise ApiError(
                f"no batch {batch_id} at {conn.describe()} (404)",
                hint=("check the id with `", Command("list-batches"), "`"),
            ) from None


MAX_LIST_PAGES = 10_000  # a bound even for a server whose cursors never end


def iter_batches(
    conn: Connection, *, page_size: int = 100, skip_unreadable: bool = False
) -> Iterator[Batch]:
    """Every batch, newest first, across the API's pages, each once.

    `skip_unreadable`: pass over a batch whose ids are not ids (another tool's, on the same
    account) instead of stopping; for callers that look for their own batches among all.

    Stops at the end the server announces (`has_more: false`), and also on a page without a
    cursor (no ids) or one that brings nothing new: some compatible servers ignore `after` and
    leave out `has_more`, and would otherwise answer the same page forever."""
    seen: set[str] = set()
    after: str | None = None
    with calling("listing batches", conn):
        for _ in range(MAX_LIST_PAGES):
            kwargs: dict[str, Any] = {"limit": page_size}
            if after is not None:
                kwargs["after"] = after
            page = conn.client.batches.list(**kwargs)
            items = list(getattr(page, "data", None) or [])
            new = 0
            for item in items:
                try:
                    batch = normalize(item, conn, "batch")
                except ApiError:
                    if not skip_unreadable:
                        raise
                    continue  # not one of ours: ours were checked when they were created
                if batch.id is None or batch.id in seen:
                    continue
                seen.add(batch.id)
                new += 1
                yield batch
            last = batchshape.raw_data(items[-1]).get("id") if items else None
            if not new or not isinstance(last, str) or getattr(page, "has_more", None) is False:
                return
            after = last


def normalize(batch: Batch, conn: Connection | None = None, kind: str = "batch") -> Batch:
    """The batch in OpenAI's shape and words (see batchshape); differences reported if strict.
    Every id in it is checked for an id's shape (see ids.py) before anything uses it."""
    if conn is not None:
        report_differences(conn, kind, batch)
    return ids.check_batch(batchshape.normalize(batch))


def is_final(batch: Batch) -> bool:
    return batchshape.is_final(batch)
