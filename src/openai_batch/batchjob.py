"""The Python API of the seed tutorials: `BatchJob.create_from_messages` / `parse_from_file`.

`create_from_messages` turns message lists into Batch API request lines (custom_ids `id_0`,
`id_1`, ... in the order given, like `make-batch-file`); a Pydantic `response_model` becomes a
strict Structured Outputs `json_schema` response format. `parse_from_file` reads a Batch output
file (or `utils chat-complete` output), validates each answer against the model, and separates
the answers that fit from the lines that do not.

The Batch API writes its output in no particular order, so positions in `parsed` do not match
positions in `messages_batch`; use `parse_by_custom_id` (or `parse_lines`) when an answer must
be matched back to its input.
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from openai_batch.errors import BatchError, quoted
from openai_batch.jsondepth import too_deep
from openai_batch.local import files
from openai_batch.requestfile.endpoints import CHAT
from openai_batch.requestfile.limits import OPENAI, FileLimits

T = TypeVar("T", bound=BaseModel)


# What strict Structured Outputs accept beyond the SDK's conversion. Anything else is removed
# or refused, because one unsupported keyword makes the API reject every request of the batch.
_STRUCTURE_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "enum",
    "const",
    "$ref",
    "$defs",
    "title",
    "description",
}
_CONSTRAINT_KEYS = {
    "pattern",
    "format",
    "multipleOf",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
}
_FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
# Keywords that only annotate: dropped without a word.
_ANNOTATION_KEYS = {"default", "examples", "deprecated", "readOnly", "writeOnly", "$schema", "$id"}
_MAX_PROPERTIES = 5000
_MAX_DEPTH = 10


# --------------------------------------------------------------------------- strict schema


def strict_json_schema(response_model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the subset strict Structured Outputs accept.

    The SDK's own converter (`openai.lib._pydantic.to_strict_json_schema`, what
    `client.beta.chat.completions.parse` sends) makes every object closed with all its
    properties required and inlines `$ref`s with sibling keywords. A short pass then does what
    it leaves to the API to refuse: `oneOf` becomes `anyOf`, `default` and other unsupported
    keywords are removed (removed constraints are reported with `warnings.warn`, since pydantic
    still enforces them when parsing), and shapes strict mode cannot express (`dict[str, X]`,
    `Any`, tuples, a non-object root) raise BatchError.
    """
    from openai.lib._pydantic import to_strict_json_schema

    _require_model(response_model)
    name = response_model.__name__
    try:
        schema = to_strict_json_schema(response_model)
    except (TypeError, ValueError, KeyError, AssertionError) as exc:
        raise BatchError(f"{name}: cannot make a strict schema of it: {exc}") from None
    dropped: set[str] = set()
    out = _strict(schema, (), schema, dropped, name)
    if out.get("type") != "object" or "anyOf" in out:
        raise BatchError(
            f"response_model {name} is not an object model",
            hint="Structured Outputs need a root object: wrap the value in a BaseModel field.",
        )
    _check_size(out, name)
    if dropped:
        warnings.warn(
            f"{name}: strict Structured Outputs do not support {', '.join(sorted(dropped))}; "
            "these constraints were left out of the schema sent to the API (pydantic still "
            "checks them when parsing, so answers that break them end up in `unparsed`)",
            stacklevel=3,
        )
    return out


def response_format_for(response_model: type[BaseModel]) -> dict[str, Any]:
    """The `response_format` body field that asks for answers shaped like `response_model`."""
    _require_model(response_model)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", response_model.__name__)[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": strict_json_schema(response_model), "strict": True},
    }


def _require_model(response_model: object) -> None:
    if not (isinstance(response_model, type) and issubclass(response_model, BaseModel)):
        raise BatchError(
            f"response_model must be a pydantic BaseModel subclass, not {response_model!r}",
            hint="define `class Answer(BaseModel): ...` and pass the class itself",
        )


def _where(path: tuple[str, ...], name: str) -> str:
    return name + "".join(f".{p}" for p in path if p not in ("properties", "$defs"))


