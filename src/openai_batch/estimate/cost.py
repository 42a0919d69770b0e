"""What a request file will cost, before paying for it: tokens in, ceiling out, dollars.

Prompt tokens are counted offline the way the API counts them (chat: 3 per message + role +
text + images, 3 for the reply). Output has a hard ceiling (max_tokens, or the model's limit)
and, with `expected_output`, a realistic figure. Costs use the bundled batch price table.
For big files `sample=N` tokenizes a uniform random sample of N requests and scales up.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError
from openai_batch.estimate import images_tokens, prices, tokens
from openai_batch.requestfile import limits as requestfile_limits
from openai_batch.requestfile.kinds import CUT_SHORT, check_request_path, cut_short
from openai_batch.ui.console import plural

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
MODERATIONS = "/v1/moderations"

PER_MESSAGE = 3  # <|start|>{role}...<|end|> framing around every chat message
PER_NAME = 1
REPLY_PRIMING = 3  # <|start|>assistant<|message|> before the answer
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # legacy /v1/completions default


@dataclass
class RequestCount:
    """One request's figures (exact runs only)."""

    line: int
    custom_id: str | None
    prompt_tokens: int
    max_output_tokens: int
    expected_output_tokens: int | None = None


@dataclass
class ModelTotals:
    """Figures for the requests of one model (costs are priced per model)."""

    requests: int = 0
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    expected_output_tokens: int = 0
    price_input: float | None = None
    price_output: float | None = None
    price_source: str | None = None
    # Internal: prompt tokens of the requests that were actually tokenized.
    _counted_requests: int = field(default=0, repr=False)
    _counted_prompt: int = field(default=0, repr=False)


@dataclass
class Estimate:
    """Tokens and cost of a set of requests; `files` holds per-file estimates for a total."""

    requests: int = 0
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    expected_output_tokens: int | None = None
    estimated_cost_usd: float | None = None
    cost_basis: str = "output ceiling"
    input_cost_usd: float | None = None
    max_cost_usd: float | None = None
    expected_cost_usd: float | None = None
    model: str | None = None
    models: dict[str, ModelTotals] = field(default_factory=dict)
    sampled: bool = False
    sampled_requests: int = 0
    prices_as_of: str = prices.PRICES_AS_OF
    path: str | None = None
    per_request: list[RequestCount] | None = None
    files: list[Estimate] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, *, per_request: bool = False) -> dict[str, Any]:
        """Plain JSON-ready data; the per-request list only when asked (it can be long)."""
        out: dict[str, Any] = {
            k: v for k, v in asdict(self).items() if k not in ("per_request", "files", "models")
        }
        out["models"] = {
            name: {k: v for k, v in asdict(t).items() if not k.startswith("_")}
            for name, t in self.models.items()
        }
        if per_request and self.per_request is not None:
            out["per_request"] = [asdict(r) for r in self.per_request]
        if self.files:
            out["files"] = [f.to_dict(per_request=per_request) for f in self.files]
        return out


class _Notes:
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


@dataclass
class _Options:
    model_hint: str | None
    image_size: tuple[int, int] | None
    expected_output: int | None
    price_input: float | None
    price_output: float | None
    base_dir: str | None


class _Counter:
    """Counts the prompt tokens of one request body for one model."""

    def __init__(self, model: str, opts: _Options, notes: _Notes) -> None:
        self.model = model
        self.opts = opts
        self.notes = notes
        self.encoding, known = tokens.encoding_name_for_model(model)
        if not known and model:
            notes.assume(f"model {model!r} is not known: counted with {self.encoding}")
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
            self.notes.assume(f"images for model {self.model!r} counted with the gpt-4o rule")
        detail = detail if detail in ("low", "high", "auto") else "auto"
        if not isinstance(url, str) or not url:
            return images_tokens.max_image_tokens(rule, detail)
        if url.startswith(("http://", "https://")):
            if self.opts.image_size:
                return images_tokens.image_tokens(rule, *self.opts.image_size, detail)
            most = images_tokens.max_image_tokens(rule, detail)
            self.notes.warn(
                f"remote images cannot be measured offline: assumed the most one can cost "
                f"({most:,} tokens at {detail} detail); pass --image-size WxH for exact counts"
            )
            return most
        size = images_tokens.measure(url, self.opts.base_dir)
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


