"""A successful /v1/responses result line decoded typed: the join's hot path for that endpoint.

answers.plain_line reads the common chat answer by msgspec into only the fields the table
needs; responses_line does the same for a Responses API answer of output_text parts (a reasoning
item or any other item skipped, as answers.extract skips them): 7.8 -> 4.9 microseconds a line
read. Every line where msgspec's reading could differ from the general path's, and every other
shape (a refusal, a function call, an error), is None here and read by answers.extract.
tests/test_responses_line.py holds the two to the same cells.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, DecodeError, Raw, Struct, UnsetType
from msgspec.json import Decoder

from openai_batch.results import answers
from openai_batch.results.answers import PlainCells, Usage


class _OutputPart(Struct, gc=False):
    type: str
    text: str | None = None  # _from_responses: absent or null is ""


class _OutputItem(Struct, gc=False):
    type: str
    content: tuple[_OutputPart, ...] | None = None  # read only where type is "message"


class _Details(Struct, gc=False):
    reason: str | None = None


class _ResponsesBody(Struct, gc=False):
    object: Literal["response"]
    output: tuple[_OutputItem, ...] | None = None
    status: str | None = None
    incomplete_details: _Details | None = None
    usage: Usage | None = None
    choices: Raw | UnsetType = UNSET  # present: extract reads the body as a chat answer


class _ResponsesResponse(Struct, gc=False):
    status_code: Literal[200]
    body: _ResponsesBody


class _ResponsesLine(Struct, gc=False):
    """A successful /v1/responses line as _from_responses reads it (as _PlainLine)."""

    custom_id: str
    response: _ResponsesResponse
    error: None = None


_RESPONSES = Decoder(_ResponsesLine)


def responses_line(raw: bytes) -> PlainCells | None:
    """plain_line's cells of a successful /v1/responses line whose answer is output_text
    parts (reasoning and other items skipped, as extract skips them), decoded by msgspec; None
    for every other line (a refusal, a function call, another shape), which extract reads.
    tests/test_responses_line.py holds it to the general path."""
    line = typed(_RESPONSES, raw)
    if line is None:
        return None
    body = line.response.body
    if body.choices is not UNSET:
        return None
    texts = []
    for item in body.output or ():
        if item.type == "message":
            for part in item.content or ():
                if part.type == "output_text":
                    texts.append(part.text or "")
                elif part.type == "refusal":
                    return None
        elif item.type == "function_call":  # its cell is the item's JSON: extract writes it
            return None
    reason = body.status or ""
    details = body.incomplete_details
    if details is not None and details.reason:
        reason = f"{reason}: {details.reason}"
    return (line.custom_id, "".join(texts), reason, *answers.token_cells(body.usage))


def typed(decoder: Decoder[Any], raw: bytes) -> Any:
    """The line decoded by msgspec, or None where msgspec's reading could differ from the
    general path's (parse_line): msgspec skips invalid UTF-8 in a field it does not read (to
    the others the line is not JSON), reads integers over 64 bits exactly (orjson: as
    floats; the typed token counts stop at 64 bits) and nests a few frames deeper than the
    json module (which reads what orjson refuses) before the recursion limit stops it."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if len(raw) > 2 * answers.SHALLOW and raw.count(b"[") + raw.count(b"{") > answers.SHALLOW:
        return None
    try:
        return decoder.decode(raw)
    except (DecodeError, ValueError, RecursionError):  # not JSON, or not this shape
        return None
