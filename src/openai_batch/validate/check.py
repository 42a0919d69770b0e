"""Find everything the Batch API would reject in a request file, before uploading it.

File rules (JSON per line, the four fields, unique custom_ids, one model and one url, 50,000
requests, 200 MB) are checked here; each body is checked by `body_rules` (OpenAI's published
API specification, the official SDK's request types, what the API is known to refuse beyond
them, and what the model can do).
"""

from __future__ import annotations

import typing
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openai_batch.errors import quoted
from openai_batch.requestfile.endpoints import EMBEDDINGS
from openai_batch.requestfile.kinds import check_request_path
from openai_batch.requestfile.limits import OPENAI
from openai_batch.requestfile.limits import FileLimits as Limits
from openai_batch.requestfile.problems import ERROR, WARNING, Problem
from openai_batch.requestfile.read import BOM, RequestLine, read_lines
from openai_batch.validate.body_rules import check_body, embedding_inputs
from openai_batch.validate.sdk_types import batch_endpoints

LINE_FIELDS = ("custom_id", "method", "url", "body")

__all__ = [
    "ERROR",
    "WARNING",
    "Limits",
    "Problem",
    "batch_endpoints",
    "check_body",
    "check_line",
    "embedding_inputs",
    "validate_file",
    "validate_files",
]


@dataclass
class FileReport:
    """What was found in one request file."""

    path: str
    requests: int = 0
    bytes: int = 0
    model: str | None = None
    url: str | None = None
    embedding_inputs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.severity == ERROR for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.severity == WARNING for p in self.problems)

    def groups(self) -> list[tuple[str, str, str, list[int]]]:
        """(severity, path, message, lines): the same problem on many lines is said once."""
        grouped: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for p in self.problems:
            grouped[(p.severity, p.path, p.message)].append(p.line)
        order = sorted(grouped.items(), key=lambda kv: (kv[0][0] != ERROR, kv[1][0]))
        return [(sev, path, msg, lines) for (sev, path, msg), lines in order]


@dataclass
class Report:
    """All files checked; `ok` when none has an error (warnings are allowed)."""

    files: list[FileReport]

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(f.warnings for f in self.files)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "files": [
                {
                    **{k: v for k, v in asdict(f).items() if k != "problems"},
                    "errors": f.errors,
                    "warnings": f.warnings,
                    "ok": f.errors == 0,
                    "problems": [
                        {"severity": s, "path": p, "message": m, "lines": lines}
                        for s, p, m, lines in f.groups()
                    ],
                }
                for f in self.files
            ],
        }


# -- one line -------------------------------------------------------------------------------------


def check_line(obj: Any, line_no: int, service: str | None = None) -> list[Problem]:
    """Problems in one parsed request line, on its own (file-wide rules are in validate_file).

    `service`: another service than OpenAI's, whose model names (Azure's deployment names, other
    providers' models) the capability table cannot judge: what it says is then a warning."""
    if not isinstance(obj, dict):
        return [Problem(line_no, "", f"a request line must be a JSON object, not {_kind(obj)}")]
    problems = [
        Problem(line_no, key, "required field missing") for key in LINE_FIELDS if key not in obj
    ]
    problems += [
        Problem(line_no, key, "unknown field in the request line", WARNING)
        for key in obj
        if key not in LINE_FIELDS
    ]
    custom_id = obj.get("custom_id")
    if "custom_id" in obj and (not isinstance(custom_id, str) or not custom_id.strip()):
        problems.append(Problem(line_no, "custom_id", "must be a non-empty string"))
    if "method" in obj and obj["method"] != "POST":
        problems.append(Problem(line_no, "method", f'must be "POST", not {quoted(obj["method"])}'))
    url = obj.get("url")
    if "url" in obj and url not in batch_endpoints():
        problems.append(
            Problem(
                line_no,
                "url",
                f"{quoted(url)} is not a Batch API endpoint ({', '.join(batch_endpoints())})",
            )
        )
    body = obj.get("body")
    if "body" in obj and not isinstance(body, dict):
        problems.append(Problem(line_no, "body", f"must be a JSON object, not {_kind(body)}"))
    elif isinstance(body, dict) and isinstance(url, str):
        problems += check_body(body, url, line_no, service=service)
    return problems


