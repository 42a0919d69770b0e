"""How many tokens one request costs: its prompt, counted offline the way the API counts it
(chat: 3 per message + role + text + images, 3 for the reply), and the most output it can be
billed for (max_tokens, or the model's limit). `cost.py` adds these up over a file.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from openai_batch.errors import quoted
from openai_batch.estimate import images_tokens, prices, tokens
from openai_batch.requestfile.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES

PER_MESSAGE = 3  # <|start|>{role}...<|end|> framing around every chat message
PER_NAME = 1
REPLY_PRIMING = 3  # <|start|>assistant<|message|> before the answer
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # legacy /v1/completions default


class Notes:
    """Assumptions and warnings, each said once with how often it applied."""

    def __init__(self) -> None:
        self.assumptions: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()

    def assume(self, message: str) -> None:
        self.assumptions[message] += 1

    def warn(self, message: str) -> None:
        self.warnings[message] += 1

    @staticmethod
    def render(counter: Counter[str], counts: bool = True) -> list[str]:
        """Messages, with how often they applied (not when only a sample was looked at)."""
        return [m if n == 1 or not counts else f"{m} ({n:,} times)" for m, n in counter.items()]


class PromptCounter:
    """Counts the prompt tokens of one request body for one model."""

    def __init__(
        self,
        model: str,
        notes: Notes,
        image_size: tuple[int, int] | None = None,
        base_dir: str | None = None,
    ) -> None:
        self.model = model
        self.image_size = image_size
        self.base_dir = base_dir
        self.notes = notes
        self.encoding, known = tokens.encoding_name_for_model(model)
        if not known and model:
            notes.assume(f"model {quoted(model)} is not known: counted with {self.encoding}")
        self.image_rule, known_rule = images_tokens.rule_for_model(model)
        self.image_rule_known = known_rule

    def text(self, value: Any) -> int:
        if isinstance(value, str):
            return tokens.count_tokens(value, self.encoding)
        if value is None:
            return 0
        return tokens.count_tokens(json.dumps(value, ensure_ascii=False), self.encoding)

    def approx(self, value: Any, what: str) -> int:
        """Definitions the API renders in its own way (tools, schemas): their JSON text."""
        self.notes.assume(f"{what} counted approximately, as their JSON text")
        return self.text(value)

    def image(self, url: Any, detail: Any) -> int:
        rule = self.image_rule
        if not self.image_rule_known:
            self.notes.assume(f"images for model {quoted(self.model)} counted with the gpt-4o rule")
        detail = detail if detail in ("low", "high", "auto") else "auto"
        if not isinstance(url, str) or not url:
            return images_tokens.max_image_tokens(rule, detail)
        if url.startswith(("http://", "https://")):
            if self.image_size:
                return images_tokens.image_tokens(rule, *self.image_size, detail)
            most = images_tokens.max_image_tokens(rule, detail)
            self.notes.warn(
                f"remote images cannot be measured offline: assumed the most one can cost "
                f"({most:,} tokens at {detail} detail); pass --image-size WxH for exact counts"
            )
            return most
        size = images_tokens.measure(url, self.base_dir)
        if size is None:
            self.notes.warn("an image could not be read: assumed the most one can cost")
            return images_tokens.max_image_tokens(rule, detail)
        return images_tokens.image_tokens(rule, *size, detail)

    # -- chat completions -------------------------------------------------------------------

    def chat(self, body: dict) -> int:
        total = REPLY_PRIMING
        for message in _as_list(body.get("messages")):
            if isinstance(message, dict):
                total += self.chat_message(message)
        for key, what in (("tools", "tool definitions"), ("functions", "function definitions")):
            if body.get(key):
                total += self.approx(body[key], what)
        total += self.response_format(body.get("response_format"))
        return total

    def chat_message(self, message: dict) -> int:
        total = PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += self.content(value)
            elif key == "name":
                total += self.text(value) + PER_NAME
            elif key == "role":
                total += self.text(value)
            elif value is not None:
                total += self.approx(value, "tool calls and other message fields")
        return total

    def content(self, content: Any) -> int:
        if isinstance(content, str) or content is None:
            return self.text(content)
        total = 0
        for part in _as_list(content):
            total += self.part(part) if isinstance(part, dict) else self.text(part)
        return total

    def part(self, part: dict) -> int:
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            return self.text(part.get("text"))
        if kind == "refusal":
            return self.text(part.get("refusal"))
        if kind == "image_url":
            image = part.get("image_url")
            if isinstance(image, dict):
                return self.image(image.get("url"), image.get("detail"))
            return self.image(image, None)
        if kind == "input_image":
            if part.get("file_id") and not part.get("image_url"):
                self.notes.warn("images given by file_id cannot be measured: assumed the most")
            return self.image(part.get("image_url"), part.get("detail"))
        self.notes.warn(f"{kind or 'untyped'} content parts are not counted")
        return 0

    def response_format(self, fmt: Any) -> int:
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return self.approx(fmt.get("json_schema") or fmt, "structured-output schemas")
        return 0

    # -- responses ----------------------------------------------------------------------------

    def responses(self, body: dict) -> int:
        self.notes.assume("Responses API input counted with the chat-completions rules")
        total = REPLY_PRIMING
        if body.get("instructions"):
            total += PER_MESSAGE + self.text("developer") + self.text(body["instructions"])
        items = body.get("input")
        if isinstance(items, str):
            total += PER_MESSAGE + self.text("user") + self.text(items)
        else:
            for item in _as_list(items):
                if isinstance(item, dict) and "role" in item:
                    total += self.chat_message({k: v for k, v in item.items() if k != "type"})
                elif isinstance(item, dict) and item.get("type") == "function_call_output":
                    total += PER_MESSAGE + self.text(item.get("output"))
                elif item is not None:
                    total += self.approx(item, "non-message input items")
        if body.get("tools"):
            total += self.approx(body["tools"], "tool definitions")
        text = body.get("text")
        if isinstance(text, dict):
            fmt = text.get("format")
            if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
                total += self.approx(fmt.get("schema"), "structured-output schemas")
        return total

    # -- embeddings, completions, moderations -------------------------------------------------

    def plain_inputs(self, value: Any) -> tuple[int, int]:
        """(tokens, number of inputs) for a str, list of str, token list or list of lists."""
        if isinstance(value, str):
            return self.text(value), 1
        items = _as_list(value)
        if items and all(isinstance(i, int) for i in items):
            return len(items), 1
        total = 0
        for item in items:
            if isinstance(item, str):
                total += self.text(item)
            elif isinstance(item, list):
                total += len(item)
            elif isinstance(item, dict):  # moderation parts: text and image_url
                total += self.text(item.get("text")) if item.get("type") == "text" else 0
        return total, len(items)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def output_ceiling(url: str, body: dict, model: str, notes: Notes) -> tuple[int, int]:
    """(most output tokens the request can be billed for, number of choices it asks for)."""
    if url in (EMBEDDINGS, MODERATIONS):
        return 0, 0
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "n"):
        if key in body and body[key] is not None and _positive_int(body[key]) is None:
            notes.warn(
                f"{key} {quoted(body[key])} is not a positive whole number: the API rejects such "
                "requests (run utils validate); it is ignored here"
            )
    limit: int | None
    if url == COMPLETIONS:
        most = _positive_int(body.get("max_tokens")) or COMPLETIONS_DEFAULT_MAX_TOKENS
        choices = max(_positive_int(body.get("n")) or 1, _positive_int(body.get("best_of")) or 1)
        return most * choices, choices
    if url == RESPONSES:
        limit = _positive_int(body.get("max_output_tokens"))
        choices = 1
    else:
        limit = _positive_int(body.get("max_completion_tokens")) or _positive_int(
            body.get("max_tokens")
        )
        choices = _positive_int(body.get("n")) or 1
    if limit is None:
        limit = prices.max_output_tokens(model)
        if limit is None:
            notes.warn(
                f"requests without max_tokens for model {quoted(model)}, whose output limit is not "
                "known: their output ceiling is not counted"
            )
            return 0, choices
        notes.assume(f"requests without max_tokens may produce up to {limit:,} tokens ({model})")
    return limit * choices, choices


def prompt_tokens(counter: PromptCounter, url: str, body: dict, notes: Notes) -> int:
    if url == CHAT:
        return counter.chat(body)
    if url == RESPONSES:
        return counter.responses(body)
    if url == EMBEDDINGS:
        return counter.plain_inputs(body.get("input"))[0]
    if url == COMPLETIONS:
        return counter.plain_inputs(body.get("prompt"))[0]
    if url == MODERATIONS:
        return counter.plain_inputs(body.get("input"))[0]
    notes.warn(f"requests to {url} are not estimated (not a token-priced endpoint)")
    return 0
