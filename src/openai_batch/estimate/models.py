"""Which row of a model table (prices, capabilities) a model name belongs to.

Requests name models many ways: the family (gpt-4o), a dated snapshot (gpt-4o-2024-08-06), an
alias (gpt-4-turbo-preview) or a fine-tune (ft:gpt-4o-mini-2024-07-18:org::id). Every table
keyed by model finds its row through `resolve`, so they all agree on what a name means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Names whose family is not their prefix.
_ALIASES = {
    "gpt-4-1106-preview": "gpt-4-turbo",
    "gpt-4-0125-preview": "gpt-4-turbo",
    "gpt-4-turbo-preview": "gpt-4-turbo",
    "gpt-5-chat": "gpt-5",
}

# Dated snapshots and aliases: gpt-4o-2024-08-06, gpt-4-0613, gpt-3.5-turbo-0125, o3-2025-04-16.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4}|latest|preview)$")


def resolve(model: str | None, table: Mapping[str, object]) -> str | None:
    """The key of `table` for `model`: exact name first, then its family's (aliases, then
    with its date suffix removed); a fine-tune's base model."""
    name = (model or "").strip().lower()
    if name.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org::id
        name = name[3:].split(":", 1)[0]
    while name:
        if name in table:
            return name
        name = _ALIASES.get(name, name)
        if name in table:
            return name
        stripped = _SNAPSHOT.sub("", name)
        if stripped == name:
            return None
        name = stripped
    return None
