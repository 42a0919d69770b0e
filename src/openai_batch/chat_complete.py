"""Run a Batch API request file through the normal, synchronous API, writing Batch-format results.

For small or urgent jobs, or a local OpenAI-compatible server (vLLM, Ollama, llama.cpp): every
request line is POSTed to its `url` (relative to the client's base URL, so `/v1/chat/completions`
goes to `<base_url>/chat/completions`), several at a time, and each answer is appended to the
output file as a Batch API output line:

    {"id": "batch_req_...", "custom_id": ..., "response": {"status_code", "request_id", "body"},
     "error": null}

A request that still fails after its retries is written the way the Batch API writes its error
file: a non-200 `response` with the server's error body, or `"response": null` with an `error`
object (`{"code": "timeout" | "invalid_response", "message": ...}`). So the same CSV join works
on these files as on a batch's output.

Resuming: answers are appended as whole lines and fsynced regularly. Running again with the same
output file skips every custom_id that already has a 200 answer and retries the rest; failure
lines from the earlier run are dropped first (as is a trailing line cut short by a crash), so
the file never holds two lines for one custom_id.

Retries: 408, 409, 429, 5xx, timeouts and dropped connections are retried with exponential
backoff (honouring `retry-after-ms` / `retry-after` and `x-should-retry`); a 429 pauses every
worker, not just the one that saw it. A rejected key (401), exhausted quota
(429 `insufficient_quota`) or an unreachable server stops the run with an error, after writing
the answers already received; nothing is written for the requests that were not answered.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import console, files
from .errors import ApiError, BatchError

if TYPE_CHECKING:
    import openai

SUPPORTED_URLS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/completions",
    "/v1/moderations",
)
RETRY_STATUSES = frozenset({408, 409, 429})
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 6
DEFAULT_TIMEOUT = 600.0
MAX_BACKOFF = 60.0  # seconds, for our own exponential backoff
MAX_RETRY_AFTER = 600.0  # longest server-requested wait we honour
FSYNC_EVERY_LINES = 100
FSYNC_EVERY_SECONDS = 2.0
LOCAL_KEY = "sk-no-key-required"  # local servers without auth still need a non-empty key


@dataclass
class RunSummary:
    """What a run did; `complete` is True when every request has a 200 answer."""

    requests_file: Path
    output: Path
    total: int
    already_done: int = 0
    succeeded: int = 0
    failed: int = 0
    not_run: int = 0
    interrupted: bool = False
    failures: dict[str, str] = field(default_factory=dict)  # custom_id -> short reason

    @property
    def complete(self) -> bool:
        return self.already_done + self.succeeded == self.total

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests_file"] = str(self.requests_file)
        data["output"] = str(self.output)
        data["complete"] = self.complete
        return data


@dataclass(frozen=True)
class Request:
    line: int
    custom_id: str
    url: str
    body: dict[str, Any]


class _Fatal(Exception):
    """Stops the whole run: every further request would fail the same way."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def default_output_path(requests_file: Path) -> Path:
    """`data/batch.jsonl` -> `data/batch.responses.jsonl`: beside the input, named after it."""
    name = requests_file.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else requests_file.stem
    return requests_file.with_name(f"{stem}.responses.jsonl")


# --------------------------------------------------------------------------- reading


