"""What a request file will cost, before paying for it: tokens in, ceiling out, dollars.

One request's prompt tokens and output ceiling are `counting.py`'s; this module adds them up
per model and, with `expected_output`, a realistic output figure. Costs use the bundled batch
price table. For big files `sample=N` tokenizes a uniform random sample of N requests and scales up.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openai_batch.errors import quoted
from openai_batch.estimate import prices
from openai_batch.estimate.counting import Notes, PromptCounter, output_ceiling, prompt_tokens
from openai_batch.estimate.options import EstimateOptions
from openai_batch.requestfile.endpoints import CHAT, versioned
from openai_batch.requestfile.kinds import CUT_SHORT, check_request_path
from openai_batch.requestfile.read import read_lines
from openai_batch.ui.commandline import command
from openai_batch.ui.console import plural


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


def estimate_lines(
    lines: Iterable[dict],
    options: EstimateOptions | None = None,
    *,
    base_dir: str | Path | None = None,
    url_hint: str = CHAT,
    scale_to: int | None = None,
) -> Estimate:
    """Estimate tokens and cost for request lines ({custom_id, method, url, body} dicts).

    `options.sample=N` tokenizes only a random N of the requests (every request still counts
    toward requests and the output ceiling); `options.expected_output` is tokens per request.
    `scale_to=M` says the lines are a uniform sample of M requests (read without scanning a
    huge file).
    """
    return _estimate(
        enumerate(lines, start=1),
        options or EstimateOptions(),
        base_dir=base_dir,
        url_hint=url_hint,
        scale_to=scale_to,
    )


def _estimate(
    numbered: Iterable[tuple[int, dict]],
    opts: EstimateOptions,
    *,
    base_dir: str | Path | None,
    url_hint: str,
    scale_to: int | None = None,
) -> Estimate:
    """estimate_lines over (line number, request) pairs, so files report their real lines."""
    opts.checked()
    image_size = opts.image_dimensions()
    where = str(base_dir) if base_dir is not None else None
    model_hint, sample, expected_output = opts.model_hint, opts.sample, opts.expected_output
    notes = Notes()
    totals: dict[str, ModelTotals] = {}
    reservoir = _Reservoir(sample)
    per_request: list[RequestCount] = []
    counters: dict[str, PromptCounter] = {}
    for line_no, obj in numbered:
        body: dict = obj["body"] if isinstance(obj.get("body"), dict) else obj
        url: str = obj["url"] if isinstance(obj.get("url"), str) else url_hint
        url = str(versioned(url))  # Azure's "/chat/completions"
        model: str = body["model"] if isinstance(body.get("model"), str) else (model_hint or "")
        acc = totals.setdefault(model, ModelTotals())
        acc.requests += 1
        ceiling, choices = output_ceiling(url, body, model, notes)
        acc.max_output_tokens += ceiling
        expected = None
        if expected_output is not None:
            expected = expected_output * choices
            expected = min(expected, ceiling) if ceiling else expected
            acc.expected_output_tokens += expected
        slot = reservoir.slot()
        if slot is None:
            continue
        counter = counters.get(model) or counters.setdefault(
            model, PromptCounter(model, notes, image_size, where)
        )
        prompt = prompt_tokens(counter, url, body, notes)
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


def _finish(
    totals: dict[str, ModelTotals], reservoir: _Reservoir, opts: EstimateOptions, notes: Notes
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
    est.assumptions = Notes.render(notes.assumptions, counts=not est.sampled)
    est.warnings = Notes.render(notes.warnings, counts=not est.sampled)
    return est


def _price(est: Estimate, opts: EstimateOptions, notes: Notes) -> None:
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
                f"no batch price known for model {quoted(name or '(none)')}: cost not computed; "
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
    """(line number, request) of a request file; lines that are not requests are skipped,
    each said in the reader's words (one: where and why; more: how many, and the first)."""
    bad = 0
    first = (0, "")  # the first skipped line: its number, and why
    for line in read_lines(path):
        if line.empty:
            continue
        if line.request is not None:
            yield line.number, line.request
        elif line.problem == CUT_SHORT:
            notes.append(f"{path.name}: line {line.number} was skipped: {CUT_SHORT}")
        else:
            bad += 1
            first = first if first[0] else (line.number, line.problem or "not a JSON object")
    validate = command(["utils", "validate"])
    if bad == 1:
        notes.append(f"{path.name}: line {first[0]} was skipped: {first[1]} (run `{validate}`)")
    elif bad:
        notes.append(
            f"{path.name}: {bad:,} lines that are not requests were skipped (line {first[0]}: "
            f"{first[1]}; run `{validate}`)"
        )


def estimate_file(path: str | Path, options: EstimateOptions | None = None) -> Estimate:
    """Estimate one request file."""
    path = Path(path)
    check_request_path(path)
    skipped: list[str] = []
    opts = options or EstimateOptions()
    est = _estimate(_read_lines(path, skipped), opts, base_dir=path.parent, url_hint=CHAT)
    est.path = str(path)
    est.warnings = skipped + est.warnings
    return est


def estimate_files(paths: Iterable[str | Path], options: EstimateOptions | None = None) -> Estimate:
    """Per-file estimates and their total (in `.files`)."""
    files = [estimate_file(p, options) for p in paths]
    return combine(files, expected=options is not None and options.expected_output is not None)


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
