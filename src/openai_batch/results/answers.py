"""One Batch result line, understood: the answer (or the error) a person wants to see of it.

Every reader of results goes through `row_result` / `extract` (the CSV join, `utils
retry-failed`, chat-complete's resume, BatchJob's parsing) so a line means the same thing
everywhere; `is_success` is the one rule for "this request got its answer". A result line is
data from a server: any valid JSON may arrive (`"content": 5`, `choices` as a string, a line
nested 50,000 levels deep). Such a line never stops the other answers from being written: it
becomes that row's error, `malformed_result: ...`, and the raw line stays in the responses file
for inspection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

# Both are dependencies (pyproject.toml): orjson reads a whole line ~4x faster than the json
# module (which reads only what orjson refuses); msgspec decodes the common line typed.
import orjson as _orjson
from msgspec import UNSET, DecodeError, Meta, Struct, UnsetType
from msgspec.json import Decoder

from openai_batch.jsondepth import too_deep

MALFORMED = "malformed_result"

# The errors that reading an unexpected shape can raise; RecursionError is the deep nesting.
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")')


class MalformedResult(ValueError):
    """A result line that is JSON but not shaped like any endpoint's answer."""


@dataclass
class RowResult:
    """What a person wants to see of one request's result."""

    status: str  # ok, error, missing
    content: str = ""
    finish_reason: str = ""
    refusal: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str = ""
    fields: dict[str, Any] | None = None  # the content's JSON object (structured outputs)
    # a chat answer given as tool calls (instructor's tool mode): the first call's arguments
    tool_arguments: str = ""

    def cells(self) -> list[Any]:
        return [
            self.status,
            self.content,
            self.finish_reason,
            self.refusal,
            "" if self.prompt_tokens is None else self.prompt_tokens,
            "" if self.completion_tokens is None else self.completion_tokens,
            self.error,
        ]


MISSING = RowResult("missing")


def parse_line(raw: bytes | str) -> Any:
    """The JSON value of a line, or raise MalformedResult (not JSON, or nested too deep).

    orjson reads the lines it accepts ~4x faster; what it refuses (NaN, numbers past a
    double's range, lone surrogates, deep nesting) is read by the json module, which reads
    an integer as orjson does (_int_as_orjson), so a value never depends on which read it."""
    try:
        return _orjson.loads(raw)
    except _orjson.JSONDecodeError:
        pass
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if too_deep(text):  # never near the recursion limit (jsondepth.py says why)
            raise RecursionError
        return json.loads(text, parse_int=_int_as_orjson)
    except RecursionError:
        raise MalformedResult("the line is nested too deeply to read") from None
    except ValueError:
        raise MalformedResult("the line is not JSON") from None


def _int_as_orjson(text: str) -> int | float:
    """An integer literal as orjson reads it: exact within 64 bits (-2**63 to 2**64 - 1), else
    a float (as orjson 3.13 does; older versions refused the line, and the json module read it
    exactly). One rule, whichever reader and version: the same token count is never a number
    in one row and a float in another, nor does a spilled answer change when read back."""
    if len(text) <= 20:  # "-9223372036854775808", "18446744073709551615"
        value = int(text)
        if -(2**63) <= value < 2**64:
            return value
    return float(text)  # no digit limit (int() refuses over 4,300 digits)


def parse_many(lines: list[bytes]) -> list[Any]:
    """parse_line of each line, with orjson's call looked up once (the join's hot loop)."""
    loads, error = _orjson.loads, _orjson.JSONDecodeError
    try:
        return [loads(line) for line in lines]
    except error:  # some line needs the json module: each line as parse_line reads it
        return [parse_line(line) for line in lines]


def fast_loads(raw: bytes) -> Any:
    """The JSON value of a line as orjson reads it, or None where orjson refuses it (parse_line
    then reads it, with the json module). The join's hot path: no exception handling above."""
    try:
        return _orjson.loads(raw)
    except _orjson.JSONDecodeError:
        return None


def custom_id_in(raw: bytes) -> str | None:
    """The custom_id of a line that cannot be parsed whole (too deep), found by its text."""
    match = _CUSTOM_ID.search(raw)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def malformed(reason: str) -> RowResult:
    return RowResult("error", error=f"{MALFORMED}: {reason}")


