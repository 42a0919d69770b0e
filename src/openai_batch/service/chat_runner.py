"""The engine of `utils chat-complete`: request lines through the SDK's async client, paced.

Every request goes through the official `openai` SDK (its async client over aiohttp, the SDK's
own fast transport), which retries 408/409/5xx, timeouts and dropped connections with its
backoff, honouring `retry-after` and `x-should-retry`. The one thing it lacks is added here: a
429 is not retried by the SDK (that would spend the request's retries and let every request
back off on its own) but handed to the shared pacer (pacing.py), which slows the whole run down
and sends the request again; 429s never count against a request's retries.

`max_concurrency` workers each take the next request, wait for the pacer, call, and write the
answer as a Batch API output line through one appender (fsynced regularly).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openai_batch.errors import quoted
from openai_batch.jsondepth import MAX_DEPTH, too_deep
from openai_batch.service.pacing import Limits, Pacer, RateLimitedTooLong
from openai_batch.service.redaction import redact

FSYNC_EVERY_LINES = 100
FSYNC_EVERY_SECONDS = 2.0
STATUS_EVERY_SECONDS = 0.5
# a reply's body is written two levels down in its result line (response, body): at most this
# deep, so that every reader of results, the json module's too, reads the line (jsondepth)
BODY_DEPTH = MAX_DEPTH - 2


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
    rate_limited: int = 0  # 429s received (each request was sent again)
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
    tokens: float  # what a rate limiter counts: characters / 4 plus the output allowance


# --------------------------------------------------------------------------- the client


@functools.cache
def paced(base: type) -> type:
    """`base` (AsyncOpenAI or AsyncAzureOpenAI) whose retries leave 429s to the pacer."""

    class Paced(base):  # type: ignore[valid-type,misc]
        _urls: dict[str, Any]

        def _should_retry(self, response: Any) -> bool:
            # 501: the server has no such endpoint, and will not have it on a retry either.
            return response.status_code not in (429, 501) and super()._should_retry(response)

        def _prepare_url(self, url: str) -> Any:
            # A run posts to a handful of paths; parsing each URL again costs 0.1 ms a request.
            urls = self.__dict__.setdefault("_urls", {})
            merged = urls.get(url)
            if merged is None:
                merged = urls[url] = super()._prepare_url(url)
            return merged

    Paced.__name__ = Paced.__qualname__ = f"Paced{base.__name__}"
    return Paced


# --------------------------------------------------------------------------- result lines


@dataclass
class Outcome:
    custom_id: str
    line: bytes
    ok: bool
    reason: str = ""


class Fatal(Exception):
    """Stops the whole run: every further request would fail the same way."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def result_line(custom_id: str, response: dict[str, Any] | None, error: Any = None) -> bytes:
    line = {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return (json.dumps(line) + "\n").encode("utf-8")


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    """Every string in a server's error body, with keys and bearer tokens removed."""
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secrets) for v in value]
    return value


def _json_body(response: Any) -> tuple[Any, str]:
    """A reply's JSON value and "", else None and why it has none: too deep (BODY_DEPTH),
    never handed to the json module, which recurses near the interpreter's limit; not JSON."""
    if too_deep(response.content, BODY_DEPTH):
        too = f"more than {BODY_DEPTH} lists or objects inside each other"
        return None, f"the server's answer is nested too deeply to read ({too})"
    try:
        return response.json(), ""
    except ValueError:
        return None, ""


def _success(custom_id: str, response: Any, secrets: tuple[str, ...]) -> Outcome:
    body, why = _json_body(response)
    if not isinstance(body, dict):
        snippet = quoted(redact(response.text or "", *secrets), 200)
        error = {
            "code": "invalid_response",
            "message": why or f"the server's answer is not JSON: {snippet}",
        }
        return Outcome(custom_id, result_line(custom_id, None, error), False, "invalid_response")
    request_id = response.headers.get("x-request-id")
    resp = {"status_code": response.status_code, "request_id": request_id, "body": body}
    return Outcome(custom_id, result_line(custom_id, resp), True)


def _failure(custom_id: str, exc: Any, secrets: tuple[str, ...]) -> Outcome:
    """A final HTTP error, written like a line of the Batch API's error file (redacted)."""
    body, why = _json_body(exc.response)
    if not (isinstance(body, dict) and "error" in body):
        text = why or (exc.response.text or "").strip()[:2000] or f"HTTP {exc.status_code}"
        body = {"error": {"message": text, "type": "server_error", "param": None, "code": None}}
    body = _redacted(body, secrets)
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    response = {"status_code": exc.status_code, "request_id": exc.request_id, "body": body}
    reason = f"HTTP {exc.status_code}: {quoted(message or '', 200)}"
    return Outcome(custom_id, result_line(custom_id, response), False, reason)


def _unreachable(exc: BaseException) -> bool:
    """A connect that failed (refused, unknown host), which aiohttp reports as a timeout."""
    import aiohttp
    import httpx2

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorError | httpx2.ConnectError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --------------------------------------------------------------------------- writing


class Appender:
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


# --------------------------------------------------------------------------- the run


class Progress(Protocol):
    """What a run tells while it runs: a tqdm bar has these (ui/progress.py)."""

    def update(self, n: float | None = 1) -> object: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool | None = True) -> object: ...
    def clear(self) -> object: ...
    def close(self) -> object: ...


class Unseen:
    """Progress nobody watches."""

    def update(self, n: float | None = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: Any = None, refresh: bool | None = True) -> None:
        pass

    def clear(self) -> None:
        pass

    def close(self) -> None:
        pass


