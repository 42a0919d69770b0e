"""The fast path's one signal: it cannot promise the general path's bytes here."""

from __future__ import annotations


class Fallback(Exception):
    """The fast path cannot promise the general path's bytes here: render the general way."""