def row_result(line: bytes | str | dict[str, Any]) -> RowResult:
    """The row result of one output/error-file line (raw or parsed), for any batch endpoint.

    Never raises for what a server may send: an unexpected shape is a `malformed_result` error.
    """
    try:
        record = line if isinstance(line, dict) else parse_line(line)
        if not isinstance(record, dict):
            raise MalformedResult("the line is not a JSON object")
        return extract(record)
    except MalformedResult as exc:
        return malformed(str(exc))


def is_success(record: dict[str, Any]) -> bool:
    response = record.get("response")
    return (
        not record.get("error")
        and isinstance(response, dict)
        and response.get("status_code") == 200
        and isinstance(response.get("body"), dict)
    )


NOT_RUN_CODES = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


def failure_reason(record: dict[str, Any]) -> tuple[str, str]:
    """(kind, reason) of a result that is not a success, for counting why requests failed.

    kind is "expired" or "cancelled" for requests the batch never ran (OpenAI writes them to the
    error file with code batch_expired / batch_cancelled), else "failed" with a reason such as
    "429 rate_limit_exceeded" or "500 server_error".
    """
    error = record.get("error")
    response = record.get("response")
    if not isinstance(response, dict):
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
        if code in NOT_RUN_CODES:
            return NOT_RUN_CODES[code], code
        return "failed", code or "error"
    status = response.get("status_code")
    body = response.get("body")
    body_error = body.get("error") if isinstance(body, dict) else None
    detail: Any = None
    if isinstance(body_error, dict):
        detail = body_error.get("code") or body_error.get("type")
    if not detail and isinstance(error, dict):
        detail = error.get("code")
    reason = " ".join(str(part) for part in (status, detail) if part)
    return "failed", reason or "unknown error"


def extract(record: dict[str, Any]) -> RowResult:
    """The answer (or the error) of one parsed line; odd shapes become `malformed_result`."""
    try:
        return _extract(record)
    except MalformedResult as exc:
        return malformed(str(exc))
    except _SHAPE_ERRORS as exc:
        kind = "nested too deeply" if isinstance(exc, RecursionError) else "not a known shape"
        return malformed(f"the response body is {kind}")


def plain_chat(record: dict[str, Any]) -> tuple[str, str, int | str, int | str] | None:
    """(content, finish_reason, prompt_tokens, completion_tokens) of the most common line, a
    successful one-choice chat completion with text content and no refusal, read with a few
    lookups and no RowResult (the tokens "" where extract gives None); None for every other
    line, which extract reads. On the lines it accepts it gives what extract gives: the join's
    hot path (tests/test_answers_fast.py checks the two agree)."""
    if record.get("error") is not None:
        return None
    response = record.get("response")
    if type(response) is not dict or response.get("status_code") != 200:
        return None
    body = response.get("body")
    if type(body) is not dict or body.get("object") != "chat.completion":
        return None
    choices = body.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    message = choice.get("message") if type(choice) is dict else None
    if type(message) is not dict or message.get("refusal") is not None:
        return None
    content, finish = message.get("content"), choice.get("finish_reason")
    if type(content) is not str or type(finish) is not str:
        return None
    usage = body.get("usage")
    if type(usage) is not dict:
        return content, finish, "", ""
    prompt = usage["prompt_tokens"] if "prompt_tokens" in usage else usage.get("input_tokens")
    completion = (
        usage["completion_tokens"] if "completion_tokens" in usage else usage.get("output_tokens")
    )
    return (content, finish, prompt if type(prompt) is int else "",
            completion if type(completion) is int else "")  # fmt: skip


# A token count msgspec may read: orjson reads an int exactly up to 2**64 - 1 and a larger one
# as a float (plain_chat: ""), msgspec any int exactly; its bounds stop at int64, so a count
# outside them fails the decode here and goes the general way.
_Tokens = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class Usage(Struct, gc=False):
    # UNSET (absent) differs from null: plain_chat takes input_tokens only where prompt_tokens
    # is absent. A count that is not an int (a float, a bool, a string) fails the decode.
    prompt_tokens: _Tokens | UnsetType | None = UNSET
    completion_tokens: _Tokens | UnsetType | None = UNSET
    input_tokens: _Tokens | None = None
    output_tokens: _Tokens | None = None