def _output_ceiling(url: str, body: dict, model: str, notes: _Notes) -> tuple[int, int]:
    """(most output tokens the request can be billed for, number of choices it asks for)."""
    if url in (EMBEDDINGS, MODERATIONS):
        return 0, 0
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "n"):
        if key in body and body[key] is not None and _positive_int(body[key]) is None:
            notes.warn(
                f"{key} {body[key]!r} is not a positive whole number: the API rejects such "
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
                f"requests without max_tokens for model {model!r}, whose output limit is not "
                "known: their output ceiling is not counted"
            )
            return 0, choices
        notes.assume(f"requests without max_tokens may produce up to {limit:,} tokens ({model})")
    return limit * choices, choices


class _Reservoir:
    """A uniform random sample of k (model, tokens) figures; k=None keeps everything."""

    def __init__(self, k: int | None) -> None:
        self.k = k
        self.items: list[tuple[str, int]] = []
        self.seen = 0
        self._rng = random.Random(0)  # the same file gives the same estimate

    def slot(self) -> int | None:
        """Where the next request goes (None: skip it, no need to tokenize it)."""
        self.seen += 1
        if self.k is None or len(self.items) < self.k:
            self.items.append(("", 0))
            return len(self.items) - 1
        j = self._rng.randrange(self.seen)
        return j if j < self.k else None