def _strict(
    node: Any, path: tuple[str, ...], root: dict[str, Any], dropped: set[str], name: str
) -> dict[str, Any]:
    """One node of the SDK's strict schema (and its children), checked and trimmed."""
    from openai.lib._pydantic import _ensure_strict_json_schema

    if not isinstance(node, dict):
        raise BatchError(f"{_where(path, name)}: unexpected schema {node!r}")
    node = dict(node)
    if "oneOf" in node:  # discriminated unions: anyOf is the strict-mode spelling
        variants = node.pop("oneOf")
        node["anyOf"] = [_ensure_strict_json_schema(v, path=path, root=root) for v in variants]
        node.pop("discriminator", None)
    if "allOf" in node:  # the SDK merges a single one
        raise BatchError(
            f"{_where(path, name)}: allOf with several schemas is not supported in strict mode"
        )
    if "prefixItems" in node:
        raise BatchError(
            f"{_where(path, name)}: tuples cannot be expressed in strict Structured Outputs",
            hint="use a list[...] or a nested model with named fields",
        )
    if not node.keys() & {"type", "$ref", "anyOf", "enum", "const"}:
        raise BatchError(
            f"{_where(path, name)}: field has no type (typing.Any?)",
            hint="give every field a concrete type; strict Structured Outputs need one",
        )
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATION_KEYS:
            continue
        if key == "format" and value not in _FORMATS:
            dropped.add(f"format {value!r}")
            continue
        if key not in _STRUCTURE_KEYS and key not in _CONSTRAINT_KEYS:
            dropped.add(key)
            continue
        out[key] = value
    if out.get("type") == "object" or "properties" in out:
        if out.get("additionalProperties") not in (None, False) and not out.get("properties"):
            raise BatchError(
                f"{_where(path, name)}: dict fields (free-form keys) are not allowed in strict "
                "Structured Outputs",
                hint="use a list of small models with a key field instead of dict[str, ...]",
            )
        props = out.get("properties", {})
        out["properties"] = {
            key: _strict(sub, (*path, key), root, dropped, name) for key, sub in props.items()
        }
        out["required"] = list(props)
        out["additionalProperties"] = False
    if "items" in out:
        out["items"] = _strict(out["items"], (*path, "[]"), root, dropped, name)
    if "anyOf" in out:
        out["anyOf"] = [_strict(v, path, root, dropped, name) for v in out["anyOf"]]
    if "$defs" in out:
        out["$defs"] = {
            key: _strict(sub, ("$defs", key), root, dropped, name)
            for key, sub in out["$defs"].items()
        }
    return out


def _check_size(schema: dict[str, Any], name: str) -> None:
    """OpenAI's documented limits: 5000 properties in all, 10 levels of nesting."""
    count = 0

    def walk(node: Any, depth: int) -> None:
        nonlocal count
        if not isinstance(node, dict):
            return
        props = node.get("properties") or {}
        count += len(props)
        if props and depth > _MAX_DEPTH:
            raise BatchError(f"{name}: objects nested more than {_MAX_DEPTH} levels deep")
        for sub in props.values():
            walk(sub, depth + 1)
        walk(node.get("items"), depth)
        for sub in node.get("anyOf") or []:
            walk(sub, depth)
        for sub in (node.get("$defs") or {}).values():
            walk(sub, 1)

    walk(schema, 1)
    if count > _MAX_PROPERTIES:
        raise BatchError(f"{name}: {count} properties; strict mode allows {_MAX_PROPERTIES}")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedLine(Generic[T]):
    """One line of a results file: the validated answer, or why there is none."""

    line: int
    custom_id: str | None
    value: T | None
    error: str | None
    raw: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.value is not None


def _error_text(err: Any) -> str:
    if isinstance(err, Mapping):
        code, message = err.get("code"), err.get("message")
        return f"{code}: {message}" if code else str(message or err)
    return str(err)


def answer_text(record: Mapping[str, Any]) -> str:
    """The assistant's text in one results line; raises ValueError saying why there is none.

    Accepts Batch API output/error lines, `utils chat-complete` lines, and bare
    chat.completion / Responses API bodies. For chat completions the first choice is used;
    tool-call arguments stand in for content (files made with instructor's tool mode). The
    line is read by `answers.extract`, as the CSV join reads it; this adds BatchJob's wording.
    """
    from openai_batch.results import answers

    if "custom_id" in record or "response" in record:
        if record.get("error"):
            raise ValueError(_error_text(record["error"]))
        response = record.get("response")
        if not isinstance(response, Mapping):
            raise ValueError("no response in this line")
        body = response.get("body")
        status = response.get("status_code")
        if status != 200:
            err = body.get("error") if isinstance(body, Mapping) else body
            raise ValueError(f"HTTP {status}: {_error_text(err)}")
    else:
        body = record
    if not isinstance(body, Mapping):
        raise ValueError("response body is not a JSON object")
    if "choices" not in body and "output" not in body:
        raise ValueError("response body has neither `choices` nor `output`")
    result = answers.extract({"response": {"status_code": 200, "body": dict(body)}})
    if result.status != "ok":
        raise ValueError(result.error)
    if "choices" in body and not body.get("choices"):
        raise ValueError("response has no choices")
    if result.finish_reason.startswith("incomplete"):
        reason = result.finish_reason.partition(": ")[2] or None
        raise ValueError(f"the response is incomplete ({reason})")
    if result.refusal:
        raise ValueError(f"refused: {result.refusal}")
    content = result.tool_arguments or result.content
    if not content:
        chat = "choices" in body
        raise ValueError("the answer has no content" if chat else "the response has no output_text")
    if result.finish_reason == "length":
        raise ValueError("the answer was cut off at the token limit (finish_reason=length)")
    return content


