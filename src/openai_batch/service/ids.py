"""The shape of ids the service sends back, checked before they touch a path or a name.

Ids are data from the other side of the network: a download is kept as `downloads/<file_id>.jsonl`,
so an output_file_id of `../../x` or `/tmp/x` would write (and later read) a file anywhere. Every
batch and file object the service returns is checked here on arrival (`api` calls `check_batch`
and `check_file`), and `file_name` checks again where an id becomes a file name, so an id from an
older ledger cannot slip through either.

An id is 1 to 255 letters, digits, `_`, `-` and `.`, starting with a letter or digit: OpenAI's
(`file-abc123`, `batch_abc123`), Azure's (`batch_<uuid>`) and compatible servers' ids fit; nothing
with a slash, a backslash, a colon, a space or a leading dot does.
"""

from __future__ import annotations

import re
from typing import Any

from openai_batch.errors import ApiError, quoted

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")


def is_safe(value: str) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check(value: str, what: str) -> str:
    """`value` when it has an id's shape, else an ApiError naming `what` (e.g. "output_file_id")."""
    if not is_safe(value):
        raise ApiError(
            f"the service sent {what} {quoted(value)}, which is not an id",
            hint="ids are letters, digits, '_', '-' and '.'; nothing was written for it. Check "
            "that OPENAI_BASE_URL points at a service you trust",
        )
    return value


def check_batch(batch: Any) -> Any:
    """A batch object whose id and file ids all have an id's shape (None/"" means absent: what
    the service left out is the caller's to judge)."""
    for field in ("id", "input_file_id", "output_file_id", "error_file_id"):
        value = getattr(batch, field, None)
        if value:
            check(value, "batch id" if field == "id" else field)
    return batch


def check_file(file_obj: Any) -> Any:
    if getattr(file_obj, "id", None):
        check(file_obj.id, "file id")
    return file_obj


def file_name(file_id: str, suffix: str) -> str:
    """`<file_id><suffix>`: a name inside one folder, never a path out of it."""
    return check(file_id, "file id") + suffix
