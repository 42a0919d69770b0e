"""The one exception type for problems a user can cause and fix.

The CLI prints its message (never a traceback) and exits non-zero; library callers catch it.
A hint may suggest commands: library code names them as data (`Command`), and only
`ui/commandline.command` (which `ui/hints` re-exports) spells them, quoted for a shell, whoever
reads the error. A message quotes user data or a server's words with `quoted`: one line, bounded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from openai_batch.ui.commandline import command


@dataclass(frozen=True, init=False)
class Command:
    """An `openai-batch` command a hint suggests, as data: the arguments after the program name
    (`Command("get-batch-results", batch_id)`), so a name with a space is quoted when spelled."""

    args: tuple[str, ...]

    def __init__(self, *args: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "args", tuple(os.fspath(a) for a in args))

    def __str__(self) -> str:
        return command(self.args)


# A hint: text, or text and commands in reading order ("check the id with `", Command(...), "`").
Hint = str | Command | Sequence[str | Command]


class BatchError(Exception):
    """A problem the user can fix: the message names the problem, the hint says how."""

    exit_code = 1

    def __init__(self, message: str, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        parts = (hint,) if isinstance(hint, str | Command) else tuple(hint or ())
        self.hint_parts: tuple[str | Command, ...] | None = None if hint is None else parts

    @property
    def commands(self) -> tuple[Command, ...]:
        """The commands the hint suggests, in order (data for a program; the hint spells them)."""
        return tuple(p for p in self.hint_parts or () if isinstance(p, Command))

    @property
    def hint(self) -> str | None:
        """The hint as a person reads it, each command spelled by ui/commandline."""
        if self.hint_parts is None:
            return None
        return "".join(str(part) for part in self.hint_parts)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ApiError(BatchError):
    """The service refused or could not be reached (bad key, unknown id, network down)."""

    exit_code = 3


class ResultsConflict(BatchError):
    """Two request files answer the same custom_ids. `gets` says how to get each apart: (batch
    id or request file, a responses file name), suggested as get-batch-results commands;
    `unplaced` when some batch's request file is unknown to the ledger (then naming it with
    --requests may be the answer)."""

    def __init__(self, message: str, gets: list[tuple[str, str]], unplaced: bool) -> None:
        hint: list[str | Command] = ["get their results separately:"]
        for target, out in gets:
            hint += ["\n    ", Command("get-batch-results", target, "-o", out)]
        if unplaced:
            hint.append(
                "\n  (if these batches are retries of one request file, name it: --requests FILE)"
            )
        super().__init__(message, hint)
        self.gets = gets
        self.unplaced = unplaced


QUOTE_WIDTH = 80  # characters a quoted value may take in a message, quotes and escapes included


def quoted(value: object, width: int = QUOTE_WIDTH) -> str:
    """`value` quoted for a one-line message, however long or strange: repr-style (anything not
    text as its repr), so a newline or control character is escaped and cannot break the line;
    past `width` characters a readable head, an ellipsis and the full length:
    `'xxxx…' (200,000 characters)`. Every message that quotes a cell, a column name, a
    custom_id, a request line's value or a server's words goes through it."""
    if not isinstance(value, str):  # a number, a list: as Python shows it, cut the same way
        text = repr(value)
        return text if len(text) <= width else f"{text[:width]}… ({len(text):,} characters)"
    text = value
    if len(text) <= width:
        whole = repr(text)
        if len(whole) <= width + 2:
            return whole
    head, room = [], width
    for char in text[:width]:  # an escape (\x1b, \n) takes more room than its character
        room -= len(repr(char)) - 2
        if room < 0:
            break
        head.append(char)
    shown = repr("".join(head))
    while len(shown) > width + 2:  # a quote escaped as the whole's repr chose its quotes
        head.pop()
        shown = repr("".join(head))
    return f"{shown[:-1]}…{shown[-1]} ({len(text):,} characters)"


def quoted_list(values: Sequence[object], most: int = 20) -> str:
    """`'a', 'b', 'c'`, each value `quoted`, and past `most` of them `and 1,234 more`: a
    table's columns in a hint stay readable when it has thousands, or one of 200 KB."""
    shown = ", ".join(quoted(v) for v in values[:most])
    return shown if len(values) <= most else f"{shown} and {len(values) - most:,} more"