def _unheard(text: str) -> None:
    pass


@dataclass
class Settings:
    """How to call: the client, the model override, the limits, and what to redact; and who
    hears of the run (`progress(pending)` makes the bar, `note` hears notes): this module
    never prints."""

    client: Any
    limits: Limits
    model: str | None = None
    secrets: tuple[str, ...] = ()
    progress: Callable[[int], Progress] = lambda pending: Unseen()
    on_result: Callable[[str, bool], None] | None = None
    note: Callable[[str], object] = _unheard


@dataclass
class _Run:
    settings: Settings
    todo: Iterator[Request]
    summary: RunSummary
    writer: Appender
    bar: Progress
    pacer: Pacer
    fatal: Fatal | None = None
    stop: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    calling: set[asyncio.Task[Any] | None] = field(default_factory=set)
    shown_at: float = 0.0

    def halt(self, *, interrupted: bool = False) -> None:
        """Send nothing more; requests already sent finish and are written (they are paid for)."""
        if interrupted and not self.summary.interrupted:
            self.summary.interrupted = True
            busy = len(self.calling)
            if busy:
                self.bar.clear()
                self.settings.note(
                    f"interrupted: saving the {busy} answers on their way "
                    "(Ctrl-C again to abandon them)"
                )
        self.stop = True
        for task in self.tasks:
            if task not in self.calling:
                task.cancel()

    def settle(self, outcome: Outcome) -> None:
        summary = self.summary
        self.writer.write(outcome.line)
        if outcome.ok:
            summary.succeeded += 1
        else:
            summary.failed += 1
            summary.failures[outcome.custom_id] = outcome.reason
        self.bar.update(1)
        now = time.monotonic()
        if now - self.shown_at >= STATUS_EVERY_SECONDS:
            self.shown_at = now
            shown = {"ok": summary.succeeded, "failed": summary.failed, **self.pacer.status()}
            self.bar.set_postfix(ordered_dict=shown, refresh=False)
        if self.settings.on_result is not None:
            try:
                self.settings.on_result(outcome.custom_id, outcome.ok)
            except KeyboardInterrupt:
                self.halt(interrupted=True)


async def _answer(run: _Run, request: Request) -> Outcome | None:
    """One request until it has an answer; 429s go back to the pacer, not to the retries."""
    import httpx2
    import openai

    from openai_batch.service.reach import route_missing

    settings, pacer = run.settings, run.pacer
    model = settings.model
    body = dict(request.body, model=model) if model else request.body
    path = request.url.removeprefix("/v1")
    me = asyncio.current_task()
    while True:
        ticket = await pacer.admit(request.tokens)
        if run.stop:
            pacer.release()
            return None
        run.calling.add(me)
        try:
            response = await settings.client.post(path, cast_to=httpx2.Response, body=body)
        except openai.RateLimitError as exc:
            if exc.code == "insufficient_quota":
                raise Fatal(exc) from None
            try:
                pacer.refused(exc.response.headers, ticket)
            except RateLimitedTooLong as too_long:
                raise Fatal(too_long) from None
            continue
        except openai.AuthenticationError as exc:
            raise Fatal(exc) from None
        except openai.APIStatusError as exc:
            pacer.answered(exc.response.headers, ticket)
            if route_missing(exc):  # every request would get the same: wrong URL or endpoint
                raise Fatal(exc) from None
            return _failure(request.custom_id, exc, settings.secrets)
        except openai.APITimeoutError as exc:
            if _unreachable(exc):
                raise Fatal(exc) from None  # failures.translate names what refused
            pacer.answered({}, ticket)
            error = {"code": "timeout", "message": "the request timed out after retries"}
            return Outcome(
                request.custom_id, result_line(request.custom_id, None, error), False, "timeout"
            )
        except openai.APIConnectionError as exc:
            raise Fatal(exc) from None
        finally:
            run.calling.discard(me)
            pacer.release()
        pacer.answered(response.headers, ticket)
        return _success(request.custom_id, response, settings.secrets)


async def _worker(run: _Run) -> None:
    while not run.stop:
        request = next(run.todo, None)
        if request is None:
            return
        try:
            outcome = await _answer(run, request)
        except Fatal as fatal:
            run.fatal = run.fatal or fatal
            run.halt()
            return
        if outcome is not None:
            run.settle(outcome)


async def _main(run: _Run, workers: int) -> None:
    run.tasks = [asyncio.create_task(_worker(run)) for _ in range(workers)]
    try:
        try:
            await asyncio.wait(run.tasks)
        except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task
            run.halt(interrupted=True)
            await asyncio.wait(run.tasks)
            raise
    finally:
        with contextlib.suppress(Exception):
            await run.settings.client.close()
    for task in run.tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug: show it


def execute(
    todo: Iterator[Request], settings: Settings, out: Path, summary: RunSummary, pending: int
) -> Fatal | None:
    """Answer `todo`, appending to `out` and counting into `summary`; the error that stopped it."""
    bar = settings.progress(pending)
    run = _Run(settings, todo, summary, Appender(out), bar, Pacer(settings.limits))
    try:
        _run_to_end(_main(run, min(settings.limits.concurrency, pending)))
    except KeyboardInterrupt:  # after the answers on their way were saved, or a second Ctrl-C
        summary.interrupted = True
    finally:
        run.writer.close()
        bar.close()
    summary.rate_limited = run.pacer.rate_limited
    return run.fatal


def _run_to_end(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, also from code already inside an event loop (a Jupyter notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main)
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="chat-complete") as pool:
        pool.submit(asyncio.run, main).result()
