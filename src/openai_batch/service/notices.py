"""What the service layer noticed that the user should hear: told to a listener, never printed.

Library code does not print. A notice (today: OPENAI_BATCH_STRICT's departures from OpenAI's
schema) goes to whoever listens: the CLI listens for the length of a command and shows each as a
warning; a program using the library may listen with its own callback. Told with nobody
listening, a notice becomes a Python warning (`ServiceNotice`), which the program's warning
filters show once, turn into errors, or silence.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

_listeners: list[Callable[[str], object]] = []


class ServiceNotice(UserWarning):
    """A notice told while nobody listened (a program using the library)."""


@contextlib.contextmanager
def listening(callback: Callable[[str], object]) -> Iterator[None]:
    """Hand every notice told inside the block to `callback`."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def tell(text: str) -> None:
    """One notice, to the innermost listener; with none, a `ServiceNotice` warning."""
    if _listeners:
        _listeners[-1](text)
    else:
        warnings.warn(text, ServiceNotice, stacklevel=2)
