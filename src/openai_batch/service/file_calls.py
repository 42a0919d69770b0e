"""The Files API calls: upload (streamed, with progress), look up, delete, read, download.

All through the SDK's client and its retries; a download also survives a transfer that breaks
off mid-file (the SDK retries only until the headers arrive), and never leaves a partial file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import ApiError, Command, quoted
from openai_batch.local import files
from openai_batch.service import ids
from openai_batch.service.connection import Connection
from openai_batch.service.failures import (
    SERVER_WORDS,
    calling,
    require_openai_batches,
    reraise_missing_route,
    translate,
)
from openai_batch.service.redaction import redact
from openai_batch.service.strict import report_differences

if TYPE_CHECKING:
    from openai.types import FileObject

DOWNLOAD_ATTEMPTS = 3


def upload_file(
    conn: Connection,
    path: Path,
    *,
    purpose: str = "batch",
    progress: Callable[[int], object] | None = None,
    expires_after: int | None = None,
) -> FileObject:
    """Upload a file, streamed from disk (the SDK rewinds it on a retry).

    `progress` hears of every block read for sending, for a progress bar in bytes."""
    require_openai_batches(conn, f"uploading {path}")
    with open(path, "rb") as fh, calling(f"uploading {path}", conn):
        body: Any = fh if progress is None else _ReadProgress(fh, progress)
        extra: dict[str, Any] = {}
        if expires_after is not None:  # Azure counts files without expiry against 500/resource
            extra["expires_after"] = {"anchor": "created_at", "seconds": expires_after}
        uploaded = conn.client.files.create(
            file=(path.name, body, "application/jsonl"),
            purpose=purpose,  # type: ignore[arg-type]
            **extra,
        )
    report_differences(conn, "file", uploaded)
    if not getattr(uploaded, "id", None):
        raise ApiError(
            f"{conn.describe()} answered the upload of {path} without a file id",
            hint=(
                "its Files API may not be OpenAI's; `",
                Command("utils", "chat-complete"),
                "` works with any chat-completions server",
            ),
        )
    return ids.check_file(uploaded)


class _ReadProgress:
    """A file that reports the bytes read from it; everything else is the file's own."""

    def __init__(self, fh: Any, report: Callable[[int], object]) -> None:
        self._fh = fh
        self._report = report

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._report(len(data))
        return bytes(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def retrieve_file(conn: Connection, file_id: str) -> FileObject | None:
    """The file's metadata, or None when the service no longer has it (expired or deleted)."""
    import openai

    with calling(f"looking up file {file_id}", conn):
        try:
            found = conn.client.files.retrieve(file_id)
        except openai.NotFoundError as exc:
            reraise_missing_route(exc)
            return None
    report_differences(conn, "file", found)
    return ids.check_file(found)


def delete_file(conn: Connection, file_id: str) -> None:
    """Delete a file on the service; one already gone is fine."""
    import openai

    with calling(f"deleting file {file_id}", conn):
        try:
            conn.client.files.delete(file_id)
        except openai.NotFoundError:
            return


def read_first_line(conn: Connection, file_id: str, limit: int = 16 << 20) -> bytes:
    """The first line of an uploaded file, without downloading the rest of it."""
    with (
        calling(f"reading file {file_id}", conn),
        conn.client.files.with_streaming_response.content(file_id) as response,
    ):
        head = bytearray()
        for chunk in response.iter_bytes(64 * 1024):
            head.extend(chunk)
            if b"\n" in head or len(head) >= limit:
                break
    return bytes(head.split(b"\n", 1)[0])


def download_file(
    conn: Connection, file_id: str, dest: Path, *, attempts: int = DOWNLOAD_ATTEMPTS
) -> Path:
    """Stream a file to `dest` atomically; a broken transfer is retried and never leaves a part."""
    import httpx2
    import openai

    what = f"downloading file {file_id}"
    for attempt in range(1, attempts + 1):
        temp = files.temp_path_for(dest)
        try:
            with conn.client.files.with_streaming_response.content(file_id) as response:
                expected = _announced_length(response.headers)
                written = 0
                with open(temp, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
                        written += len(chunk)
                if expected is not None and written != expected:
                    raise httpx2.RemoteProtocolError(
                        f"received {written} of {expected} bytes", request=None
                    )
            files.commit(temp, dest)
            return dest
        except (openai.APIConnectionError, httpx2.TransportError) as exc:
            files.discard(temp)
            if attempt == attempts:
                cause = quoted(redact(str(exc) or type(exc).__name__), SERVER_WORDS)
                raise ApiError(
                    f"the download of file {file_id} broke off {attempts} times ({cause})",
                    hint="nothing partial was kept; run the same command again",
                ) from None
            time.sleep(min(2.0**attempt * 0.25, 8.0))
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            files.discard(temp)
            raise translate(exc, what, conn) from None
        except BaseException:
            files.discard(temp)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _announced_length(headers: Any) -> int | None:
    if headers.get("content-encoding") not in (None, "identity"):
        return None
    raw = headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None
