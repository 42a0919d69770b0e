"""How a suggested command is spelled: `openai-batch ARGS...` (or one option, `FLAG VALUE`), each
argument quoted for a POSIX shell, so a file or job name with a space is shown as one argument.

It imports nothing of the project: `errors.Command` spells itself with it, and `ui/hints` (which
builds the suggestions and imports `errors`) re-exports it as `hints.command`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

PROGRAM = "openai-batch"


def command(args: Sequence[str | Path]) -> str:
    """`openai-batch ARGS...`, each argument quoted as a shell needs it."""
    return shlex.join([PROGRAM, *(str(a) for a in args)])


def option(flag: str, value: str | Path) -> str:
    """`FLAG VALUE` to put in a command the user already typed, the value quoted the same way."""
    return shlex.join([flag, str(value)])
