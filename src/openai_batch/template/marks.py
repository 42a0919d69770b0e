"""Marks for where placeholders stand in a template while its JSON is parsed.

A template is JSON text with `<<placeholders>>`; to parse it, each placeholder is replaced by a
mark, and after parsing the marks are found again. Marks are characters the template does not
contain (private-use characters, chosen per template), so literal text is never mistaken for one.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class Marks:
    """Characters that mark where placeholders stood while the JSON is parsed: private-use
    characters that the template does not contain, written or escaped, so its literal text can
    never be taken for a mark (no in-band markers)."""

    in_string: str  # "{open}{n}{close}" inside a string
    bare: str  # '"{open}{n}{close}"' where a JSON value goes
    slot: str  # a compiled slot in the dumped JSON
    mark_re: re.Pattern[str]
    bare_re: re.Pattern[str]
    slot_re: re.Pattern[str]

    @classmethod
    def absent_from(cls, text: str) -> Marks:
        used = set(text) | {chr(int(h, 16)) for h in _ESCAPED.findall(text)}
        points = itertools.chain(range(0xE000, 0xF900), range(0xF0000, 0xFFFFE))
        free = (chr(point) for point in points if chr(point) not in used)
        a, b, c, d, e, f = itertools.islice(free, 6)
        return cls(
            in_string=f"{a}{{}}{b}",
            bare=f'"{c}{{}}{d}"',
            slot=f"{e}{{}}{f}",
            mark_re=re.compile(f"{a}(\\d+){b}"),
            bare_re=re.compile(f"^{c}(\\d+){d}$"),
            slot_re=re.compile(f'"{e}(\\d+){f}"'),
        )
