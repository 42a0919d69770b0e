"""`openai-batch upload-batch-file FILE...`: upload request files for the Batch API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.flow import submit
from openai_batch.ledger.store import open_ledger
from openai_batch.requestfile.scanpool import scan_request_files
from openai_batch.service.connection import connect
from openai_batch.ui import console, hints


def upload_batch_file(
    *files: Path,
    force: bool = False,
    no_check: bool = False,
    expires_after: str | None = None,
    service: str | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Upload request files with purpose "batch", after checking what the API would reject.

    Example: openai-batch upload-batch-file batch-requests.jsonl

    Every file is checked first, as `utils validate` does (.jsonl, within the service's limits:
    OpenAI's 200 MB and 50,000 requests by default, unique custom_ids, one url and one model,
    each body against the API's request types); nothing is uploaded if one fails. A file whose
    exact content was uploaded before and is still on the service is not uploaded again.

    Parameters
    ----------
    files
        Request files (.jsonl), e.g. from make-batch-file.
    force
        Upload even when the same content is already on the service.
    no_check
        Skip the check of every line against the API's rules (as `utils validate`).
    expires_after
        Let the service delete the upload this long after it was made (1h to 30d, e.g. 7d).
        Azure counts batch files without an expiry against 500 per resource.
    service
        The batch service whose limits apply (default: from AZURE_OPENAI_ENDPOINT /
        OPENAI_BASE_URL, else OpenAI); see docs/services.md.
    as_json
        Print the API's file objects (plus what this command adds) as JSON.
    """
    if not files:
        raise BatchError("no file given", hint=Command("upload-batch-file", "batch-requests.jsonl"))
    from openai_batch.durations import upload_expiry
    from openai_batch.service.profiles import select

    expiry = upload_expiry(expires_after) if expires_after is not None else None
    limits = select(service).limits
    with open_ledger() as ledger:  # check every file before uploading any
        infos = scan_request_files(files, check=not no_check, limits=limits, ledger=ledger)
    for info in infos:
        if info.warnings:
            console.warn(hints.validate_warnings(info.path, info.warnings))
    conn = connect(service=service)
    done = []
    with open_ledger() as ledger:
        for info in infos:
            uploaded = submit.ensure_uploaded(
                conn,
                ledger,
                info.path,
                info=info,
                force=force,
                expires_after=expiry,
                notify=console.note,
            )
            done.append(uploaded)
            if not as_json:
                report(uploaded)
    if as_json:
        console.print_json([to_json(u) for u in done])
    return 0


def report(uploaded: submit.Uploaded) -> None:
    info, file = uploaded.info, uploaded.file
    if uploaded.reused:
        console.say(f"Already uploaded: {info.path} (same content, still on the service)")
    else:
        console.say(f"Uploaded batch file: {info.path}")
    expires = ""
    if file.expires_at:
        expires = f", expires {datetime.fromtimestamp(file.expires_at):%Y-%m-%d %H:%M}"
    console.say(
        f"  {file.id}  ({console.plural(info.requests, 'request')}, "
        f"{console.human_bytes(info.bytes)}{expires})"
    )


def to_json(uploaded: submit.Uploaded) -> dict[str, object]:
    data = uploaded.file.model_dump(mode="json")
    data["openai_batch"] = {
        "path": str(uploaded.info.path),
        "digest": uploaded.info.digest,
        "requests": uploaded.info.requests,
        "endpoint": uploaded.info.endpoint,
        "model": uploaded.info.model,
        "reused": uploaded.reused,
    }
    return data
