"""What make-batch-file checks on the files it has just written, at a cost that does not grow
with the rows: every line shares the template's structure, so a uniform sample of lines is
validated against the API's request types and tokenized for the cost line.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE = 500  # lines read when a job has more; all of them otherwise


def warm_up(model: str | None = None) -> threading.Thread:
    """Load the request types and the tokenizer in the background while rows render.

    Both are fixed costs (about a second, mostly importing the SDK's types) that would otherwise
    come after the last row; rendering spends its time in pyarrow, which releases the GIL.
    """

    def load() -> None:
        from . import tokens, validate

        validate.check_line({"custom_id": "x", "method": "POST", "url": "", "body": {}}, 0)
        tokens.get_encoding(tokens.encoding_name_for_model(model)[0])

    thread = threading.Thread(target=load, name="openai-batch-warm-up", daemon=True)
    thread.start()
    return thread


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
) -> list[tuple[Path, int, dict[str, Any]]]:
    """(file, line number, request) for every line when there are at most k, else k random ones.

    Large files are sampled by seeking to random byte offsets, so this reads about k lines
    whatever the file size; the first line of each file is always included.
    """
    total = sum(count for _, count in files)
    out: list[tuple[Path, int, dict[str, Any]]] = []
    for path, count in files:
        if total <= k:
            with open(path, "rb") as fh:
                out += [(path, n, _parse(line)) for n, line in enumerate(fh, start=1)]
            continue
        share = max(1, round(k * count / total))
        out += _seek_sample(path, share, random.Random(seed))
    return out


def _seek_sample(path: Path, k: int, rng: random.Random) -> list[tuple[Path, int, dict[str, Any]]]:
    size = path.stat().st_size
    picked: list[tuple[Path, int, dict[str, Any]]] = []
    with open(path, "rb") as fh:
        picked.append((path, 1, _parse(fh.readline())))
        for _ in range(k - 1):
            fh.seek(rng.randrange(size))
            fh.readline()  # finish the line we landed in; take the next whole one
            line = fh.readline() or _first_line(fh)
            picked.append((path, 0, _parse(line)))  # 0: line number unknown
    return picked


def _parse(line: bytes) -> Any:
    """The request on a line; what is not JSON comes back as text for check_line to report."""
    try:
        return json.loads(line)
    except ValueError:
        return line.decode("utf-8", "replace")


def _first_line(fh: Any) -> bytes:
    fh.seek(0)
    return bytes(fh.readline())


def review_files(
    files: Sequence[tuple[Path, int]], k: int = SAMPLE, **estimate_options: Any
) -> Review:
    """Validate and estimate what was written (a sample of it when there is more than k).

    `estimate_options` go to `estimate.estimate_lines` (image_size, expected_output, ...)."""
    from . import estimate, validate

    total = sum(count for _, count in files)
    sample = sample_lines(files, k)
    problems = []
    for path, line_no, request in sample:
        for problem in validate.check_line(request, line_no):
            problem.path = f"{path.name}: {problem.path}" if problem.path else path.name
            problems.append(problem)
    est = estimate.estimate_lines(
        (request for _, _, request in sample if isinstance(request, dict)),
        scale_to=total if len(sample) < total else None,
        **estimate_options,
    )
    return Review(problems, est, len(sample), total)
