"""OPENAI_BATCH_STRICT=1: where a service's objects depart from OpenAI's schema, as notices.

Useful with look-alike servers; it never blocks a call that worked. Each departure is told once
per kind and field (through service/notices.py: the CLI shows them as warnings).
"""

from __future__ import annotations

from typing import Any

from openai_batch.service import notices
from openai_batch.service import shape as batchshape
from openai_batch.service.connection import Connection


def report_differences(conn: Connection, kind: str, obj: Any) -> None:
    """OPENAI_BATCH_STRICT=1: tell (once per field and connection) where the service departs
    from the schema."""
    if not conn.strict or obj is None:
        return
    from openai.types import Batch, FileObject

    model = {"batch": Batch, "file": FileObject}[kind]
    for line in batchshape.differences(model, batchshape.raw_data(obj)):
        about = (kind, line.split(":", 1)[0])
        if about in conn.told:
            continue
        conn.told.add(about)
        notices.tell(f"strict: {conn.describe()} sent a {kind} that differs from OpenAI's: {line}")