def _other_service(limits: Limits) -> str | None:
    """The service's name when it is not OpenAI's (whose models the capability table knows)."""
    from openai_batch.service.profiles import OPENAI as OPENAI_PROFILE

    return (
        None
        if limits.service in (OPENAI.service, OPENAI_PROFILE.limits.service)
        else limits.service
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def line_problems(
    line: RequestLine, limits: Limits = OPENAI, service: str | None = None
) -> list[Problem]:
    """Problems in one line of a request file, on its own: why it has no value (not UTF-8, not
    JSON, too deep, an integer too long to read, a lone surrogate: the reader's words, never
    "not a JSON object" for a line that is one), else check_line's. Every reader of request
    files says a line's problems by this (`utils validate`, make-batch-file's review).

    `service`: as for check_line (`_other_service(limits)`, worked out once per file)."""
    line_no = line.number
    problems = []
    if line.bom:
        problems.append(Problem(line_no, "", BOM))
    if line.problem:
        severity = WARNING if line.is_warning else ERROR
        problems.append(Problem(line_no, line.where, line.problem, severity))
    if not line.has_value:
        return problems
    obj = line.value
    if limits.unversioned_urls and isinstance(obj, dict) and "url" in obj:
        obj["url"] = limits.canonical_url(obj["url"])  # Azure: "/chat/completions"
    problems += check_line(obj, line_no, service)
    refused = limits.endpoint_problem(obj.get("url")) if isinstance(obj, dict) else None
    if refused:
        problems.append(Problem(line_no, "url", refused))
    return problems


# -- files ----------------------------------------------------------------------------------------


def validate_file(
    path: str | Path, limits: Limits = OPENAI, lines: typing.Iterable[RequestLine] | None = None
) -> FileReport:
    """Check one request file line by line, then the file-wide rules.

    `lines`: the file's lines as a caller already reads them (`read_lines(path)`, passed
    through something that also hashes them), so the file is read once."""
    path = Path(path)
    check_request_path(path)
    report = FileReport(path=str(path), bytes=path.stat().st_size)
    problems = report.problems
    first_seen: dict[str, int] = {}
    models: dict[str, list[int]] = defaultdict(list)
    urls: dict[str, list[int]] = defaultdict(list)
    over_limit_line = 0
    service = _other_service(limits)
    for line in read_lines(path) if lines is None else lines:
        line_no = line.number
        problems += line_problems(line, limits, service)
        if not line.has_value:
            continue
        obj = line.value
        report.requests += 1
        if report.requests == limits.requests + 1:
            over_limit_line = line_no
        if not isinstance(obj, dict):
            continue
        _check_unique(obj.get("custom_id"), line_no, first_seen, problems)
        body = obj.get("body")
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            models[body["model"]].append(line_no)
        if isinstance(obj.get("url"), str):
            urls[obj["url"]].append(line_no)
        if obj.get("url") == EMBEDDINGS:
            report.embedding_inputs += embedding_inputs(body)
    report.model = _only_one(models, "body.model", "model", problems)
    report.url = _only_one(urls, "url", "url", problems)
    _check_limits(report, limits, over_limit_line)
    return report


def _check_unique(
    custom_id: Any, line_no: int, first_seen: dict[str, int], problems: list[Problem]
) -> None:
    if not isinstance(custom_id, str):
        return
    if custom_id in first_seen:
        problems.append(
            Problem(
                line_no,
                "custom_id",
                f"duplicate custom_id {quoted(custom_id)} (first on line {first_seen[custom_id]})",
            )
        )
    else:
        first_seen[custom_id] = line_no


def _only_one(
    seen: dict[str, list[int]], path: str, what: str, problems: list[Problem]
) -> str | None:
    """The one value a file uses; each line that differs from the most common one is an error."""
    if not seen:
        return None
    common = max(seen, key=lambda k: len(seen[k]))
    for value, lines in seen.items():
        if value != common:
            message = (
                f"{what} {quoted(value)} differs from {quoted(common)}: a batch uses one {what}"
            )
            problems += [Problem(line, path, message) for line in lines]
    return common


def _check_limits(report: FileReport, limits: Limits, over_limit_line: int) -> None:
    problems = report.problems
    if report.requests > limits.requests:
        problems.append(
            Problem(
                over_limit_line,
                "",
                f"{report.requests:,} requests: a batch takes at most {limits.requests:,}; "
                "split it (make-batch-file --max-requests)",
            )
        )
    if report.bytes > limits.file_bytes:
        problems.append(
            Problem(
                0,
                "",
                f"the file is {report.bytes / 1e6:,.1f} MB: a batch file may be at most "
                f"{limits.file_bytes / 1e6:,.0f} MB; split it (make-batch-file --max-bytes)",
            )
        )
    if report.embedding_inputs > limits.embedding_inputs:
        problems.append(
            Problem(
                0,
                "",
                f"{report.embedding_inputs:,} embedding inputs: an embeddings batch takes at most "
                f"{limits.embedding_inputs:,} across all its requests",
            )
        )
    if report.requests == 0 and report.errors == 0:
        problems.append(Problem(0, "", "the file has no requests"))


def validate_files(
    paths: typing.Iterable[str | Path],
    limits: Limits = OPENAI,
) -> Report:
    """Check request files; the report says what is wrong where, and `ok` if nothing is."""
    return Report([validate_file(p, limits) for p in paths])


# -- human output ---------------------------------------------------------------------------------


def describe_lines(lines: list[int], shown: int = 3) -> str:
    """'line 3', 'lines 3 and 7', 'lines 3, 7, 9 and 40 more' (0 means the whole file)."""
    named = [str(n) for n in lines[:shown] if n]
    if not named:
        return "file"
    rest = len(lines) - len(named)
    if len(lines) == 1:
        return f"line {named[0]}"
    if rest == 0:
        return f"lines {', '.join(named[:-1])} and {named[-1]}"
    return f"lines {', '.join(named)} and {rest:,} more"


def render(report: Report) -> list[str]:
    """Lines for a person: each file's summary, then its grouped problems."""
    from openai_batch.ui.console import human_bytes

    out = []
    for f in report.files:
        facts = [plural(f.requests, "request"), human_bytes(f.bytes)]
        facts += [x for x in (f.model, f.url) if x]
        verdict = "ok" if f.errors == 0 else plural(f.errors, "error")
        if f.warnings:
            verdict += f", {plural(f.warnings, 'warning')}"
        out.append(f"{f.path}: {', '.join(facts)} — {verdict}")
        for severity, path, message, lines in f.groups():
            where = describe_lines(lines) + (f": {path}" if path else "")
            out.append(f"  {severity}: {where}: {message}")
    return out


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
