"""What each model can do, so a request that asks a model for what it cannot do is refused before
it is paid for: structured outputs, JSON mode, image input, which endpoints, the Batch API,
output token limits and reasoning parameters.

The table is dated like the price table beside it (`prices.py`); a model it does not know is
a warning, never an error (a new model is not a mistake). Dated snapshots and fine-tunes take
their family's row (`models.resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from openai_batch.errors import quoted
from openai_batch.estimate.models import resolve
from openai_batch.requestfile.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES
from openai_batch.requestfile.problems import ERROR, WARNING

CAPABILITIES_AS_OF = "2026-03-01"
CAPABILITIES_SOURCE = "https://platform.openai.com/docs/models (each model's page)"

_TEXT = frozenset({CHAT, RESPONSES})


@dataclass(frozen=True)
class Model:
    """One model family's row. `reasoning`: takes reasoning_effort / reasoning (and then, in chat,
    max_completion_tokens rather than max_tokens); `fixed_sampling`: only the default
    temperature and top_p."""

    endpoints: frozenset[str] = _TEXT
    structured: bool = True  # json_schema response formats
    json_mode: bool = True  # {"type": "json_object"}
    images: bool = True
    reasoning: bool = False
    fixed_sampling: bool = False
    max_output: int | None = None
    dimensions: bool = False  # embeddings: the dimensions parameter
    batch: bool = True


_REASONING: dict[str, Any] = {"reasoning": True, "fixed_sampling": True}
MODELS: dict[str, Model] = {
    "gpt-5": Model(max_output=128_000, **_REASONING),
    "gpt-5-mini": Model(max_output=128_000, **_REASONING),
    "gpt-5-nano": Model(max_output=128_000, **_REASONING),
    "gpt-5.1": Model(max_output=128_000, reasoning=True),
    "gpt-5-chat": Model(max_output=16_384),
    "gpt-4.1": Model(max_output=32_768),
    "gpt-4.1-mini": Model(max_output=32_768),
    "gpt-4.1-nano": Model(max_output=32_768),
    "gpt-4o": Model(max_output=16_384),
    "gpt-4o-2024-05-13": Model(max_output=4_096, structured=False),
    "gpt-4o-mini": Model(max_output=16_384),
    "o1": Model(max_output=100_000, **_REASONING),
    "o3": Model(max_output=100_000, **_REASONING),
    "o3-mini": Model(max_output=100_000, images=False, **_REASONING),
    "o4-mini": Model(max_output=100_000, **_REASONING),
    "gpt-4-turbo": Model(max_output=4_096, structured=False),
    "gpt-4": Model(max_output=8_192, structured=False, json_mode=False, images=False),
    "gpt-3.5-turbo": Model(max_output=4_096, structured=False, images=False),
    "gpt-3.5-turbo-instruct": Model(
        endpoints=frozenset({COMPLETIONS}), structured=False, images=False, max_output=4_096
    ),
    "davinci-002": Model(endpoints=frozenset({COMPLETIONS}), structured=False, images=False),
    "babbage-002": Model(endpoints=frozenset({COMPLETIONS}), structured=False, images=False),
    "text-embedding-3-small": Model(endpoints=frozenset({EMBEDDINGS}), dimensions=True),
    "text-embedding-3-large": Model(endpoints=frozenset({EMBEDDINGS}), dimensions=True),
    "text-embedding-ada-002": Model(endpoints=frozenset({EMBEDDINGS})),
    "omni-moderation-latest": Model(endpoints=frozenset({MODERATIONS})),
    "text-moderation-latest": Model(endpoints=frozenset({MODERATIONS}), images=False),
    "gpt-realtime": Model(endpoints=frozenset(), batch=False),
    "gpt-4o-realtime-preview": Model(endpoints=frozenset(), batch=False),
    "gpt-4o-mini-realtime-preview": Model(endpoints=frozenset(), batch=False),
}
# What to suggest instead, per need.
_SUGGEST = {
    CHAT: "gpt-4o-mini",
    RESPONSES: "gpt-4o-mini",
    EMBEDDINGS: "text-embedding-3-small",
    COMPLETIONS: "gpt-3.5-turbo-instruct",
    MODERATIONS: "omni-moderation-latest",
    "structured": "gpt-4o-mini or gpt-4.1-mini",
    "images": "gpt-4o-mini or gpt-4.1-mini",
    "reasoning": "o4-mini or gpt-5-mini",
}


@dataclass(frozen=True)
class Finding:
    """A request asks `path` of a model for what it cannot do (or the model is unknown)."""

    path: tuple[str, ...]
    message: str
    severity: str = ERROR


def lookup(model: Any) -> tuple[str, Model] | None:
    """The table's row for `model` (a dated snapshot or fine-tune takes its family's)."""
    if not isinstance(model, str):
        return None
    name = _family(model)
    return (name, MODELS[name]) if name else None


@lru_cache(maxsize=256)  # a file uses one model on every line
def _family(model: str) -> str | None:
    return resolve(model, MODELS)


def max_output(model: str | None) -> int | None:
    """The most output tokens `model` produces, or None when unknown."""
    found = lookup(model)
    return found[1].max_output if found else None


def check(body: dict[str, Any], url: str) -> list[Finding]:
    """What `body` asks of its model that the model cannot do."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return []
    found = lookup(model)
    if found is None:
        return [
            Finding(
                ("model",),
                f"unknown model {quoted(model)}: what it can do is not checked (the table of model "
                f"capabilities is dated {CAPABILITIES_AS_OF}; check the name)",
                WARNING,
            )
        ]
    name, row = found
    if not row.batch:
        return [Finding(("model",), f"{name} is not available in the Batch API")]
    if url not in row.endpoints:
        return [
            Finding(
                ("model",),
                f"{name} does not serve {url}: use a model that does, e.g. {_SUGGEST[url]}",
            )
        ]
    return [
        *_structured(body, url, name, row),
        *_images(body, name, row),
        *_tokens(body, url, name, row),
        *_reasoning(body, url, name, row),
        *_embeddings(body, name, row),
    ]


