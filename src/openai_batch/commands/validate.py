"""`openai-batch utils validate FILE...`: what the Batch API would reject, found before upload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.ui import console


def validate(
    *files: Path,
    service: str | None = None,
    as_json: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """Check request files line by line against the Batch API's rules and the openai types.

    Exits 1 if any file has an error; warnings alone exit 0.

    Parameters
    ----------
    files
        Request files (.jsonl) to check.
    service
        Check against this batch service's limits (openai, azure, groq, deepinfra, ...;
        default: from AZURE_OPENAI_ENDPOINT / OPENAI_BASE_URL, else OpenAI).
    as_json
        Print one JSON object (ok, errors, warnings, files with grouped problems).
    """
    from openai_batch.service.profiles import select
    from openai_batch.validate.check import plural, render, validate_files

    if not files:
        raise BatchError("no request file given.", hint=Command("utils", "validate", "FILE.jsonl"))
    report = validate_files(files, limits=select(service).limits)
    if as_json:
        console.print_json(report.to_dict())
    else:
        for line in render(report):
            console.say(line)
        if len(report.files) > 1 or not report.ok:
            verdict = "all ok" if report.ok else plural(report.errors, "error")
            warnings = plural(report.warnings, "warning")
            console.say(f"{plural(len(report.files), 'file')}: {verdict}, {warnings}")
    return 0 if report.ok else 1