def _validate(model: type[T], text: str) -> T:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        try:  # (pydantic says itself of a text too deep for the json module: jsondepth.py)
            if not too_deep(text):
                json.loads(text)
        except ValueError:
            raise ValueError(f"the answer is not JSON: {quoted(text)}") from None
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        field = f"field {where!r}: " if where else ""
        raise ValueError(f"does not match {model.__name__}: {field}{first['msg']}") from None


# --------------------------------------------------------------------------- the class


class BatchJob:
    """Build Batch API request files from message lists and parse the results into models."""

    @classmethod
    def create_from_messages(
        cls,
        messages_batch: Iterable[Sequence[Mapping[str, Any]]],
        model: str,
        response_model: type[BaseModel] | None = None,
        file_path: str | os.PathLike[str] | None = None,
        *,
        limits: FileLimits = OPENAI,
        **body: Any,
    ) -> Any:
        """Request lines for `/v1/chat/completions`, one per message list.

        Parameters
        ----------
        messages_batch:
            Message lists as for `client.chat.completions.create(messages=...)`; any iterable,
            including a generator. The i-th list gets custom_id `id_<i>`.
        model:
            The model of every request.
        response_model:
            A pydantic model; becomes a strict `json_schema` response format.
        file_path:
            Where to write the `.jsonl`. Without it, a generator of request dicts is returned.
        limits:
            The per-file limits to enforce (`requestfile_limits.OPENAI` unless a service differs).
        **body:
            More request body fields (`max_completion_tokens=500`, `temperature=0`, ...).

        Returns
        -------
        A generator of request-line dicts when `file_path` is None, otherwise the number of
        requests written. The file is written atomically and refused (nothing written) when it
        would be empty or exceed `limits` (the Batch API's 50,000 requests and 200,000,000
        bytes, see `requestfile_limits`).
        """
        if not isinstance(model, str) or not model:
            raise BatchError("model must be a non-empty string, e.g. model='gpt-4o-mini'")
        if isinstance(messages_batch, (str, bytes, Mapping)):
            raise BatchError(
                "messages_batch must be an iterable of message lists",
                hint="pass [[{'role': 'user', 'content': '...'}], ...]",
            )
        for key in ("model", "messages"):
            if key in body:
                raise BatchError(
                    f"{key!r} is set by create_from_messages; do not pass it in **body"
                )
        template: dict[str, Any] = {"model": model, "messages": None, **body}
        if response_model is not None:
            if "response_format" in body:
                raise BatchError("pass either response_model or response_format, not both")
            template["response_format"] = response_format_for(response_model)
        _check_capabilities(template)
        lines = _request_lines(messages_batch, template)
        if file_path is None:
            return lines
        return _write_lines(lines, Path(file_path), limits)

    @classmethod
    def parse_lines(
        cls, file_path: str | os.PathLike[str], response_model: type[T]
    ) -> Iterator[ParsedLine[T]]:
        """Every line of a results file with its parsed answer or the reason it has none."""
        _require_model(response_model)
        path = Path(file_path)
        if not path.is_file():
            raise BatchError(f"no such results file: {path}")
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                yield _parse_line(number, raw, response_model)

    @classmethod
    def parse_from_file(
        cls, file_path: str | os.PathLike[str], response_model: type[T]
    ) -> tuple[list[T], list[dict[str, Any]]]:
        """`(parsed, unparsed)`: model instances for the answers that validate, raw lines else.

        Lines are taken in file order (the Batch API's order is arbitrary). `unparsed` holds
        each failing line's dict as read (a line that is not JSON at all appears as
        `{"line": n, "raw": text}`); `parse_lines` tells why each one failed.
        """
        parsed: list[T] = []
        unparsed: list[dict[str, Any]] = []
        first_failure: ParsedLine[T] | None = None
        for item in cls.parse_lines(file_path, response_model):
            if item.value is not None:
                parsed.append(item.value)
            else:
                unparsed.append(item.raw)
                if first_failure is None or _mismatch(item) > _mismatch(first_failure):
                    first_failure = item
        if not parsed and first_failure is not None and _mismatch(first_failure):
            # A wrong response_model parses nothing: say why, rather than return empty-handed.
            warnings.warn(
                f"none of the {len(unparsed):,} lines of {file_path} parsed as "
                f"{response_model.__name__}; line {first_failure.line}: {first_failure.error}",
                stacklevel=2,
            )
        return parsed, unparsed

    @classmethod
    def parse_by_custom_id(
        cls, file_path: str | os.PathLike[str], response_model: type[T]
    ) -> tuple[dict[str, T], dict[str, str]]:
        """`({custom_id: instance}, {custom_id: why it failed})`, to match answers to inputs.

        When a custom_id appears more than once (results of a retried run), a success beats a
        failure and the later line beats the earlier.
        """
        parsed: dict[str, T] = {}
        failed: dict[str, str] = {}
        for item in cls.parse_lines(file_path, response_model):
            if item.custom_id is None:
                continue
            if item.value is not None:
                parsed[item.custom_id] = item.value
                failed.pop(item.custom_id, None)
            elif item.custom_id not in parsed:
                failed[item.custom_id] = item.error or "unknown error"
        return parsed, failed


