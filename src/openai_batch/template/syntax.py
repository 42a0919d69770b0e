"""Which placeholder spelling a template uses: `<<Column>>` or the original tool's `{{Column}}`.

A template is written in one spelling, and its literal text may hold the other's brackets (a
prompt about C++ says `a << 2`; one about Jinja shows `{{ x }}`). So the spelling is chosen by
the placeholders that read as placeholders, never by a bracket on its own: first by how many name
a column (or `row`), then by how many close on their line. A tie keeps `<< >>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Syntax:
    """The delimiters of one placeholder spelling."""

    name: str
    var: tuple[str, str]
    block: tuple[str, str]
    comment: tuple[str, str]


MODERN = Syntax("<< >>", ("<<", ">>"), ("<%", "%>"), ("<#", "#>"))
LEGACY = Syntax("{{ }}", ("{{", "}}"), ("{%", "%}"), ("{#", "#}"))


def choose_syntax(text: str, columns: Sequence[str]) -> Syntax:
    """The spelling whose placeholders this template uses (see the module's docstring)."""
    modern, legacy = _score(text, MODERN, columns), _score(text, LEGACY, columns)
    if modern == legacy == (0, 0):
        # No placeholder at all. `<<Name` is a placeholder left open (reported as such), while
        # `a << 2` is text: read as `{{ }}`, which has no placeholder either.
        typo = re.search(r"<[<%#]\w", text) is not None
        return LEGACY if _opens(text, MODERN) and not typo and not _opens(text, LEGACY) else MODERN
    return LEGACY if legacy > modern else MODERN


def _score(text: str, syntax: Syntax, columns: Sequence[str]) -> tuple[int, int]:
    """(placeholders that name a column or `row`, placeholders closed on their line)."""
    names = set(columns)
    bodies = [
        body
        for opening, closing in (syntax.var, syntax.block)
        for body in re.findall(re.escape(opening) + r"([^\n]*?)" + re.escape(closing), text)
    ]
    naming = sum(1 for body in bodies if _names_a_column(body, names))
    return naming, len(bodies)


def _names_a_column(body: str, names: set[str]) -> bool:
    stripped = body.strip()
    if stripped in names:
        return True
    words = set(re.findall(r"[^\W\d]\w*", stripped))
    return "row" in words or not words.isdisjoint(names)


def _opens(text: str, syntax: Syntax) -> bool:
    return any(opening in text for opening, _ in (syntax.var, syntax.block, syntax.comment))