class _Message(Struct, gc=False):
    content: str
    refusal: None = None


class _Choice(Struct, gc=False):
    message: _Message
    finish_reason: str


class _Body(Struct, gc=False):
    object: Literal["chat.completion"]
    choices: tuple[_Choice]  # exactly one
    usage: Usage | None = None


class _Response(Struct, gc=False):
    status_code: Literal[200]
    body: _Body


class _PlainLine(Struct, gc=False):
    """The common line as plain_chat reads it: each field it looks at, typed so that a line
    of any other shape fails to decode (every other field is skipped, never built)."""

    custom_id: str
    response: _Response
    error: None = None


_PLAIN = Decoder(_PlainLine)
SHALLOW = 512  # a line of at most this many brackets is no deeper than every reader reads
PlainCells = tuple[str, str, str, int | str, int | str]


def plain_line(raw: bytes) -> PlainCells | None:
    """(custom_id, content, finish_reason, prompt_tokens, completion_tokens) of a raw line of
    the common shape, decoded by msgspec into the fields plain_chat reads, skipping the rest
    unbuilt (about twice as fast as orjson's whole dict); None for every line where that
    could differ from parse_line + plain_chat, which then read it: the guards of
    results/responsesline.typed and its token rule, written out here (two calls cost 6% of
    the line's reading). tests/test_plain_line.py checks the rest."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if len(raw) > 2 * SHALLOW and raw.count(b"[") + raw.count(b"{") > SHALLOW:
        return None
    try:
        line = _PLAIN.decode(raw)
    except (DecodeError, ValueError, RecursionError):  # not JSON, or not this shape
        return None
    body = line.response.body
    (choice,) = body.choices
    usage = body.usage
    if usage is None:
        return line.custom_id, choice.message.content, choice.finish_reason, "", ""
    # token_cells' rule, written out: a call per line costs ~0.15 us, 0.15 CPU s per million
    prompt = usage.prompt_tokens
    if prompt is UNSET:
        prompt = usage.input_tokens
    completion = usage.completion_tokens
    if completion is UNSET:
        completion = usage.output_tokens
    return (line.custom_id, choice.message.content, choice.finish_reason,
            "" if prompt is None else prompt,
            "" if completion is None else completion)  # fmt: skip


def token_cells(usage: Usage | None) -> tuple[int | str, int | str]:
    """The token cells of a typed usage as plain_chat and _usage give them ("" for none):
    input_tokens only where prompt_tokens is absent (UNSET), not where it is null."""
    if usage is None:
        return "", ""
    prompt = usage.prompt_tokens
    if prompt is UNSET:
        prompt = usage.input_tokens
    completion = usage.completion_tokens
    if completion is UNSET:
        completion = usage.output_tokens
    return "" if prompt is None else prompt, "" if completion is None else completion


def _extract(record: dict[str, Any]) -> RowResult:
    if not is_success(record):
        return RowResult("error", error=_error_text(record))
    body = record["response"]["body"]
    result = RowResult("ok")
    obj = body.get("object")
    if obj == "chat.completion" or ("choices" in body and obj != "text_completion"):
        _from_chat(body, result)
    elif obj == "response" or "output" in body:
        _from_responses(body, result)
    elif obj == "list" and "data" in body:
        _from_embeddings(body, result)
    elif obj == "text_completion":
        _from_completion(body, result)
    elif "results" in body:
        found = _of(body["results"], list, "results")
        result.content = dump(found[0] if len(found) == 1 else found)
    else:
        result.content = dump(body)
    _usage(body.get("usage"), result)
    result.fields = json_object(result.content)
    return result


def _of(value: Any, kind: type, where: str) -> Any:
    """`value` if it has the expected JSON type (None reads as empty), else MalformedResult."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise MalformedResult(f"{where} is {_json_type(value)}, not {_json_type(kind())}")
    return value


