"""`openai-batch start-batch FILE_ID_OR_PATH...`: one batch per request file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.flow import submit
from openai_batch.ledger.store import open_ledger
from openai_batch.requestfile import scan
from openai_batch.requestfile.scanpool import scan_request_files
from openai_batch.service.connection import Connection, connect
from openai_batch.service.failures import TokenLimitRefused
from openai_batch.ui import console, hints
from openai_batch.ui.batchview import batch_json


def start_batch(
    *targets: str,
    description: str = submit.DEFAULT_DESCRIPTION,
    metadata: list[str] | None = None,
    endpoint: str | None = None,
    job: str | None = None,
    max_enqueued_tokens: int | None = None,
    parallel: int = 4,
    force: bool = False,
    no_check: bool = False,
    completion_window: str = "24h",
    service: str | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Start one batch per uploaded file id or local request file.

    Example: openai-batch start-batch batch-requests.jsonl --description "persona survey"

    A local path is uploaded first, unless that exact content was uploaded before and is still
    on the service. A file whose content already has a batch running or completed is not
    started again (that would be paid twice): its batch is shown instead; --force starts another.
    The files of one make-batch-file run (or files given --job) form one job: uploaded
    --parallel at a time, started within --max-enqueued-tokens, followed with get-batch-results
    --job NAME. Files made from different tables start as separate batches.

    Parameters
    ----------
    targets
        Uploaded file ids (file-...) or request files (.jsonl).
    description
        Stored as the batch's metadata "description", shown by list-batches.
    metadata
        More metadata as KEY=VALUE; repeat the option for each pair (16 pairs at most,
        keys up to 64 and values up to 512 characters).
    endpoint
        The batch's endpoint (default: the url of the file's lines).
    job
        Name of the job these files form (default: the data file they were made from, or the
        first file's name). Files of one make-batch-file run always form a job; other files
        only with --job, and only when no custom_id is in two of them.
    max_enqueued_tokens
        Start files only while the estimated prompt tokens of the job's running batches stay
        within N; the rest start as earlier ones finish (get-batch-results --job NAME --wait
        keeps the job moving). 0 removes a quota set earlier.
    parallel
        Upload this many files of a job at once.
    force
        Start a new batch even if one for the same content is running or completed.
    no_check
        Skip the check of local files against the API's rules (as `utils validate`).
    completion_window
        The time the service has to finish the batch: 24h on OpenAI and Azure; some
        compatible services take more (Groq: 24h to 7d).
    service
        The batch service whose rules apply (default: from AZURE_OPENAI_ENDPOINT /
        OPENAI_BASE_URL, else OpenAI); see docs/services.md.
    as_json
        Print the API's batch objects (plus what this command adds) as JSON.
    """
    if not targets:
        raise BatchError("no file given", hint=Command("start-batch", "batch-requests.jsonl"))
    from openai_batch.service.profiles import select

    meta = submit.parse_metadata(metadata or [], description)
    profile = select(service)
    profile.check_window(completion_window)
    local = [target for target in targets if not submit.looks_like_file_id(target)]
    with open_ledger() as ledger:  # check every local file before starting anything
        scanned = scan_request_files(
            local, check=not no_check, limits=profile.limits, ledger=ledger
        )
    infos = dict(zip(local, scanned, strict=True))
    for info in scanned:
        if info.warnings:
            console.warn(hints.validate_warnings(info.path, info.warnings))
    conn = connect(service=service)
    conn.profile.check_window(completion_window)
    as_job = JobStart(jobs_metadata(meta, completion_window), endpoint, force, parallel, as_json)
    if job is not None or max_enqueued_tokens is not None or _one_run(infos):
        return _start_job(conn, list(targets), infos, as_job, job, max_enqueued_tokens)
    started, refused = [], []
    with open_ledger() as ledger:
        for target in targets:
            try:
                item = submit.start_one(
                    conn, ledger, target, metadata=meta, endpoint=endpoint, force=force,
                    info=infos.get(target), completion_window=completion_window,
                    notify=console.note,
                )  # fmt: skip
            except TokenLimitRefused:
                if target not in infos:
                    raise  # an uploaded file id: nothing local to queue
                refused.append(target)
                continue
            started.append(item)
            if not as_json:
                report(item)
    if as_json and started:
        console.print_json([to_json(s) for s in started])
    if refused:  # Azure's fail-fast regions: queued like the quota, started when there is room
        console.note(
            f"{conn.describe()} refused to start {', '.join(refused)} now (enqueued-token "
            "limit, fail fast): queued as a job that starts when running batches finish"
        )
        return _start_job(conn, refused, {t: infos[t] for t in refused}, as_job, None, None)
    if as_json and not started:
        console.print_json([])
    return 0