def scan_requests(path: Path) -> list[str]:
    """Check every line of a request file before the first paid call; the custom_ids in order."""
    if not path.is_file():
        raise BatchError(f"no such request file: {path}")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for request in iter_requests(path):
        if request.custom_id in seen:
            raise BatchError(
                f"{path}:{request.line}: custom_id {request.custom_id!r} repeats line "
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
    with open(path, encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if text.strip():
                yield _parse_request(path, number, text)


def _parse_request(path: Path, number: int, text: str) -> Request:
    where = f"{path}:{number}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BatchError(f"{where}: a request line must be a JSON object")
    custom_id, url, body = data.get("custom_id"), data.get("url"), data.get("body")
    if not isinstance(custom_id, str) or not custom_id:
        raise BatchError(f"{where}: missing custom_id")
    if data.get("method", "POST") != "POST":
        raise BatchError(f"{where}: method must be POST, not {data.get('method')!r}")
    if url not in SUPPORTED_URLS:
        raise BatchError(
            f"{where}: unsupported url {url!r}", hint=f"use one of {', '.join(SUPPORTED_URLS)}"
        )
    if not isinstance(body, dict):
        raise BatchError(f"{where}: body must be a JSON object")
    if body.get("stream"):
        raise BatchError(f"{where}: streaming requests cannot be run here (body.stream is true)")
    return Request(number, custom_id, url, body)


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
        if not chunk.endswith(b"\n"):  # the last line, cut short, or only missing its newline
            dirty = True
            try:
                json.loads(chunk)
            except ValueError:
                continue
        custom_id, ok = _answer_status(output, number, chunk, known_ids)
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


def _answer_status(output: Path, number: int, chunk: bytes, known: set[str]) -> tuple[str, bool]:
    try:
        record = json.loads(chunk)
        custom_id = record["custom_id"]
    except (ValueError, KeyError, TypeError):
        raise BatchError(
            f"{output}:{number} is not a results line",
            hint="choose another output file with -o; this one is not from chat-complete",
        ) from None
    if custom_id not in known:
        raise BatchError(
            f"{output} has an answer for custom_id {custom_id!r}, which is not in the request file",
            hint="it holds results of another request file; choose another output with -o",
        )
    response = record.get("response")
    ok = (
        isinstance(response, dict)
        and response.get("status_code") == 200
        and not record.get("error")
    )
    return custom_id, ok


# --------------------------------------------------------------------------- the client


def make_client(
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[openai.OpenAI, Any]:
    """A client with the SDK's retries off (we retry ourselves) and its api.Connection.

    The default (no base URL, key from OPENAI_API_KEY) goes through `api.connect`, so `.env`,
    organization/project and Azure settings apply. A base URL or another key variable builds a
    plain client: a local server without auth needs no key at all.
    """
    from . import api

    api.load_dotenv_file()
    env_base = os.environ.get("OPENAI_BASE_URL", "").strip() or None
    configured = any(
        os.environ.get(v, "").strip() for v in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")
    )
    if (
        base_url is None
        and api_key_env in (None, "OPENAI_API_KEY")
        and (configured or not env_base)
    ):
        conn = api.connect(max_retries=0)
        return conn.client.with_options(timeout=timeout), conn
    import openai

    url = base_url or env_base
    variable = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(variable, "").strip()
    if not key:
        if api_key_env not in (None, "OPENAI_API_KEY") or url is None or "api.openai.com" in url:
            raise ApiError(
                f"no API key: {variable} is not set",
                hint=f"export {variable}=... (a local server without auth needs no key)",
            )
        key = LOCAL_KEY
    try:
        client = openai.OpenAI(api_key=key, base_url=url, max_retries=0, timeout=timeout)
    except openai.OpenAIError as exc:
        raise ApiError(f"cannot configure the OpenAI client: {api.redact(str(exc))}") from None
    service = str(client.base_url).rstrip("/")
    return client, api.Connection(client, service, azure=False, key_variable=variable)


# --------------------------------------------------------------------------- one request


class _Pacer:
    """Shared pause: after a 429 every worker waits, so the server sees the whole pool back off."""

    def __init__(self, stop: threading.Event) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self.stop = stop

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self, seconds: float = 0.0) -> bool:
        """Sleep `seconds` and through any shared pause; False when the run is stopping."""
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                until = max(deadline, self._resume_at)
            left = until - time.monotonic()
            if left <= 0:
                return not self.stop.is_set()
            if self.stop.wait(min(left, 0.5)):
                return False


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, then `retry-after` (secs or date)."""
    if headers is None:
        return None
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None  # unreadable: our own backoff applies


def _backoff(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: base, 2*base, 4*base ... capped at MAX_BACKOFF."""
    return min(MAX_BACKOFF, base * 2**attempt) * (0.5 + random.random() / 2)


def _should_retry(status: int, headers: Any) -> bool:
    flag = headers.get("x-should-retry") if headers is not None else None
    if flag in ("true", "false"):
        return flag == "true"
    return status in RETRY_STATUSES or status >= 500


def _result_line(custom_id: str, response: dict[str, Any] | None, error: Any = None) -> bytes:
    line = {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return (json.dumps(line) + "\n").encode("utf-8")


def _error_body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        return body
    text = (response.text or "").strip()[:2000] or f"HTTP {response.status_code}"
    return {"error": {"message": text, "type": "server_error", "param": None, "code": None}}


@dataclass
class _Outcome:
    custom_id: str
    line: bytes
    ok: bool
    reason: str = ""


def _call(
    client: openai.OpenAI,
    request: Request,
    *,
    model: str | None,
    max_retries: int,
    backoff_base: float,
    pacer: _Pacer,
) -> _Outcome | None:
    """One request with retries -> its results line; None when the run stopped meanwhile."""
    import httpx2
    import openai

    body = dict(request.body, model=model) if model else request.body
    path = request.url.removeprefix("/v1")
    for attempt in range(max_retries + 1):
        if not pacer.wait():
            return None
        last = attempt == max_retries
        wait_for = _backoff(attempt, backoff_base)
        try:
            response = client.post(
                path, cast_to=httpx2.Response, body=body, options={"max_retries": 0}
            )
        except openai.APIStatusError as exc:
            if exc.status_code == 401 or exc.code == "insufficient_quota":
                pacer.stop.set()  # before any other worker sends its next request
                raise _Fatal(exc) from None
            headers = exc.response.headers
            if last or not _should_retry(exc.status_code, headers):
                return _failure(request.custom_id, exc)
            delay = _retry_after(headers)
            if delay is not None:
                wait_for = min(delay, MAX_RETRY_AFTER)
            if exc.status_code == 429:
                pacer.pause(wait_for)  # everyone waits; the loop's pacer.wait() sleeps
                continue
        except openai.APITimeoutError:
            if last:
                error = {"code": "timeout", "message": "the request timed out after retries"}
                line = _result_line(request.custom_id, None, error)
                return _Outcome(request.custom_id, line, False, "timeout")
        except openai.APIConnectionError as exc:
            if last:
                pacer.stop.set()
                raise _Fatal(exc) from None
        else:
            return _success(request.custom_id, response)
        if not pacer.wait(wait_for):
            return None
    raise AssertionError("unreachable")  # pragma: no cover


def _failure(custom_id: str, exc: Any) -> _Outcome:
    """A final HTTP error, written like a line of the Batch API's error file."""
    body = _error_body(exc.response)
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    response = {"status_code": exc.status_code, "request_id": exc.request_id, "body": body}
    reason = f"HTTP {exc.status_code}: {message or ''}"[:200]
    return _Outcome(custom_id, _result_line(custom_id, response), False, reason)


def _success(custom_id: str, response: Any) -> _Outcome:
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        snippet = (response.text or "")[:200]
        error = {
            "code": "invalid_response",
            "message": f"the server's answer is not JSON: {snippet}",
        }
        return _Outcome(custom_id, _result_line(custom_id, None, error), False, "invalid_response")
    resp = {"status_code": response.status_code, "request_id": request_id, "body": body}
    return _Outcome(custom_id, _result_line(custom_id, resp), True)


# --------------------------------------------------------------------------- the run


class _Appender:
    """Appends whole lines (one write each) and fsyncs every N lines or T seconds."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh: Any = None  # opened on the first answer: a run that gets none leaves no file
        self._pending = 0
        self._synced_at = time.monotonic()

    def write(self, line: bytes) -> None:
        if self._fh is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self._path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._fh.write(line)
        self._pending += 1
        now = time.monotonic()
        if self._pending >= FSYNC_EVERY_LINES or now - self._synced_at >= FSYNC_EVERY_SECONDS:
            self.sync()

    def sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
        self._pending = 0
        self._synced_at = time.monotonic()

    def close(self) -> None:
        if self._fh is None:
            return
        try:
            self.sync()
        finally:
            self._fh.close()


def run_requests(
    requests_file: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    client: openai.OpenAI | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    model: str | None = None,
    retry_failed: bool = True,
    backoff_base: float = 1.0,
    progress: bool = True,
    on_result: Callable[[str, bool], None] | None = None,
) -> RunSummary:
    """Answer every request of `requests_file` not yet answered in `output` (see module doc).

    `client` overrides the client built from `base_url`/`api_key_env` (its own retries should be
    off: `client.with_options(max_retries=0)`); `model` replaces every body's model (to run a
    file made for gpt-4o on a local model). `on_result(custom_id, ok)` is called per answer.
    """
    path = Path(requests_file)
    if concurrency < 1:
        raise BatchError("concurrency must be at least 1")
    if max_retries < 0:
        raise BatchError("max_retries cannot be negative")
    out = Path(output) if output is not None else default_output_path(path)
    if out.resolve() == path.resolve():
        raise BatchError("the output file cannot be the request file", hint="choose another -o")
    ids = scan_requests(path)
    with _exclusive(out):
        return _run_locked(
            path, out, ids, client=client, base_url=base_url, api_key_env=api_key_env,
            concurrency=concurrency, max_retries=max_retries, timeout=timeout, model=model,
            retry_failed=retry_failed, backoff_base=backoff_base, progress=progress,
            on_result=on_result,
        )  # fmt: skip


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One run per output file: a second one would pay for the same requests again."""
    import fcntl

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(
                f"another chat-complete is writing {out}",
                hint="wait for it (or stop it) and run this again: it picks up where that stopped",
            ) from None
        yield


def _run_locked(
    path: Path,
    out: Path,
    ids: list[str],
    *,
    client: Any,
    base_url: str | None,
    api_key_env: str | None,
    concurrency: int,
    max_retries: int,
    timeout: float,
    model: str | None,
    retry_failed: bool,
    backoff_base: float,
    progress: bool,
    on_result: Callable[[str, bool], None] | None,
) -> RunSummary:
    done = load_answered(out, set(ids), retry_failed=retry_failed)
    summary = RunSummary(path, out, total=len(ids), already_done=len(done))
    pending = len(ids) - len(done)
    if pending == 0:
        return summary
    conn = None
    if client is None:
        client, conn = make_client(base_url=base_url, api_key_env=api_key_env, timeout=timeout)
    todo = (r for r in iter_requests(path) if r.custom_id not in done)
    call = _make_caller(client, model=model, max_retries=max_retries, backoff_base=backoff_base)
    fatal = _execute(todo, call, out, summary, concurrency, pending, progress, on_result)
    summary.not_run = summary.total - summary.already_done - summary.succeeded - summary.failed
    if fatal is not None:
        from . import api

        raise api.translate(fatal.exc, f"running {path.name}", conn) from None
    return summary


def _make_caller(
    client: openai.OpenAI, *, model: str | None, max_retries: int, backoff_base: float
) -> Callable[[Request, _Pacer], _Outcome | None]:
    def call(request: Request, pacer: _Pacer) -> _Outcome | None:
        return _call(
            client,
            request,
            model=model,
            max_retries=max_retries,
            backoff_base=backoff_base,
            pacer=pacer,
        )

    return call


def _execute(
    todo: Iterator[Request],
    call: Callable[[Request, _Pacer], _Outcome | None],
    out: Path,
    summary: RunSummary,
    concurrency: int,
    pending: int,
    progress: bool,
    on_result: Callable[[str, bool], None] | None,
) -> _Fatal | None:
    """Feed requests to a thread pool, at most 2x concurrency queued; write answers as they come."""
    from tqdm import tqdm

    stop = threading.Event()
    pacer = _Pacer(stop)
    fatal: _Fatal | None = None
    writer = _Appender(out)
    bar = tqdm(total=pending, unit="req", disable=None if progress else True, leave=False)
    inflight: set[Future[_Outcome | None]] = set()

    def settle(futures: set[Future[_Outcome | None]]) -> None:
        nonlocal fatal
        for future in futures:
            try:
                outcome = future.result()
            except _Fatal as exc:
                fatal = fatal or exc
                stop.set()
                continue
            if outcome is None:
                continue
            writer.write(outcome.line)
            if outcome.ok:
                summary.succeeded += 1
            else:
                summary.failed += 1
                summary.failures[outcome.custom_id] = outcome.reason
            bar.update(1)
            bar.set_postfix(ok=summary.succeeded, failed=summary.failed, refresh=False)
            if on_result is not None:
                on_result(outcome.custom_id, outcome.ok)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chat-complete")
    try:
        for request in todo:
            if stop.is_set():
                break
            while len(inflight) >= 2 * concurrency:
                finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                settle(finished)
            inflight.add(pool.submit(call, request, pacer))
        while inflight:
            finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            settle(finished)
    except KeyboardInterrupt:
        # Stop retry sleeps; requests already sent finish and are written (they are paid for).
        stop.set()
        summary.interrupted = True
        running = {f for f in inflight if not f.cancel()}
        if running:
            bar.clear()
            console.note(
                f"interrupted: saving the {len(running)} answers on their way "
                "(Ctrl-C again to abandon them)"
            )
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C abandons them
            settle(running)
    finally:
        pool.shutdown(wait=not stop.is_set(), cancel_futures=True)
        writer.close()
        bar.close()
    return fatal


# --------------------------------------------------------------------------- the table


def write_table(
    requests_file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    table: str | os.PathLike[str] | Any,
    *,
    data: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
    id_prefix: str | None = None,
) -> Any:
    """The same join as `get-batch-results --csv/--table`, over a chat-complete results file.

    `table` is a tablewriter.TableTarget, or a path written as CSV. Rows come from `data`, or
    from the table make-batch-file recorded for this request file in the ledger; without
    either, one row per custom_id. Returns join.CsvSummary.
    """
    from . import join, lifecycle, results
    from .digests import digest_of
    from .ledger import open_ledger
    from .tablewriter import TableTarget

    path = Path(requests_file)
    digest = digest_of(path)
    with open_ledger() as ledger:
        record = ledger.root_request_file(digest, path=path)
    plan = lifecycle.plan_join(
        [record] if record is not None else [],
        requests=path,
        data=Path(data) if data is not None else None,
        id_column=id_column,
        id_prefix=id_prefix,
    )
    for note in plan.notes:
        console.note(note)
    index = results.ResultIndex()
    index.add_file(Path(output), 0)
    results.warn_unreadable(index)
    try:
        chunks = lifecycle.iter_data(plan) if plan.data is not None else None
        target = table if isinstance(table, TableTarget) else TableTarget(Path(table), "csv")
        return join.write_table(
            index,
            target,
            chunks=chunks,
            order=plan.order(),
            keep_row=lifecycle.keep_rows(plan),
            schema=join.response_schema(path),
        )
    finally:
        index.close()