def _json_type(value: Any) -> str:
    names = {str: "a string", list: "an array", dict: "an object", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a number"


def _from_chat(body: dict[str, Any], result: RowResult) -> None:
    choices = body.get("choices")
    if type(choices) is list and len(choices) == 1:  # the usual shape, read without _of
        choice = choices[0]
        message = choice.get("message") if type(choice) is dict else None
        if type(message) is dict:
            content, refusal = message.get("content"), message.get("refusal")
            finish = choice.get("finish_reason")
            if type(content) is str and refusal is None and type(finish) is str:
                result.content, result.finish_reason = content, finish
                return
    choices = _of(choices, list, "choices")
    if not choices:
        return
    choice = _of(choices[0], dict, "choices[0]")
    message = _of(choice.get("message"), dict, "choices[0].message")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(_of(p.get("text", ""), str, "a content part's text")
                          for p in content if isinstance(p, dict))  # fmt: skip
    if content is None and message.get("tool_calls"):
        content = dump(message["tool_calls"])
        result.tool_arguments = _first_arguments(message["tool_calls"])
    result.content = _of(content, str, "choices[0].message.content")
    result.refusal = _of(message.get("refusal"), str, "choices[0].message.refusal")
    result.finish_reason = _of(choice.get("finish_reason"), str, "choices[0].finish_reason")


def _first_arguments(calls: Any) -> str:
    first = calls[0] if isinstance(calls, list) and calls else None
    function = first.get("function") if isinstance(first, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    return arguments if isinstance(arguments, str) else ""


def _from_responses(body: dict[str, Any], result: RowResult) -> None:
    texts, refusals = [], []
    for item in _of(body.get("output"), list, "output"):
        if not isinstance(item, dict):
            raise MalformedResult(f"an output item is {_json_type(item)}, not an object")
        if item.get("type") == "message":
            for part in _of(item.get("content"), list, "a message's content"):
                part = _of(part, dict, "an output part")
                if part.get("type") == "output_text":
                    texts.append(_of(part.get("text", ""), str, "an output_text's text"))
                elif part.get("type") == "refusal":
                    refusals.append(_of(part.get("refusal", ""), str, "a refusal"))
        elif item.get("type") == "function_call":
            texts.append(dump(item))
    result.content = "".join(texts)
    result.refusal = "".join(refusals)
    reason = _of(body.get("status"), str, "status")
    details = body.get("incomplete_details") or {}
    if isinstance(details, dict) and details.get("reason"):
        reason = f"{reason}: {details['reason']}"
    result.finish_reason = reason


def _from_embeddings(body: dict[str, Any], result: RowResult) -> None:
    items = _of(body.get("data"), list, "data")
    vectors = [_of(item, dict, "an embedding item").get("embedding") for item in items]
    result.content = dump(vectors[0] if len(vectors) == 1 else vectors)


def _from_completion(body: dict[str, Any], result: RowResult) -> None:
    choices = _of(body.get("choices"), list, "choices")
    if choices:
        choice = _of(choices[0], dict, "choices[0]")
        result.content = _of(choice.get("text"), str, "choices[0].text")
        result.finish_reason = _of(choice.get("finish_reason"), str, "choices[0].finish_reason")


def _usage(usage: Any, result: RowResult) -> None:
    if not isinstance(usage, dict):
        return
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    result.prompt_tokens = prompt if _is_int(prompt) else None
    result.completion_tokens = completion if _is_int(completion) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error_text(record: dict[str, Any]) -> str:
    error = record.get("error")
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if not error and isinstance(response, dict):
        body = response.get("body")
        error = body.get("error") if isinstance(body, dict) else None
        if error is None and body is not None:
            error = {"message": body if isinstance(body, str) else dump(body)}
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or (f"http_{status}" if status else "")
        message = error.get("message") or ""
        code, message = cell_text(code), cell_text(message)
        text = f"{code}: {message}" if code and message else code or message
    else:
        text = cell_text(error) if error else ""
    return text or (f"HTTP {status}" if status else "unknown error")


def json_object(content: str) -> dict[str, Any] | None:
    """The content as a JSON object (structured outputs), else None."""
    text = content.strip()
    if not text.startswith("{"):
        return None
    if too_deep(text):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dump_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 for the index's own files (orjson when it can; parse_line reads
    either)."""
    try:
        return _orjson.dumps(value)
    except TypeError:  # lone surrogates, integers over 64 bits
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def cell_text(value: Any) -> str:
    """A JSON value as a CSV cell: strings as they are, everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dump(value)
