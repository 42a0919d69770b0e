"""The first rendered request speaks for every row: the same template makes them all, so what
the API would reject in the first (no model, a wrong role, an unknown field) it would reject in
every one. Checked before the rest render, by the general renderer and the fast path alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openai_batch.errors import BatchError, Command
from openai_batch.requestfile.endpoints import MODERATIONS
from openai_batch.requestfile.read import parse_line

if TYPE_CHECKING:
    from openai_batch.template.prompt import Template


def check_first_line(line: str, endpoint: str, template: Template) -> str | None:
    """The first rendered request must be JSON with a model; returns that model."""
    request = rendered_request(line, 1)
    model = request["body"].get("model")
    if endpoint != MODERATIONS and (not isinstance(model, str) or not model.strip()):
        where = template.source or "the template"
        raise BatchError(
            f'{where} has no "model": every request needs one.',
            hint='add e.g. "model": "gpt-4o-mini" to the template.',
        )
    _check_request(request, template)
    return model if isinstance(model, str) else None


def rendered_request(line: str, row: int) -> dict[str, Any]:
    """A rendered line as the request files' reader reads it. It is JSON by construction, but
    a cell put where a JSON value goes is written as it is, and one Python cannot read (an
    integer of 5,000 digits) stopped make-batch-file with a traceback."""
    read = parse_line(line.encode("utf-8"))
    if read.request is None:
        raise BatchError(
            f"row {row}: the rendered request {read.problem or 'is not a JSON object'}",
            hint="a placeholder where a JSON value goes (outside quotes) writes its cell as it "
            "is: check that column's values",
        )
    return read.request


def _check_request(request: dict[str, Any], template: Template) -> None:
    """Every row shares the template's structure: what the API would reject in the first
    request (a wrong role, an unknown field, a malformed part) it would reject in all of them."""
    from openai_batch.validate import check as validate

    errors = [p for p in validate.check_line(request, 1) if p.severity == validate.ERROR]
    if errors:
        where = template.source or "the template"
        listed = "\n".join(f"    {p.path}: {p.message}" for p in errors[:10])
        raise BatchError(
            f"the API would reject every request {where} makes:\n{listed}",
            hint=(
                "fix the template; `",
                Command("make-batch-file", "...", "--preview", "1"),
                "` shows a body.",
            ),
        )
