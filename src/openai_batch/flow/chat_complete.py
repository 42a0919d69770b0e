"""Run a Batch API request file through the normal, synchronous API, writing Batch-format results.

For small or urgent jobs, or a local OpenAI-compatible server (vLLM, Ollama, llama.cpp): every
request line is POSTed to its `url` (relative to the client's base URL, so `/v1/chat/completions`
goes to `<base_url>/chat/completions`), several at a time, and each answer is appended to the
output file as a Batch API output line:

    {"id": "batch_req_...", "custom_id": ..., "response": {"status_code", "request_id", "body"},
     "error": null}

A request that still fails after its retries is written the way the Batch API writes its error
file: a non-200 `response` with the server's error body (keys and bearer tokens redacted), or
`"response": null` with an `error` object (`{"code": "timeout" | "invalid_response", "message":
...}`). So the same CSV join works on these files as on a batch's output.

Resuming: answers are appended as whole lines and fsynced regularly. Running again with the same
output file skips every custom_id that already has a 200 answer and retries the rest; failure
lines from the earlier run are dropped first (as is a trailing line cut short by a crash), so
the file never holds two lines for one custom_id.

Retries and pace (chat_runner.py, pacing.py): the SDK retries 408, 409, 5xx, timeouts and
dropped connections with its backoff; a 429 goes to the pacer, which slows the whole run to the
server's limit and sends the request again without spending its retries. A rejected key (401),
exhausted quota (429 `insufficient_quota`), an unreachable server, or nothing but 429s for
`give_up_after` seconds stops the run with an error, after writing the answers already received;
nothing is written for the requests that were not answered.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from openai_batch import settings
from openai_batch.errors import ApiError, BatchError, quoted
from openai_batch.jsondepth import too_deep
from openai_batch.local import files
from openai_batch.requestfile.endpoints import ENDPOINTS, versioned
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.requestfile.read import BOM, RequestLine, read_lines
from openai_batch.results import answers
from openai_batch.results.answers import is_success
from openai_batch.service import chat_runner, connection
from openai_batch.service.chat_runner import Request, RunSummary
from openai_batch.service.pacing import Limits, RateLimitedTooLong

SUPPORTED_URLS = ENDPOINTS
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 6
DEFAULT_TIMEOUT = 600.0
DEFAULT_GIVE_UP_AFTER = 600.0  # seconds of nothing but 429s before a run stops
_OUTPUT_TOKEN_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def default_output_path(requests_file: Path) -> Path:
    """`data/batch.jsonl` -> `data/batch.responses.jsonl`: beside the input, named after it."""
    name = requests_file.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else requests_file.stem
    return requests_file.with_name(f"{stem}.responses.jsonl")


# --------------------------------------------------------------------------- reading


def scan_requests(path: Path) -> list[str]:
    """Check every line of a request file before the first paid call; the custom_ids in order."""
    check_request_path(path)
    ids: list[str] = []
    seen: dict[str, int] = {}
    for request in iter_requests(path):
        if request.custom_id in seen:
            raise BatchError(
                f"{path}:{request.line}: custom_id {quoted(request.custom_id)} repeats line "
                f"{seen[request.custom_id]}",
                hint="every custom_id must be unique, or answers cannot be matched to rows",
            )
        seen[request.custom_id] = request.line
        ids.append(request.custom_id)
    if not ids:
        raise BatchError(f"{path} has no requests")
    return ids


def iter_requests(path: Path) -> Iterator[Request]:
    """The request lines of a Batch input file, checked for the fields a call needs."""
    for line in read_lines(path):
        if not line.empty:
            yield _parse_request(path, line)


def _parse_request(path: Path, line: RequestLine) -> Request:
    number = line.number
    where = f"{path}:{number}"
    problem = BOM if line.bom else line.problem
    if problem:
        raise BatchError(f"{where}: {problem}")
    data = line.request
    if data is None:
        raise BatchError(f"{where}: a request line must be a JSON object")
    custom_id, body = data.get("custom_id"), data.get("body")
    url = versioned(data.get("url"))
    if not isinstance(custom_id, str) or not custom_id:
        raise BatchError(f"{where}: missing custom_id")
    if data.get("method", "POST") != "POST":
        raise BatchError(f"{where}: method must be POST, not {quoted(data.get('method'))}")
    if url not in SUPPORTED_URLS:
        raise BatchError(
            f"{where}: unsupported url {quoted(url)}",
            hint=f"use one of {', '.join(SUPPORTED_URLS)}",
        )
    if not isinstance(body, dict):
        raise BatchError(f"{where}: body must be a JSON object")
    if body.get("stream"):
        raise BatchError(f"{where}: streaming requests cannot be run here (body.stream is true)")
    allowance = next((v for k in _OUTPUT_TOKEN_KEYS if isinstance(v := body.get(k), int)), 0)
    text = line.raw.decode("utf-8")
    return Request(number, custom_id, url, body, len(text) / 4 + allowance)


def load_answered(output: Path, known_ids: set[str], *, retry_failed: bool = True) -> set[str]:
    """custom_ids already answered in `output`; rewrites it without lines that will be redone.

    Keeps the first 200 answer of each custom_id (and, with retry_failed=False, the first
    failure); drops the rest and a trailing line cut short by a crash, atomically. Streams the
    file, so a large output is never held in memory.
    """
    if not output.exists():
        return set()
    done: set[str] = set()
    keep: set[int] = set()  # line numbers to keep
    dirty = False
    for number, chunk in enumerate(_lines(output), start=1):
        if not chunk.strip():
            dirty = True
            continue
        whole = chunk.endswith(b"\n")  # else the last line, cut short or missing its newline
        dirty = dirty or not whole
        try:
            record = answers.parse_line(chunk)  # as the join reads it; never too deep (jsondepth)
        except answers.MalformedResult as exc:
            if not whole and not too_deep(chunk):  # cut short by a crash: asked again
                continue
            raise _not_results(output, number, f" ({exc})") from None
        custom_id, ok = _answer_status(output, number, record, known_ids)
        if custom_id in done or (not ok and retry_failed):
            dirty = True
            continue
        done.add(custom_id)
        keep.add(number)
    if dirty:
        with files.atomic_write(output, "wb") as fh:
            for number, chunk in enumerate(_lines(output), start=1):
                if number in keep:
                    fh.write(chunk if chunk.endswith(b"\n") else chunk + b"\n")
    return done


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from fh


def _not_results(output: Path, number: int, why: str = "") -> BatchError:
    return BatchError(
        f"{output}:{number} is not a results line{why}",
        hint="choose another output file with -o; this one is not from chat-complete",
    )


def _answer_status(output: Path, number: int, record: Any, known: set[str]) -> tuple[str, bool]:
    custom_id = record.get("custom_id") if isinstance(record, dict) else None
    if not isinstance(custom_id, str):
        raise _not_results(output, number)
    if custom_id not in known:
        raise BatchError(
            f"{output} has an answer for custom_id {quoted(custom_id)}, which is not in the "
            "request file",
            hint="it holds results of another request file; choose another output with -o",
        )
    return custom_id, is_success(record)


def run_requests(
    requests_file: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    client: Any = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    model: str | None = None,
    retry_failed: bool = True,
    max_rps: float | None = None,
    max_tpm: float | None = None,
    give_up_after: float = DEFAULT_GIVE_UP_AFTER,
    progress: bool | Callable[[int], chat_runner.Progress] = True,
    on_result: Callable[[str, bool], None] | None = None,
    backoff_base: float | None = None,
    on_note: Callable[[str], object] | None = None,
) -> RunSummary:
    """Answer every request of `requests_file` not yet answered in `output` (see module doc).

    `client` overrides the client built from `base_url`/`api_key_env`: an `openai.AsyncOpenAI`
    (its own retries apply to everything but 429s, which the pacer handles); `model` replaces
    every body's model (to run a file made for gpt-4o on a local model). `on_result(custom_id,
    ok)` is called per answer. `backoff_base` is accepted for compatibility and unused: the
    SDK's backoff applies. `progress`: True draws openai-batch's bar (ui/progress.py), False
    none, or a function of the number of requests to answer that returns a tqdm-like bar;
    `on_note` hears notes during the run (an interrupt saving answers on their way).
    """
    del backoff_base
    path = Path(requests_file)
    if concurrency < 1:
        raise BatchError("concurrency must be at least 1")
    if max_retries < 0:
        raise BatchError("max_retries cannot be negative")
    for name, value in (("max_rps", max_rps), ("max_tpm", max_tpm)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise BatchError(f"--{name.replace('_', '-')} must be a positive number, not {value}")
    if not give_up_after > 0:
        raise BatchError("--give-up-after must be a positive number of seconds")
    out = Path(output) if output is not None else default_output_path(path)
    _check_output(out, path)
    ids = scan_requests(path)
    limits = Limits(concurrency, max_rps, max_tpm, give_up_after)
    with output_lock(out):
        done = load_answered(out, set(ids), retry_failed=retry_failed)
        summary = RunSummary(path, out, total=len(ids), already_done=len(done))
        pending = len(ids) - len(done)
        if pending == 0:
            return summary
        conn = None
        secrets: tuple[str, ...] = ()
        if client is None:
            client, conn = connection.connect_async(
                base_url=base_url,
                api_key_env=api_key_env,
                timeout=timeout,
                max_retries=max_retries,
                retry_rules=chat_runner.paced,
            )
        if conn is not None:
            secrets = (settings.text(conn.key_variable) or "",)
        how = chat_runner.Settings(
            client, limits, model, secrets, _progress(progress), on_result, on_note or _unheard
        )
        todo = (r for r in iter_requests(path) if r.custom_id not in done)
        fatal = chat_runner.execute(todo, how, out, summary, pending)
    summary.not_run = summary.total - summary.already_done - summary.succeeded - summary.failed
    if fatal is not None:
        raise _fatal_error(fatal.exc, path, conn)
    return summary


def _progress(
    progress: bool | Callable[[int], chat_runner.Progress],
) -> Callable[[int], chat_runner.Progress]:
    if callable(progress):
        return progress
    if not progress:
        return lambda pending: chat_runner.Unseen()

    def bar(pending: int) -> chat_runner.Progress:
        from openai_batch.ui.progress import progress_bar  # ui/ draws; this module never prints

        return progress_bar(total=pending, unit=" req", leave=False)  # type: ignore[no-any-return]

    return bar


def _unheard(text: str) -> None:
    pass


def _check_output(out: Path, requests: Path) -> None:
    """Never over the request file read, nor an input the ledger knows (`output_guard`); the
    output may be an earlier run's output of the same kind, which is resumed."""
    from openai_batch.ledger.store import open_ledger
    from openai_batch.local import output_guard

    with open_ledger() as ledger:
        output_guard.check_output(out, flag="-o", reads=[("request file", requests)], ledger=ledger)


def output_lock(out: Path) -> Any:
    """One run per output file (a second would pay for the same requests again).

    The lock file lives under $OPENAI_BATCH_HOME/locks, named after the output's full path, so
    nothing is left beside the user's files.
    """
    import hashlib

    import filelock

    from openai_batch.ledger.paths import home_dir

    key = hashlib.sha256(str(out.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    folder = home_dir() / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(
            f"cannot create {folder}: {exc.strerror or exc}",
            hint="set OPENAI_BATCH_HOME to a writable folder",
        ) from None
    lock = filelock.FileLock(folder / f"chat-complete-{key}.lock", timeout=0)

    @contextlib.contextmanager
    def held() -> Iterator[None]:
        try:
            lock.acquire()
        except filelock.Timeout:
            raise BatchError(
                f"another chat-complete is writing {out}",
                hint="wait for it (or stop it) and run this again: it picks up where that stopped",
            ) from None
        try:
            yield
        finally:
            lock.release()

    return held()


def _fatal_error(exc: BaseException, path: Path, conn: Any) -> BatchError:
    from openai_batch.service.failures import translate

    if isinstance(exc, RateLimitedTooLong):
        return ApiError(
            f"the server answered every request with 429 (rate limited) for {exc.seconds:g} "
            f"seconds while running {path.name}; answers received so far are saved",
            hint="run the same command later (it resumes), or raise --give-up-after",
        )
    return translate(exc, f"running {path.name}", conn)


# --------------------------------------------------------------------------- the table


def write_table(
    requests_file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    table: str | os.PathLike[str] | Any,
    *,
    data: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
    on_note: Callable[[str], object] | None = None,
    on_warning: Callable[[str], object] | None = None,
) -> Any:
    """The same join as `get-batch-results --csv/--table`, over a chat-complete results file.

    `table` is a tablewriter.TableTarget, or a path written as CSV. Rows come from `data`, or
    from the table make-batch-file recorded for this request file in the ledger; without
    either, one row per custom_id. Returns join.CsvSummary; `on_note` and `on_warning` hear
    the join plan's notes (which rows and order it uses) and warnings (unreadable result lines).
    """
    from openai_batch.ledger.digests import digest_of
    from openai_batch.ledger.store import open_ledger
    from openai_batch.results import join, joinplan
    from openai_batch.results import merge as results
    from openai_batch.results.outputs import Outputs
    from openai_batch.results.tablewriter import TableTarget

    path = Path(requests_file)
    digest = digest_of(path)
    with open_ledger() as ledger:
        record = ledger.root_request_file(digest, path=path)
    given = Outputs(
        requests=path,
        data=Path(data) if data is not None else None,
        id_column=id_column,
        id_prefix=id_prefix,
    )
    plan = joinplan.plan_join([record] if record is not None else [], given)
    note, warn = on_note or _unheard, on_warning or _unheard
    for text in plan.notes:
        note(text)
    for warning in plan.warnings:
        warn(warning)
    index = results.ResultIndex()
    index.add_file(Path(output), 0)
    for problem in results.problems(index):
        warn(problem)
    try:
        chunks = joinplan.iter_data(plan) if plan.data is not None else None
        target = table if isinstance(table, TableTarget) else TableTarget(Path(table), "csv")
        return join.write_table(
            index,
            target,
            chunks=chunks,
            order=plan.order(),
            keep_row=joinplan.keep_rows(plan),
            schema=join.response_schema(path),
        )
    finally:
        index.close()
