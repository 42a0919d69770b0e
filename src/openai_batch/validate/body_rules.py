"""Everything checked in one request body, and the rules the API enforces beyond its schemas.

A body is checked, in this order, against
1. the official SDK's request types (`sdk_types`): shapes, types, tags, unknown fields;
2. what the API is known to refuse though neither schema says so (this module: `RANGES`,
   empty content, empty model, embedding inputs, image URLs the API cannot fetch);
3. OpenAI's published API specification (`api_schema`): ranges, lengths, enums, required
   fields, for every field of every endpoint;
4. what the model can do (`capabilities`).
A later layer's problem at a path an earlier one already named is dropped: one message a field.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from openai_batch.errors import quoted
from openai_batch.requestfile.endpoints import CHAT, EMBEDDINGS, RESPONSES
from openai_batch.requestfile.limits import MAX_EMBEDDING_ARRAY
from openai_batch.requestfile.problems import ERROR, WARNING, Problem, format_path
from openai_batch.validate import api_schema, capabilities, sdk_types

IMAGE_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp")

# The API refuses these though the spec's schema has no bound: endpoint -> field -> (low, high).
# Chat: "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1".
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    CHAT: {"max_tokens": (1, math.inf), "max_completion_tokens": (1, math.inf)},
}
LOGIT_BIAS = (-100, 100)  # the spec says so in prose only


def check_body(body: dict, url: str, line_no: int = 0, service: str | None = None) -> list[Problem]:
    """Problems in a request body for endpoint `url`, with `body.`-prefixed field paths.

    On another `service` than OpenAI's, what the capability table says is a warning."""
    if url not in sdk_types.BODY_TYPES:
        return []
    problems = [
        Problem(line_no, format_path(("body", *path)), message, severity)
        for path, message, severity in sdk_types.check(body, url)
    ]
    problems += _api_rules(body, url, line_no)
    named = {p.path for p in problems if p.severity == ERROR}
    for found in api_schema.check(body, url):
        path = format_path(("body", *found.path))
        if not any(path == n or path.startswith((n + ".", n + "[")) for n in named):
            # the spec's error replaces the SDK's warning (an unknown field the spec forbids)
            problems = [p for p in problems if p.path != path]
            problems.append(Problem(line_no, path, found.message))
            named.add(path)
    for finding in capabilities.check(body, url):
        message, severity = finding.message, finding.severity
        if service is not None:
            message += f" (on {service} the model may be named otherwise: not enforced)"
            severity = WARNING
        problems.append(Problem(line_no, format_path(("body", *finding.path)), message, severity))
    return problems


def _api_rules(body: dict, url: str, line_no: int) -> list[Problem]:
    """Rules the API enforces that neither the SDK's types nor the spec's schemas carry."""
    problems: list[Problem] = _range_checks(body, url, line_no)
    model = body.get("model")
    if isinstance(model, str) and not model.strip():
        problems.append(Problem(line_no, "body.model", "cannot be empty: name a model"))
    if url == EMBEDDINGS:
        problems += _check_embedding_input(body.get("input"), line_no)
    if url == RESPONSES:
        problems += _empty_contents(body.get("input"), line_no)
    for path, image_url in _image_urls(body):
        message = _image_url_problem(image_url)
        if message:
            problems.append(Problem(line_no, path, message))
    return problems


def _range_checks(body: dict, url: str, line_no: int) -> list[Problem]:
    problems = []
    for key, (low, high) in RANGES.get(url, {}).items():
        value = body.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or low <= value <= high:
            continue
        bounds = f"at least {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
        problems.append(Problem(line_no, f"body.{key}", f"must be {bounds}, got {quoted(value)}"))
    bias = body.get("logit_bias")
    if isinstance(bias, dict):
        low, high = LOGIT_BIAS
        for token, value in bias.items():
            if isinstance(value, int | float) and not low <= value <= high:
                problems.append(
                    Problem(
                        line_no,
                        f"body.logit_bias.{token}",
                        f"must be from {low} to {high}, got {quoted(value)}",
                    )
                )
    return problems


def _empty_contents(items: Any, line_no: int) -> list[Problem]:
    """A Responses message with `content: []`: the API refuses it (the schema has no minimum)."""
    if not isinstance(items, list):
        return []
    return [
        Problem(line_no, f"body.input[{i}].content", "cannot be empty: give at least one part")
        for i, item in enumerate(items)
        if isinstance(item, dict) and item.get("content") == [] and item.get("role") != "assistant"
    ]


def _check_embedding_input(value: Any, line_no: int) -> list[Problem]:
    if value == "" or (isinstance(value, list) and not value):
        return [Problem(line_no, "body.input", "cannot be empty")]
    if isinstance(value, list):
        problems = []
        if len(value) > MAX_EMBEDDING_ARRAY:
            problems.append(
                Problem(
                    line_no,
                    "body.input",
                    f"at most {MAX_EMBEDDING_ARRAY:,} inputs a request, got {len(value):,}",
                )
            )
        problems += [
            Problem(line_no, f"body.input[{i}]", "cannot be empty")
            for i, item in enumerate(value)
            if item == "" or item == []
        ]
        return problems
    return []


def embedding_inputs(body: Any) -> int:
    """How many inputs an embeddings body asks for (the batch limit counts these)."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1 if value else 0


def _image_urls(body: dict) -> list[tuple[str, Any]]:
    """(path, url) of every image in chat messages and Responses input items."""
    found = []
    for key in ("messages", "input"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    continue
                where = f"body.{key}[{i}].content[{j}]"
                image = part.get("image_url")
                if part.get("type") == "image_url" and isinstance(image, dict):
                    found.append((f"{where}.image_url.url", image.get("url")))
                elif part.get("type") == "input_image" and isinstance(image, str):
                    found.append((f"{where}.image_url", image))
    return found


_DATA_URL = re.compile(r"data:([\w/+.-]+);base64,", re.IGNORECASE)
_WEB_URL = re.compile(r"https?://", re.IGNORECASE)  # schemes are case-insensitive (RFC 3986)


def _image_url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return None  # the type check has said so already
    if _WEB_URL.match(url):
        return None
    match = _DATA_URL.match(url)
    if url[:5].lower() == "data:":
        if not match:
            return "a data: URL must look like data:image/png;base64,<data>"
        if match.group(1).lower() not in IMAGE_MIME:
            return f"images must be PNG, JPEG, GIF or WebP, not {match.group(1)}"
        try:
            base64.b64decode(url[match.end() : match.end() + 4096 * 4], validate=True)
        except (binascii.Error, ValueError):
            return "the data: URL's base64 data is damaged"
        return None
    return (
        "an image URL must be http(s):// or a data: URL; the API cannot read local files "
        "(make-batch-file embeds local images as data: URLs)"
    )
