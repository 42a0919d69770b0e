"""What make-batch-file checks on the files it has just written, at a cost that does not grow
with the rows: every line shares the template's structure, so a uniform sample of lines is
validated against the API's request types and tokenized for the cost line.
"""

from __future__ import annotations

import contextlib
import pickle
import random
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.requestfile.endpoints import CHAT
from openai_batch.requestfile.read import RequestLine, parse_line

if TYPE_CHECKING:
    from openai_batch.estimate.options import EstimateOptions

SAMPLE = 500  # lines read when a job has more; all of them otherwise
CHILD_PROCESS_BYTES = 1 << 20  # data files from this size are reviewed in a child process


def warm_up(model: str | None = None, data: Path | None = None) -> Warmup:
    """Load the request types and the tokenizer in the background while rows render.

    Both are fixed costs (a few tenths of a second from this machine's cache, `cache.py`; about a
    second the first time, importing the SDK) that would otherwise come after the last row. They
    are Python work holding the GIL, which starves rendering's many short pyarrow calls and the
    writer thread; so for a large `data` file they load in a child process (`Warmup.child`, to
    be handed to the renderer as `MakeOptions.checker` and to `review_files`). Otherwise they
    load in a thread of this process. Either way the caller must `close()` the handle on every
    path, errors included: a thread still importing while the interpreter shuts down crashes it.
    """
    warm = Warmup()
    warm.start(model, data)
    return warm


@dataclass
class Warmup:
    """The background loading `warm_up` started: a child process or a thread of this one
    (neither until `start`, so a command can open its inputs first and fail fast)."""

    child: ReviewProcess | None = None
    thread: threading.Thread | None = None

    def start(self, model: str | None = None, data: Path | None = None) -> None:
        from openai_batch.estimate import tokens

        encoding = tokens.encoding_name_for_model(model)[0]
        if data is not None and _large(data) and not tokens.loaded():
            self.child = ReviewProcess.start(encoding)
            if self.child is not None:
                return
        self.thread = threading.Thread(
            target=_load_quietly, args=(encoding,), name="openai-batch-warm-up"
        )
        self.thread.start()

    def close(self) -> None:
        """Stop the child, or wait for the thread (it is importing; it cannot be stopped)."""
        if self.child is not None:
            self.child.close()
        if self.thread is not None:
            self.thread.join()

    def abandon(self) -> None:
        """The command is ending on an error or Ctrl-C: stop the child without waiting for an
        answer in flight (see `ReviewProcess.abandon`)."""
        if self.child is not None:
            self.child.abandon()

    def __enter__(self) -> Warmup:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            self.abandon()
        self.close()


class Abandoned(Exception):
    """The child was stopped (`ReviewProcess.abandon`) before it answered: nobody waits for
    the answer any more, so it is not worked out here either."""


def _load_quietly(encoding: str) -> None:
    """`_load` in the background: a failure there is found again, and reported, when the
    review does the same work in the foreground."""
    with contextlib.suppress(Exception):
        _load(encoding)


def _load(encoding: str) -> None:
    from openai_batch.estimate import tokens
    from openai_batch.validate import check as validate

    # a chat request: loads the SDK's types and compiles the spec's rules for chat, the usual
    # endpoint (another one compiles in a few milliseconds when its first line is checked)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    validate.check_line({"custom_id": "x", "method": "POST", "url": CHAT, "body": body}, 0)
    tokens.get_encoding(encoding)


def _large(path: Path) -> bool:
    try:
        return path.stat().st_size >= CHILD_PROCESS_BYTES
    except OSError:
        return False