def jobs_metadata(meta: dict[str, str], completion_window: str) -> dict[str, str]:
    from openai_batch.flow import jobs

    return jobs.with_window(meta, completion_window)


def _one_run(infos: dict[str, scan.RequestFileInfo]) -> bool:
    """Several files of one make-batch-file run form a job; others start one by one."""
    from openai_batch.flow import jobregister

    if len(infos) < 2:
        return False
    with open_ledger() as ledger:
        if jobregister.one_make_run(ledger, infos.values()):
            return True
    console.note(
        "These files were not made by one make-batch-file run: each starts as its own batch "
        "(--job NAME makes them one job)."
    )
    return False


@dataclass(frozen=True)
class JobStart:
    """What start-batch's options say of a job it starts (the quota and name come apart: a
    job of refused files has neither)."""

    metadata: dict[str, str]  # the batches' metadata, completion window included
    endpoint: str | None
    force: bool
    parallel: int
    as_json: bool


def _start_job(
    conn: Connection,
    targets: list[str],
    infos: dict[str, scan.RequestFileInfo],
    how: JobStart,
    job: str | None,
    max_enqueued_tokens: int | None,
) -> int:
    """Several request files as one job: upload them together, start what the quota admits."""
    from openai_batch.commands.options import check_job_options, job_exit_code
    from openai_batch.flow import jobregister
    from openai_batch.flow.jobrun import Follow, follow_job
    from openai_batch.ui.jobview import JobPrinter

    check_job_options(max_enqueued_tokens, how.parallel)
    if len(infos) != len(targets):
        raise BatchError(
            "a job is made of local request files, not uploaded file ids",
            hint="give the .jsonl files, or start the file ids without --job",
        )
    with open_ledger() as ledger:
        if len(infos) > 1 and not jobregister.one_make_run(ledger, infos.values()):
            jobregister.check_disjoint_ids([i.path for i in infos.values()])
        specs = jobregister.specs_from_infos(ledger, infos.values())
        template, data = jobregister.recorded_data(ledger, specs)
        the_job, _ = jobregister.register(
            ledger, conn.service, specs, name=job, template=template, data=data,
            endpoint=how.endpoint or next(iter(infos.values())).endpoint, metadata=how.metadata,
            max_enqueued_tokens=max_enqueued_tokens, force=how.force,
        )  # fmt: skip
        follow = Follow(
            parallel=how.parallel, collect_when_done=False,
            fresh=[i.digest for i in infos.values()],
        )  # fmt: skip
        printer = JobPrinter(follow.outputs, as_json=how.as_json)
        outcome = follow_job(conn, ledger, the_job, follow, printer)
        printer.show(outcome)
        return job_exit_code(outcome)


def report(item: submit.Started) -> None:
    batch = item.batch
    if item.upload is not None:
        verb = "Using the earlier upload" if item.upload.reused else "Uploaded batch file"
        console.note(f"{verb}: {item.upload.path} -> {item.upload.file.id}")
    for earlier in item.earlier:
        console.note(f"(an earlier batch {earlier.id} of this file ended {earlier.status})")
    if item.reused:
        from openai_batch.ui.jobview import already_started

        console.say(already_started(batch, item.target, item.origin))
    else:
        console.say(f"Started batch: {batch.id}  {batch.status}  ({item.target})")


def to_json(item: submit.Started) -> dict[str, object]:
    return batch_json(
        item.batch,
        target=item.target,
        reused=item.reused,
        uploaded=item.upload is not None and not item.upload.reused,
    )
