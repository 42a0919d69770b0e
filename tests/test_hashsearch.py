"""results/hashsearch.py finds what numpy's searchsorted finds (side left), for any sorted
values: spread like hashes or crowded into a few buckets, with runs of equal values (the high
halves two custom_ids share: ResultIndex.found walks the run from its first place), keys
between, before and after them, 0 and 2**64 - 1, and tables of 0 to a few hundred values."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_batch.results.hashsearch import HashSearch

TOP = 2**64 - 1
EDGES = [0, 1, TOP - 1, TOP, 1 << 63, (1 << 63) - 1]


@st.composite
def values_and_keys(draw: Any) -> tuple[Any, Any]:
    """Sorted uint64 values and keys: spread, crowded (a few large values) or repeated."""
    kind = draw(st.sampled_from(["spread", "crowded", "edges"]))
    size = draw(st.integers(0, 300))
    if kind == "spread":
        pool = st.integers(0, TOP)
    elif kind == "crowded":
        pool = st.integers(0, 5).map(lambda v: v << 61)  # many equal high halves
    else:
        pool = st.sampled_from(EDGES)
    values = draw(st.lists(pool, min_size=size, max_size=size))
    picked = st.sampled_from(values) if values else pool
    keys = draw(st.lists(st.one_of(pool, picked, st.sampled_from(EDGES)), max_size=60))
    return np.sort(np.array(values, dtype=np.uint64)), np.array(keys, dtype=np.uint64)


@settings(max_examples=300, deadline=None)
@given(pair=values_and_keys())
def test_the_place_of_each_key_is_numpys(pair: tuple[Any, Any]) -> None:
    values, keys = pair
    found = HashSearch(values).left(keys)
    assert found.tolist() == np.searchsorted(values, keys, side="left").tolist()


def test_a_million_spread_values_and_keys_from_them_and_between() -> None:
    rng = np.random.default_rng(7)
    values = np.sort(rng.integers(0, TOP, 1 << 20, dtype=np.uint64, endpoint=True))
    values[1000:1010] = values[1000]  # one run of equal values
    keys = np.concatenate(
        [rng.choice(values, 5000), rng.integers(0, TOP, 5000, dtype=np.uint64, endpoint=True),
         np.array(EDGES, dtype=np.uint64), values[1000:1001]]
    )  # fmt: skip
    assert np.array_equal(HashSearch(values).left(keys), np.searchsorted(values, keys))
