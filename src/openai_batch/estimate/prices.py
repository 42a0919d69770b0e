"""Bundled Batch API prices (USD per 1M tokens), for offline estimates.

Prices change; the table is dated and every estimate says which date it used. Batch prices are
half the standard ones. Users override with --price-input / --price-output.
"""

from __future__ import annotations

from dataclasses import dataclass

from openai_batch.estimate.models import resolve
from openai_batch.validate.capabilities import max_output

PRICES_AS_OF = "2026-03-01"
PRICES_SOURCE = "https://openai.com/api/pricing (Batch column)"


@dataclass(frozen=True)
class Price:
    """Batch price of one model, USD per 1M tokens."""

    model: str
    input: float
    output: float


# model -> (batch input, batch output) USD per 1M tokens.
_BATCH_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (0.625, 5.00),
    "gpt-5.1": (0.625, 5.00),
    "gpt-5-mini": (0.125, 1.00),
    "gpt-5-nano": (0.025, 0.20),
    "gpt-4.1": (1.00, 4.00),
    "gpt-4.1-mini": (0.20, 0.80),
    "gpt-4.1-nano": (0.05, 0.20),
    "gpt-4o": (1.25, 5.00),
    "gpt-4o-2024-05-13": (2.50, 7.50),
    "gpt-4o-mini": (0.075, 0.30),
    "o1": (7.50, 30.00),
    "o3": (1.00, 4.00),
    "o3-mini": (0.55, 2.20),
    "o4-mini": (0.55, 2.20),
    "gpt-4-turbo": (5.00, 15.00),
    "gpt-4": (15.00, 30.00),
    "gpt-3.5-turbo": (0.25, 0.75),
    "text-embedding-3-small": (0.01, 0.0),
    "text-embedding-3-large": (0.065, 0.0),
    "text-embedding-ada-002": (0.05, 0.0),
    "omni-moderation-latest": (0.0, 0.0),
    "text-moderation-latest": (0.0, 0.0),
}


def family(model: str | None) -> str | None:
    """The price table's key for `model` (see `resolve`)."""
    return resolve(model, _BATCH_PRICES)


def batch_price(model: str | None) -> Price | None:
    """The bundled batch price for `model`, or None when the table does not know it.

    Fine-tuned models cost more than their base model, so they have no bundled price.
    """
    if (model or "").strip().lower().startswith("ft:"):
        return None
    key = family(model)
    if key is None:
        return None
    inp, out = _BATCH_PRICES[key]
    return Price(key, inp, out)


def max_output_tokens(model: str | None) -> int | None:
    """The model's own output ceiling, or None when unknown (`capabilities.py` has them)."""
    return max_output(model)


def known_models() -> list[str]:
    return sorted(_BATCH_PRICES)
