"""The one rule every writer follows before it writes a file: never over an input.

An output path (`-o`, `--csv`, a retry file, a chat-complete output) must not be one of the
command's own inputs, nor a request file, data file or template the ledger knows: replacing a
request file loses what was paid for, and replacing a data file or template makes every later
join refuse "data changed". Writers that regenerate request files (make-batch-file, a retry of
the same family) say which request files they may replace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError

if TYPE_CHECKING:
    from openai_batch.ledger.store import Ledger


def check_output(
    output: Path,
    *,
    flag: str,
    reads: Iterable[tuple[str, Path | str | None]] = (),
    ledger: Ledger | None = None,
    may_replace: Callable[[str], bool] = lambda what: False,
) -> None:
    """Refuse to write `output` (given as `flag`) over an input.

    `reads`: (what, path) pairs the command reads ("data file", "template", "request file",
    "results file"). `may_replace(what)` lets a writer replace a kind of file the ledger knows
    (make-batch-file rewrites its own request files).
    """
    target = _resolved(output)
    for what, path in reads:
        if path is not None and _resolved(path) == target:
            raise BatchError(
                f"{flag} {output} is the {what} this command reads: writing it would destroy it.",
                hint=f"give another name with {flag}.",
            )
    if ledger is None:
        return
    known = ledger.known_as(target)
    if known is not None and not may_replace(known):
        raise BatchError(
            f"{flag} {output} is a {known} of a recorded batch job: writing it would destroy "
            "it (and later joins would refuse the changed file).",
            hint=f"give another name with {flag}.",
        )


def _resolved(path: Path | str) -> Path:
    return Path(path).expanduser().resolve()
