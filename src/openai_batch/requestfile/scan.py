"""One pass over a request file: its digest, size, request count, endpoint and model; with
`check`, everything the Batch API would reject (as `utils validate` says it), before paying."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, Command
from openai_batch.ledger.digests import new_digest
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.requestfile.limits import OPENAI, FileLimits, human_decimal
from openai_batch.requestfile.read import RequestLine, read_lines
from openai_batch.ui import console

if TYPE_CHECKING:
    from openai_batch.ledger.checkedfiles import CheckedFile, CheckedFiles
    from openai_batch.validate.check import FileReport


@dataclass
class RequestFileInfo:
    """What one pass over a request file tells us; also the checks the API would make."""

    path: Path
    digest: str
    bytes: int
    requests: int
    endpoint: str | None
    model: str | None
    warnings: int = 0  # what `utils validate` would warn of (the command says so)


def scan_request_file(
    path: Path,
    *,
    check: bool = True,
    limits: FileLimits = OPENAI,
    ledger: CheckedFiles | None = None,
) -> RequestFileInfo:
    """Hash and count a request file; with `check`, refuse what the API would reject.

    The check is `utils validate`'s (every line, every body against the SDK's request types),
    so a mistake costs seconds here rather than a failed batch later. One read of the file
    serves both: the check sees the lines as they are hashed and counted. With a `ledger`, a
    file whose exact bytes this same build passed against the same limits is only hashed
    (`validate/stamp.py`), and a pass is remembered there.
    """
    path = Path(path)
    known = before_reading(path, check=check, limits=limits, ledger=ledger)
    if known is not None:
        return known
    info = read_and_check(path, check=check, limits=limits)
    if check and ledger is not None:
        remember_pass(ledger, info, limits)
    return info


def before_reading(
    path: Path, *, check: bool, limits: FileLimits, ledger: CheckedFiles | None
) -> RequestFileInfo | None:
    """What needs no reading of the lines: the path and size checks (raised), then, with a
    `ledger`, a pass this build remembers for these bytes (the file's info, else None)."""
    check_request_path(path)
    size = path.stat().st_size
    if not check:
        return None
    _check_outside(path, size, limits)
    known = _passed_before(ledger, path, limits) if ledger is not None else None
    if known is None:
        return None
    return RequestFileInfo(
        path, known.digest, size, known.requests, known.endpoint, known.model, known.warnings
    )


def read_and_check(path: Path, *, check: bool, limits: FileLimits) -> RequestFileInfo:
    """One read of the file: hashed and counted, and with `check` checked in full (an error
    raised as one BatchError naming up to 20 problems)."""
    size = path.stat().st_size
    tally = _Tally()
    lines = tally.through(read_lines(path))
    if check:
        from openai_batch.validate.check import validate_file

        warnings = _verdict(path, validate_file(path, limits, lines=lines))
    else:
        for _ in lines:
            pass
        warnings = 0
    return tally.info(path, size, warnings)


def validate_and_remember(
    path: Path, limits: FileLimits, ledger: CheckedFiles | None
) -> FileReport:
    """`utils validate`'s check of one file; a pass is remembered in `ledger` (as
    scan_request_file remembers one), so starting the file next skips reading it again."""
    from openai_batch.validate.check import validate_file

    tally = _Tally()
    report = validate_file(path, limits, lines=tally.through(read_lines(Path(path))))
    if report.errors == 0 and ledger is not None:
        remember_pass(ledger, tally.info(Path(path), report.bytes, report.warnings), limits)
    return report


def _passed_before(ledger: CheckedFiles, path: Path, limits: FileLimits) -> CheckedFile | None:
    from openai_batch.ledger.digests import digest_of
    from openai_batch.validate.stamp import check_stamp

    return ledger.checked_file(digest_of(path), check_stamp(limits))


def remember_pass(ledger: CheckedFiles, info: RequestFileInfo, limits: FileLimits) -> None:
    """Keep that the check passed the bytes `info` was read from (its digest: the very
    lines the check read, whatever the file holds by now)."""
    from openai_batch.ledger.checkedfiles import CheckedFile
    from openai_batch.validate.stamp import check_stamp

    stamp = check_stamp(limits)
    ledger.record_checked_file(
        CheckedFile(info.digest, stamp, info.requests, info.endpoint, info.model, info.warnings)
    )


class _Tally:
    """What a scan learns from the lines as they go by: digest, count, url and model."""

    def __init__(self) -> None:
        self.hasher = new_digest()
        self.urls: dict[str, None] = {}
        self.models: dict[str, None] = {}
        self.lines = 0

    def through(self, lines: Iterable[RequestLine]) -> Iterator[RequestLine]:
        for line in lines:
            self.hasher.update(line.raw)
            if not line.empty:
                self.lines += 1
                if len(self.urls) < 2 or len(self.models) < 2:
                    _note_url_and_model(line.request, self.urls, self.models)
            yield line

    def info(self, path: Path, size: int, warnings: int) -> RequestFileInfo:
        endpoint = next(iter(self.urls), None)
        model = next(iter(self.models), None)
        digest = str(self.hasher.hexdigest())
        return RequestFileInfo(path, digest, size, self.lines, endpoint, model, warnings)


def _note_url_and_model(
    request: dict[str, Any] | None, urls: dict[str, None], models: dict[str, None]
) -> None:
    """The line's url and model, when it is a request that has them (the check says the rest)."""
    if request is None:
        return
    try:
        urls.setdefault(str(request["url"]), None)
        model = request["body"].get("model")
    except (KeyError, TypeError, AttributeError):
        return
    if isinstance(model, str):
        models.setdefault(model, None)


def _check_outside(path: Path, size: int, limits: FileLimits = OPENAI) -> None:
    if path.suffix.lower() != ".jsonl":
        raise BatchError(
            f"{path}: the Batch API accepts only .jsonl files",
            hint=f"rename it to {path.with_suffix('.jsonl').name}",
        )
    if size == 0:
        raise BatchError(f"{path} is empty: there is nothing to run")
    if size > limits.file_bytes:
        limit = human_decimal(limits.file_bytes)
        raise BatchError(
            f"{path} is {console.human_bytes(size)}, over {limits.service}'s {limit} limit per "
            "file",
            hint=f"split it into files of at most {limit} (make-batch-file --max-bytes "
            f"{limit.replace(' ', '')} does this)",
        )


def _verdict(path: Path, report: FileReport) -> int:
    """A file's check report as one BatchError naming its errors; else its warnings."""
    from openai_batch.validate.check import Report, render

    if report.errors == 0:
        return report.warnings
    shown = [line.strip() for line in render(Report([report]))[1:] if "error:" in line]
    more = f"\n  ... and {len(shown) - 20} more" if len(shown) > 20 else ""
    raise BatchError(
        f"{path} would be rejected by the Batch API:\n  " + "\n  ".join(shown[:20]) + more,
        hint=(
            "fix it (or make it again); `",
            Command("utils", "validate", path),
            "` lists every problem; --no-check skips this check",
        ),
    )