def _response_format(body: dict[str, Any], url: str) -> tuple[tuple[str, ...], Any]:
    if url == RESPONSES:
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        return ("text", "format", "type"), fmt.get("type") if isinstance(fmt, dict) else None
    fmt = body.get("response_format")
    return ("response_format", "type"), fmt.get("type") if isinstance(fmt, dict) else None


def _structured(body: dict[str, Any], url: str, name: str, row: Model) -> list[Finding]:
    path, kind = _response_format(body, url)
    if kind == "json_schema" and not row.structured:
        fix = f"use a model that does (e.g. {_SUGGEST['structured']})"
        if row.json_mode:
            fix += ', or {"type": "json_object"} (valid JSON, but the schema is not enforced)'
        return [Finding(path, f"{name} does not support structured outputs (json_schema): {fix}")]
    if kind == "json_object" and not row.json_mode:
        return [
            Finding(
                path,
                f"{name} does not support JSON mode (json_object): use a model that does "
                f"(e.g. {_SUGGEST['structured']})",
            )
        ]
    return []


def _images(body: dict[str, Any], name: str, row: Model) -> list[Finding]:
    if row.images:
        return []
    for path in _image_parts(body):
        return [
            Finding(
                path,
                f"{name} does not accept image input: use a model that does "
                f"(e.g. {_SUGGEST['images']})",
            )
        ]
    return []


def _image_parts(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Paths of the image parts in chat messages, Responses input and moderation input."""
    found: list[tuple[Any, ...]] = []
    for key in ("messages", "input"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            content = item.get("content") if isinstance(item, dict) else None
            if isinstance(content, list):
                found += [(key, i, "content", j) for j, p in enumerate(content) if _is_image(p)]
            elif _is_image(item):
                found.append((key, i))
    return found


def _is_image(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in ("image_url", "input_image")


def _tokens(body: dict[str, Any], url: str, name: str, row: Model) -> list[Finding]:
    out = []
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if row.max_output is not None and value > row.max_output:
            out.append(
                Finding(
                    (key,),
                    f"{name} writes at most {row.max_output:,} output tokens, got {value:,}",
                )
            )
        if key == "max_tokens" and url == CHAT and row.reasoning:
            out.append(
                Finding(
                    (key,),
                    f"{name} does not take max_tokens: use max_completion_tokens (it also "
                    "counts the reasoning tokens)",
                )
            )
    return out


def _reasoning(body: dict[str, Any], url: str, name: str, row: Model) -> list[Finding]:
    out = []
    key = "reasoning" if url == RESPONSES else "reasoning_effort"
    if not row.reasoning and body.get(key) is not None:
        out.append(
            Finding(
                (key,),
                f"{name} is not a reasoning model: remove {key}, or use one that is "
                f"(e.g. {_SUGGEST['reasoning']})",
            )
        )
    if row.fixed_sampling:
        for knob in ("temperature", "top_p"):
            value = body.get(knob)
            if isinstance(value, int | float) and not isinstance(value, bool) and value != 1:
                out.append(
                    Finding(
                        (knob,),
                        f"{name} only supports the default {knob} (1): remove it, or use a "
                        f"model that takes it (e.g. gpt-4.1-mini)",
                    )
                )
    return out


def _embeddings(body: dict[str, Any], name: str, row: Model) -> list[Finding]:
    if body.get("dimensions") is not None and EMBEDDINGS in row.endpoints and not row.dimensions:
        return [
            Finding(
                ("dimensions",),
                f"{name} does not take dimensions: remove it, or use text-embedding-3-small "
                "or text-embedding-3-large",
            )
        ]
    return []
