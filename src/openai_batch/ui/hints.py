"""The commands the tool suggests (resume, wait again, retry, get results apart), as text.

Library code returns data (batch ids, paths, an `Outputs`); only here does it become a command
line, quoted for a POSIX shell by `commandline.command`, so every suggestion is spelled one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from openai_batch.ui.commandline import command
from openai_batch.ui.console import plural, shown

if TYPE_CHECKING:
    from openai_batch.results.outputs import Outputs


def results_args(head: Sequence[str], outputs: Outputs, *, requests: bool = True) -> list[str]:
    """get-batch-results HEAD (batch ids, request files or `--job NAME`) with the options that
    write the same files again."""
    args = ["get-batch-results", *head, "-o", str(outputs.responses)]
    for flag, value in (
        ("--csv", outputs.csv), ("--table", outputs.table), ("--data", outputs.data),
        ("--requests", outputs.requests if requests else None),
        ("--id-column", outputs.id_column), ("--id-prefix", outputs.id_prefix),
    ):  # fmt: skip
        if value is not None:
            args += [flag, str(value)]
    return args


def job_results_args(job: str, outputs: Outputs) -> list[str]:
    """get-batch-results --job NAME with the same files (a job knows its request files)."""
    return results_args(["--job", job], outputs, requests=False)


def wait_command(args: Sequence[str]) -> str:
    """The same get-batch-results, waiting this time."""
    return command([*args, "--wait"])


def retry_command(target: str | Path, output: str | Path) -> str:
    """utils retry-failed TARGET -o OUTPUT: a request file of what failed or never ran."""
    return command(["utils", "retry-failed", str(target), "-o", str(output)])


def retry_commands(
    order_files: Sequence[Path], failing_files: Sequence[Path], last_batch: str
) -> list[str]:
    """One retry-failed per request file with something to redo (a retry file derives from one
    request file); files whose requests all succeeded need none. One file: by batch id."""
    if len(order_files) > 1:
        return [retry_command(shown(f), f"{Path(f).stem}-retry.jsonl") for f in failing_files]
    return [retry_command(last_batch, "retry.jsonl")]


def validate_warnings(path: str | Path, warnings: int) -> str:
    """A request file the API takes, with warnings that `utils validate` shows."""
    validate = command(["utils", "validate", str(path)])
    return f"{path}: {plural(warnings, 'warning')}; `{validate}` shows them"


def start_again(target: str | Path, *, force: bool = False) -> str:
    """start-batch TARGET (with --force: a new batch, paid again)."""
    return command(["start-batch", str(target), *(["--force"] if force else [])])
