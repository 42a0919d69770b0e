"""Where custom_id hashes would go in the index's sorted high halves, found through a table of
buckets instead of a binary search over all of them.

The index looks up every row of the table (and of the responses file) by the high half of its
custom_id's XXH3-128: a binary search of a million sorted values is twenty steps, most of them
cache misses, ~0.2 CPU s per million lookups. The hashes are spread evenly, so their top bits
say where a value is within a few places: `starts[b]` is where the values whose top bits are `b`
begin (about four values a bucket), and a short binary search (all keys together, numpy) inside
the bucket finishes the job. The answer is numpy's `searchsorted(his, keys, side="left")`,
exactly, for any values (a test holds the two together); only the speed needs them spread.
"""

from __future__ import annotations

from typing import Any

_PER_BUCKET = 4  # values per bucket on average (a table of a quarter as many numbers)


class HashSearch:
    """searchsorted(his, keys) of sorted uint64 values `his`, a bucket table first."""

    def __init__(self, his: Any) -> None:
        import numpy as np

        self._his = his
        bits = max((len(his) // _PER_BUCKET).bit_length(), 0)
        self._shift = np.uint64(64 - bits)
        kind = np.uint32 if len(his) <= np.iinfo(np.uint32).max else np.int64
        self._starts = np.zeros((1 << bits) + 1, dtype=kind)
        if len(his):  # 64-bit shifts by 64 are undefined: with one bucket, all of them
            top = (his >> self._shift) if bits else np.zeros(len(his), dtype=np.intp)
            counts = np.bincount(top.astype(np.intp), minlength=1 << bits)
            np.cumsum(counts, out=self._starts[1:])

    def left(self, keys: Any) -> Any:
        """The place of each of `keys` (uint64) in the sorted values: the first value not less
        than it (len(values) when every value is less), as intp."""
        import numpy as np

        keys = np.asarray(keys, dtype=np.uint64)
        his, starts = self._his, self._starts
        if len(starts) == 2:
            bucket = np.zeros(len(keys), dtype=np.intp)
        else:
            bucket = (keys >> self._shift).astype(np.intp)
        lo = starts[bucket].astype(np.intp)
        hi = starts[bucket + 1].astype(np.intp)
        last = max(len(his) - 1, 0)
        while True:  # the answer lies in [lo, hi]: halve every key's range at once
            active = lo < hi
            if not active.any():
                return lo
            mid = (lo + hi) >> 1
            np.minimum(mid, last, out=mid)  # keys already done may point past the end
            less = his[mid] < keys
            lo = np.where(active & less, mid + 1, lo)
            hi = np.where(active & ~less, mid, hi)
