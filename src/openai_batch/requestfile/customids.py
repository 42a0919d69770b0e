"""The natural order of custom_ids: digit runs compare as numbers, so id_2 comes before id_10.

Results are shown in this order when no request file gives theirs (a batch's output comes in
no particular order); the index and the merge both sort by it.
"""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"([0-9]+)")


def natural_key(custom_id: str) -> tuple[Any, ...]:
    """Sort key where digit runs compare as numbers: id_2 < id_10."""
    parts = _DIGITS.split(custom_id)  # odd positions are the digit runs
    return tuple((0, int(p), p) if i % 2 else (1, 0, p) for i, p in enumerate(parts))