class ReviewProcess:
    """The first-request check and the review, run in a child process that loaded the SDK's
    types and the tokenizer while this one rendered.

    The child runs the very functions this process would (`firstline.check_first_line`,
    `review_files`) on the same inputs. When it fails in any way, including a check that
    raised, the function runs here instead: the same result, or the same error, either way.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._abandoned = False

    @classmethod
    def start(cls, encoding: str) -> ReviewProcess | None:
        command = [sys.executable, "-m", "openai_batch.requestfile.review", "--child", encoding]
        try:
            proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError:
            return None
        return cls(proc)

    def check_first_line(self, line: str, endpoint: str, template: Any) -> str | None:
        """`firstline.check_first_line`, answered by the child when it can."""
        from openai_batch.requestfile.firstline import check_first_line

        ok, model = self._ask("first", line, endpoint)
        if not ok and self._abandoned:
            raise Abandoned
        return model if ok else check_first_line(line, endpoint, template)

    def review(
        self, files: Sequence[tuple[Path, int]], k: int, options: EstimateOptions | None
    ) -> Any:
        """`review_files(files, k, options=options)` from the child, or None."""
        ok, review = self._ask("review", list(files), k, options)
        if not ok and self._abandoned:
            raise Abandoned
        return review if ok else None

    def _ask(self, *message: Any) -> tuple[bool, Any]:
        with self._lock:
            try:
                assert self._proc.stdin is not None and self._proc.stdout is not None
                pickle.dump(message, self._proc.stdin)
                self._proc.stdin.flush()
                ok, value = pickle.load(self._proc.stdout)  # our own child process wrote it
                return bool(ok), value
            except Exception:  # any failure: the caller does the work in-process instead
                self._stop()
                return False, None

    def close(self) -> None:
        """Stop the child."""
        with self._lock:
            self._stop()

    def abandon(self) -> None:
        """Kill the child now, without the lock a question in flight holds: on Ctrl-C (or an
        error) the command must not wait for its answer, least of all from a child that is
        stuck (stopped, swapping). The question fails with `Abandoned`."""
        self._abandoned = True
        with contextlib.suppress(OSError):
            self._proc.kill()

    def _stop(self) -> None:
        # The child only reads files and answers; it has nothing to finish. Letting it exit on
        # its own would cost the user its interpreter's teardown (a tenth of a second or more).
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._proc.wait()


def _child_main(encoding: str) -> int:
    """The child: load what the checks need, then answer the parent's requests in order."""
    from types import SimpleNamespace

    from openai_batch.requestfile import review  # not __main__: the parent unpickles review.Review
    from openai_batch.requestfile.firstline import check_first_line

    _load(encoding)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            kind, *args = pickle.load(stdin)  # our parent process wrote it
        except EOFError:
            return 0
        try:
            value: Any
            if kind == "first":
                line, endpoint = args
                # the template only words an error, and an error is redone in the parent
                value = check_first_line(line, endpoint, SimpleNamespace(source=None))  # type: ignore[arg-type]
            else:
                files, k, options = args
                value = review.review_files(files, k, options=options)
            answer = (True, value)
        except Exception:
            answer = (False, None)
        pickle.dump(answer, stdout)
        stdout.flush()


@dataclass
class Review:
    problems: list[Any]  # validate.Problem, each naming its file and line
    estimate: Any  # estimate.Estimate
    checked: int
    total: int

    @property
    def errors(self) -> list[Any]:
        return [p for p in self.problems if p.severity == "error"]


def sample_lines(
    files: Sequence[tuple[Path, int]], k: int = SAMPLE, seed: int = 0
) -> list[tuple[Path, RequestLine]]:
    """(file, line as read) for every line when there are at most k, else k random ones (a
    line's number is 0 where it is not known).

    Large files are sampled by seeking to random byte offsets, so this reads about k lines
    whatever the file size; the first line of each file is always included.
    """
    total = sum(count for _, count in files)
    out: list[tuple[Path, RequestLine]] = []
    for path, count in files:
        if total <= k:
            with open(path, "rb") as fh:
                out += [(path, parse_line(line, n)) for n, line in enumerate(fh, start=1)]
            continue
        share = max(1, round(k * count / total))
        out += _seek_sample(path, share, random.Random(seed))
    return out


def _seek_sample(path: Path, k: int, rng: random.Random) -> list[tuple[Path, RequestLine]]:
    size = path.stat().st_size
    picked: list[tuple[Path, RequestLine]] = []
    with open(path, "rb") as fh:
        picked.append((path, parse_line(fh.readline(), 1)))
        for _ in range(k - 1):
            fh.seek(rng.randrange(size))
            fh.readline()  # finish the line we landed in; take the next whole one
            line = fh.readline() or _first_line(fh)
            picked.append((path, parse_line(line)))  # number 0: not known
    return picked


def _first_line(fh: Any) -> bytes:
    fh.seek(0)
    return bytes(fh.readline())


def review_files(
    files: Sequence[tuple[Path, int]],
    k: int = SAMPLE,
    *,
    child: ReviewProcess | None = None,
    options: EstimateOptions | None = None,
) -> Review:
    """Validate and estimate what was written (a sample of it when there is more than k).

    `options` go to `estimate.estimate_lines` (image_size, expected_output, ...); `child`
    (from `warm_up`) does the work in its process."""
    if child is not None and (review := child.review(files, k, options)) is not None:
        return review  # type: ignore[no-any-return]
    from openai_batch.estimate import cost as estimate
    from openai_batch.validate import check as validate

    total = sum(count for _, count in files)
    sample = sample_lines(files, k)
    problems = []
    for path, line in sample:
        # the reader's words for a line with no value (validate_file's, one rule)
        for problem in validate.line_problems(line):
            problem.path = f"{path.name}: {problem.path}" if problem.path else path.name
            problems.append(problem)
    est = estimate.estimate_lines(
        (line.request for _, line in sample if line.request is not None),
        options,
        scale_to=total if len(sample) < total else None,
    )
    return Review(problems, est, len(sample), total)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    raise SystemExit(_child_main(sys.argv[2]))