def _parse_image_size(image_size: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None or isinstance(image_size, tuple):
        return image_size
    try:
        return images_tokens.parse_size(image_size)
    except ValueError:
        raise BatchError(
            f"cannot read image size {image_size!r}.",
            hint="write it as WIDTHxHEIGHT, e.g. 2048x683.",
        ) from None


def estimate_lines(
    lines: Iterable[dict],
    *,
    model_hint: str | None = None,
    image_size: str | tuple[int, int] | None = None,
    expected_output: int | None = None,
    sample: int | None = None,
    price_input: float | None = None,
    price_output: float | None = None,
    base_dir: str | Path | None = None,
    url_hint: str = CHAT,
    scale_to: int | None = None,
) -> Estimate:
    """Estimate tokens and cost for request lines ({custom_id, method, url, body} dicts).

    `sample=N` tokenizes only a random N of the requests (every request still counts toward
    requests and the output ceiling); `expected_output` is tokens per request. `scale_to=M`
    says the lines are a uniform sample of M requests (read without scanning a huge file).
    """
    return _estimate(
        enumerate(lines, start=1),
        scale_to=scale_to,
        model_hint=model_hint,
        image_size=image_size,
        expected_output=expected_output,
        sample=sample,
        price_input=price_input,
        price_output=price_output,
        base_dir=base_dir,
        url_hint=url_hint,
    )


def _estimate(
    numbered: Iterable[tuple[int, dict]],
    *,
    model_hint: str | None,
    image_size: str | tuple[int, int] | None,
    expected_output: int | None,
    sample: int | None,
    price_input: float | None,
    price_output: float | None,
    base_dir: str | Path | None,
    url_hint: str,
    scale_to: int | None = None,
) -> Estimate:
    """estimate_lines over (line number, request) pairs, so files report their real lines."""
    if sample is not None and sample < 1:
        raise BatchError("--sample must be at least 1.")
    if expected_output is not None and expected_output < 0:
        raise BatchError("--expected-output cannot be negative.")
    opts = _Options(
        model_hint=model_hint,
        image_size=_parse_image_size(image_size),
        expected_output=expected_output,
        price_input=price_input,
        price_output=price_output,
        base_dir=str(base_dir) if base_dir is not None else None,
    )
    notes = _Notes()
    totals: dict[str, ModelTotals] = {}
    reservoir = _Reservoir(sample)
    per_request: list[RequestCount] = []
    counters: dict[str, _Counter] = {}
    for line_no, obj in numbered:
        body: dict = obj["body"] if isinstance(obj.get("body"), dict) else obj
        url: str = obj["url"] if isinstance(obj.get("url"), str) else url_hint
        url = str(requestfile_limits.versioned(url))  # Azure's "/chat/completions"
        model: str = body["model"] if isinstance(body.get("model"), str) else (model_hint or "")
        acc = totals.setdefault(model, ModelTotals())
        acc.requests += 1
        ceiling, choices = _output_ceiling(url, body, model, notes)
        acc.max_output_tokens += ceiling
        expected = None
        if expected_output is not None:
            expected = expected_output * choices
            expected = min(expected, ceiling) if ceiling else expected
            acc.expected_output_tokens += expected
        slot = reservoir.slot()
        if slot is None:
            continue
        counter = counters.get(model) or counters.setdefault(model, _Counter(model, opts, notes))
        prompt = _prompt_tokens(counter, url, body, notes)
        reservoir.items[slot] = (model, prompt)
        if sample is None or reservoir.seen <= sample:  # still every request so far
            custom_id = obj.get("custom_id") if isinstance(obj.get("custom_id"), str) else None
            per_request.append(RequestCount(line_no, custom_id, prompt, ceiling, expected))
    for model, prompt in reservoir.items:
        totals[model]._counted_requests += 1
        totals[model]._counted_prompt += prompt
    if scale_to is not None and scale_to > reservoir.seen > 0:
        _scale(totals, scale_to / reservoir.seen)
        reservoir.seen = scale_to
    est = _finish(totals, reservoir, opts, notes)
    est.per_request = per_request if not est.sampled else None
    return est


def _scale(totals: dict[str, ModelTotals], factor: float) -> None:
    """Figures of a uniform sample, scaled up to the whole (requests still add up exactly)."""
    target = round(sum(t.requests for t in totals.values()) * factor)
    for t in totals.values():
        t.requests = round(t.requests * factor)
        t.max_output_tokens = round(t.max_output_tokens * factor)
        t.expected_output_tokens = round(t.expected_output_tokens * factor)
    if totals:
        max(totals.values(), key=lambda t: t.requests).requests += target - sum(
            t.requests for t in totals.values()
        )


def _prompt_tokens(counter: _Counter, url: str, body: dict, notes: _Notes) -> int:
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


def _finish(
    totals: dict[str, ModelTotals], reservoir: _Reservoir, opts: _Options, notes: _Notes
) -> Estimate:
    counted = sum(t._counted_requests for t in totals.values())
    counted_prompt = sum(t._counted_prompt for t in totals.values())
    overall_mean = counted_prompt / counted if counted else 0.0
    for t in totals.values():
        if t._counted_requests == t.requests:
            t.prompt_tokens = t._counted_prompt
        elif t._counted_requests:
            t.prompt_tokens = round(t._counted_prompt / t._counted_requests * t.requests)
        else:
            t.prompt_tokens = round(overall_mean * t.requests)
    est = Estimate(
        requests=sum(t.requests for t in totals.values()),
        prompt_tokens=sum(t.prompt_tokens for t in totals.values()),
        max_output_tokens=sum(t.max_output_tokens for t in totals.values()),
        models=totals,
        sampled=counted < reservoir.seen,
        sampled_requests=counted,
    )
    if opts.expected_output is not None:
        est.expected_output_tokens = sum(t.expected_output_tokens for t in totals.values())
    if est.sampled:
        notes.assume(
            f"prompt tokens scaled up from a random sample of {counted:,} of "
            f"{plural(reservoir.seen, 'request')}"
        )
    _price(est, opts, notes)
    est.assumptions = _Notes.render(notes.assumptions, counts=not est.sampled)
    est.warnings = _Notes.render(notes.warnings, counts=not est.sampled)
    return est


def _price(est: Estimate, opts: _Options, notes: _Notes) -> None:
    """Fill in costs per model; any model without a price leaves the total cost unknown."""
    names = [m for m, t in est.models.items() if t.requests]
    est.model = names[0] if len(names) == 1 else None
    inp = out = ex = 0.0
    known = True
    for name, t in est.models.items():
        bundled = prices.batch_price(name)
        t.price_input = opts.price_input if opts.price_input is not None else _get(bundled, "input")
        t.price_output = (
            opts.price_output if opts.price_output is not None else _get(bundled, "output")
        )
        if opts.price_input is not None or opts.price_output is not None:
            t.price_source = "given"
        elif bundled:
            t.price_source = f"bundled batch price of {bundled.model} ({prices.PRICES_AS_OF})"
        needs_output = t.max_output_tokens > 0
        if t.price_input is None or (needs_output and t.price_output is None):
            known = False
            notes.warn(
                f"no batch price known for model {name or '(none)'!r}: cost not computed; "
                "give --price-input and --price-output (USD per 1M tokens)"
            )
            continue
        pin, pout = t.price_input, t.price_output or 0.0
        inp += t.prompt_tokens * pin / 1e6
        out += t.max_output_tokens * pout / 1e6
        ex += t.expected_output_tokens * pout / 1e6
    if not known or not est.models:
        est.cost_basis = "unknown"
        return
    est.input_cost_usd = round(inp, 12)
    est.max_cost_usd = round(inp + out, 12)
    if est.expected_output_tokens is not None:
        est.expected_cost_usd = round(inp + ex, 12)
        est.estimated_cost_usd = est.expected_cost_usd
        est.cost_basis = "expected output"
    else:
        est.estimated_cost_usd = est.max_cost_usd
        est.cost_basis = "output ceiling"


def _get(price: prices.Price | None, attr: str) -> float | None:
    return getattr(price, attr) if price else None


# -- files --------------------------------------------------------------------------------------


def _read_lines(path: Path, notes: list[str]) -> Iterator[tuple[int, dict]]:
    """(line number, request) of a JSONL file; lines that are not JSON objects are skipped."""
    bad = 0
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                if cut_short(raw.decode("utf-8", errors="replace"), exc):
                    notes.append(f"{path.name}: line {line_no} was skipped: {CUT_SHORT}")
                else:
                    bad += 1
                continue
            except ValueError:
                bad += 1
                continue
            if isinstance(obj, dict):
                yield line_no, obj
            else:
                bad += 1
    if bad:
        notes.append(
            f"{path.name}: {plural(bad, 'line')} not JSON objects, skipped "
            "(run `openai-batch utils validate`)"
        )


_OPTION_NAMES = (
    "model_hint",
    "image_size",
    "expected_output",
    "sample",
    "price_input",
    "price_output",
)


def estimate_file(path: str | Path, **kwargs: Any) -> Estimate:
    """Estimate one request file (same options as `estimate_lines`)."""
    path = Path(path)
    check_request_path(path)
    skipped: list[str] = []
    options: dict[str, Any] = {k: None for k in _OPTION_NAMES}
    options |= {"base_dir": path.parent, "url_hint": CHAT}
    est = _estimate(_read_lines(path, skipped), **(options | kwargs))
    est.path = str(path)
    est.warnings = skipped + est.warnings
    return est


def estimate_files(paths: Iterable[str | Path], **kwargs: Any) -> Estimate:
    """Per-file estimates and their total (in `.files`); options as for `estimate_lines`."""
    files = [estimate_file(p, **kwargs) for p in paths]
    return combine(files, expected=kwargs.get("expected_output") is not None)


def combine(files: list[Estimate], *, expected: bool = False) -> Estimate:
    """The total of several estimates; costs are unknown if any part's cost is."""
    total = Estimate(files=files, sampled=any(f.sampled for f in files))
    for f in files:
        total.requests += f.requests
        total.prompt_tokens += f.prompt_tokens
        total.max_output_tokens += f.max_output_tokens
        total.sampled_requests += f.sampled_requests
        for name, t in f.models.items():
            agg = total.models.setdefault(name, ModelTotals())
            agg.requests += t.requests
            agg.prompt_tokens += t.prompt_tokens
            agg.max_output_tokens += t.max_output_tokens
            agg.expected_output_tokens += t.expected_output_tokens
            agg.price_input, agg.price_output = t.price_input, t.price_output
            agg.price_source = t.price_source
        total.assumptions += [a for a in f.assumptions if a not in total.assumptions]
        total.warnings += [w for w in f.warnings if w not in total.warnings]
    if expected:
        total.expected_output_tokens = sum(f.expected_output_tokens or 0 for f in files)
    names = [m for m, t in total.models.items() if t.requests]
    total.model = names[0] if len(names) == 1 else None
    costs_known = files and all(f.estimated_cost_usd is not None for f in files)
    if costs_known:
        total.input_cost_usd = round(sum(f.input_cost_usd or 0 for f in files), 12)
        total.max_cost_usd = round(sum(f.max_cost_usd or 0 for f in files), 12)
        if expected:
            total.expected_cost_usd = round(sum(f.expected_cost_usd or 0 for f in files), 12)
        total.estimated_cost_usd = total.expected_cost_usd if expected else total.max_cost_usd
        total.cost_basis = "expected output" if expected else "output ceiling"
    else:
        total.cost_basis = "unknown"
    return total


# -- human output -------------------------------------------------------------------------------


def usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if value >= 0.995:
        return f"${value:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(value)))  # two significant digits
    return f"${value:.{decimals}f}"


def summary_line(est: Estimate) -> str:
    """One line for a person, e.g. for make-batch-file's summary."""
    approx = "~" if est.sampled else ""
    parts = [
        plural(est.requests, "request"),
        f"{approx}{plural(est.prompt_tokens, 'prompt token')}",
        f"output ≤ {est.max_output_tokens:,} tokens",
    ]
    if est.expected_output_tokens is not None:
        parts.append(f"~{est.expected_output_tokens:,} output tokens expected")
    if est.estimated_cost_usd is None:
        parts.append("cost unknown (no price for this model: use --price-input/--price-output)")
    elif est.expected_cost_usd is not None:
        parts.append(f"cost ~{usd(est.expected_cost_usd)} (at most {usd(est.max_cost_usd)})")
    else:
        parts.append(f"cost ≤ {usd(est.max_cost_usd)} (input {usd(est.input_cost_usd)})")
    line = " · ".join(parts)
    if est.estimated_cost_usd is not None:
        line += f", batch prices of {prices.PRICES_AS_OF}"
    return line


def table(est: Estimate) -> str:
    """Per-file rows and a total, aligned for a terminal."""
    rows = est.files or [est]
    expected = est.expected_output_tokens is not None
    header = ["file", "requests", "model", "prompt tokens", "output ≤"]
    if expected:
        header += ["output ~", "cost ~"]
    header += ["cost ≤"]
    body = [_row(f, Path(f.path).name if f.path else "-", expected) for f in rows]
    if len(rows) > 1:
        body.append(_row(est, "total", expected))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header, *body]):
        cells = [
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0 or (len(rows) > 1 and n == len(body) - 1):
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _row(est: Estimate, name: str, expected: bool) -> list[str]:
    approx = "~" if est.sampled else ""
    model = est.model or ("mixed" if len(est.models) > 1 else "-")
    row = [name, f"{est.requests:,}", model, f"{approx}{est.prompt_tokens:,}"]
    row.append(f"{est.max_output_tokens:,}")
    if expected:
        row += [f"{est.expected_output_tokens or 0:,}", usd(est.expected_cost_usd)]
    row.append(usd(est.max_cost_usd))
    return row