def _check_capabilities(template: dict[str, Any]) -> None:
    """What `utils validate` says about the model: a request it cannot serve is refused before
    anything is written (an unknown model is a warning)."""
    from openai_batch.validate.capabilities import check

    body = {**template, "messages": [{"role": "user", "content": ""}]}
    findings = check(body, CHAT)
    for finding in findings:
        where = ".".join(str(p) for p in finding.path)
        if finding.severity == "error":
            raise BatchError(f"{where}: {finding.message}")
        warnings.warn(f"{where}: {finding.message}", stacklevel=3)


def _request_lines(
    messages_batch: Iterable[Sequence[Mapping[str, Any]]], template: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    for index, messages in enumerate(messages_batch):
        _check_messages(index, messages)
        body = copy.deepcopy(template)
        body["messages"] = list(messages)
        yield {"custom_id": f"id_{index}", "method": "POST", "url": CHAT, "body": body}


def _check_messages(index: int, messages: Any) -> None:
    hint = "each item of messages_batch is a list like [{'role': 'user', 'content': '...'}]"
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise BatchError(f"messages_batch[{index}] is not a list of messages", hint=hint)
    if not messages:
        raise BatchError(f"messages_batch[{index}] is an empty list of messages", hint=hint)
    for j, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise BatchError(
                f"messages_batch[{index}][{j}] is not a message with a role", hint=hint
            )


def _write_lines(lines: Iterator[dict[str, Any]], path: Path, limits: FileLimits) -> int:
    count = size = 0
    with files.atomic_write(path, "wb") as fh:
        for line in lines:
            data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
            count += 1
            size += len(data)
            if limits.exceeded_by(count, size):
                raise BatchError(
                    f"{path}: over {limits.describe()}, the Batch API's limit for one file",
                    hint="split messages_batch into parts and write one file for each",
                )
            fh.write(data)
        if count == 0:
            raise BatchError("messages_batch is empty: no requests to write")
    return count


def _mismatch(item: ParsedLine[Any]) -> int:
    """How well a failure tells of a wrong model: 2, an answer missing or mistyping a field;
    1, an answer that is not JSON; 0, a failed request."""
    error = item.error or ""
    return 2 if error.startswith("does not match") else int(error.startswith("the answer is"))


def _parse_line(number: int, line: bytes, model: type[T]) -> ParsedLine[T]:
    from openai_batch.results import answers

    try:
        record = answers.parse_line(line)  # as the CSV join reads it: too deep is not JSON
    except answers.MalformedResult as exc:
        raw = {"line": number, "raw": line.decode("utf-8", "replace").rstrip("\n")}
        return ParsedLine(number, None, None, str(exc), raw)
    if not isinstance(record, dict):
        return ParsedLine(number, None, None, "the line is not a JSON object", {"raw": record})
    custom_id = record.get("custom_id")
    custom_id = custom_id if isinstance(custom_id, str) else None
    try:
        value = _validate(model, answer_text(record))
    except ValueError as exc:
        return ParsedLine(number, custom_id, None, str(exc), record)
    return ParsedLine(number, custom_id, value, None, record)
