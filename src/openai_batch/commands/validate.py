"""`openai-batch utils validate FILE...`: what the Batch API would reject, found before upload."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from cyclopts import Parameter

from openai_batch.errors import BatchError, Command
from openai_batch.ui import console

if TYPE_CHECKING:
    from openai_batch.ledger.store import Ledger


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
    from openai_batch.requestfile.scan import validate_and_remember
    from openai_batch.service.profiles import select
    from openai_batch.validate.check import Report, plural, render

    if not files:
        raise BatchError("no request file given.", hint=Command("utils", "validate", "FILE.jsonl"))
    limits = select(service).limits
    with contextlib.ExitStack() as stack:
        ledger = _ledger(stack)  # a file that passes is not read again when it is started
        report = Report([validate_and_remember(path, limits, ledger) for path in files])
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


def _ledger(stack: contextlib.ExitStack) -> Ledger | None:
    """The ledger, to remember the files that pass; checking does not need it, so a ledger
    that cannot be opened is a warning (the commands that need it say so in full)."""
    from openai_batch.ledger.store import open_ledger

    try:
        return stack.enter_context(open_ledger())
    except BatchError as exc:
        console.warn(f"the files that pass are not remembered: {exc}")
        return None
