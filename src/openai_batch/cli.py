"""The command line: parses arguments and hands them to the library; nothing else lives here.

Commands are registered by import path so `openai-batch --help` does not import pandas, pyarrow
or openai. Each command module lives in `openai_batch.commands` and returns an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cyclopts import App, Parameter

from openai_batch import __version__
from openai_batch.errors import BatchError
from openai_batch.local.faults import explain, interrupted
from openai_batch.service import notices
from openai_batch.ui import console
from openai_batch.ui.helpformat import FlowingHelp

app = App(
    name="openai-batch",
    help=(
        "Turn a prompt template and a table of data into OpenAI Batch API jobs, run them, "
        "and join the answers back to the rows."
    ),
    version=__version__,
    default_parameter=Parameter(negative=()),
    help_format="plaintext",  # help texts show <<Column>> and <stem>, not markup
    help_formatter=FlowingHelp(),  # ... as paragraphs, not the docstrings' source lines
    suppress_keyboard_interrupt=False,  # Ctrl-C reaches main(): one message, a resume hint
)

# (import path, name, one-line description, example): the listing and --help are made from these.
COMMANDS: list[tuple[str, str, str, str]] = [
    (
        "openai_batch.commands.make:make_batch_file",
        "make-batch-file",
        "Render a prompt template against every row of a table into request files.",
        "openai-batch make-batch-file config.json personas.csv",
    ),
    (
        "openai_batch.commands.upload:upload_batch_file",
        "upload-batch-file",
        "Upload request files for the Batch API (checked first; never the same content twice).",
        "openai-batch upload-batch-file batch-requests.jsonl",
    ),
    (
        "openai_batch.commands.start:start_batch",
        "start-batch",
        "Start a batch per uploaded file id or request file (uploads it first if needed).",
        "openai-batch start-batch batch-requests.jsonl --description 'persona survey'",
    ),
    (
        "openai_batch.commands.results:get_batch_results",
        "get-batch-results",
        "Show a batch's status and timeline; when done, write its results in order (and CSV).",
        "openai-batch get-batch-results batch-requests.jsonl --wait --csv results.csv",
    ),
    (
        "openai_batch.commands.list:list_batches",
        "list-batches",
        "List batches, newest first: id, created, status, counts, description.",
        "openai-batch list-batches --limit 50 --status in_progress",
    ),
    (
        "openai_batch.commands.cancel:cancel_batch",
        "cancel-batch",
        "Cancel running batches (the results done so far are kept).",
        "openai-batch cancel-batch batch_6708634c0ba081909ca21a5f182ce840",
    ),
    (
        "openai_batch.commands.run:run",
        "run",
        "Make, upload and start in one command; with --wait also get the results and CSV.",
        "openai-batch run config.json personas.csv --wait --csv results.csv",
    ),
]
UTILS: list[tuple[str, str, str, str]] = [
    (
        "openai_batch.commands.estimate:estimate",
        "estimate",
        "Count prompt tokens, output ceiling and batch cost of request files, offline.",
        "openai-batch utils estimate batch-requests.jsonl --image-size 2048x683",
    ),
    (
        "openai_batch.commands.validate:validate",
        "validate",
        "Check request files for everything the Batch API would reject, before uploading.",
        "openai-batch utils validate batch-requests.jsonl",
    ),
    (
        "openai_batch.commands.chat_complete:chat_complete",
        "chat-complete",
        "Run a request file now through the synchronous API (OpenAI, vLLM, Ollama).",
        "openai-batch utils chat-complete batch-requests.jsonl --concurrency 16",
    ),
    (
        "openai_batch.commands.delete_files:delete_files",
        "delete-files",
        "Delete finished batches' files on the service once their results are downloaded.",
        "openai-batch utils delete-files --job personas",
    ),
    (
        "openai_batch.commands.retry_failed:retry_failed",
        "retry-failed",
        "Write a request file of the requests that failed or never ran, for another batch.",
        "openai-batch utils retry-failed batch-requests.jsonl -o retry.jsonl",
    ),
]

utils = App(
    name="utils",
    help="Utility commands: estimate cost, validate request files, and more.",
    suppress_keyboard_interrupt=False,
)


def _register(parent: App, entries: list[tuple[str, str, str, str]]) -> None:
    # Each command's --help ends with its own example, not the whole tool's list.
    for path, name, summary, example in entries:
        parent.command(path, name=name, help=summary, help_epilogue=f"Example:\n  {example}")


def _examples(entries: list[tuple[str, str, str, str]]) -> str:
    return "Examples:\n" + "".join(f"  {e}\n" for _, _, _, e in entries)


_register(app, COMMANDS)
_register(utils, UTILS)
app.command(utils)
app.help_epilogue = _examples(COMMANDS + UTILS)
utils.help_epilogue = _examples(UTILS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs a command and turns user errors into a message and an exit code.

    Failures of the local system (disk, permissions, memory, the ledger) and Ctrl-C become one
    `error:` line with a hint too (see localfaults.py)."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        with notices.listening(console.warn):  # what the service layer noticed: warnings
            result = app(
                tokens, result_action="return_value", exit_on_error=False, print_error=True
            )
    except BatchError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return _fail(interrupted(tokens))
    except BrokenPipeError:  # `openai-batch ... | head`: the reader left, which is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # cyclopts parse errors were already printed
        from cyclopts import CycloptsError

        if isinstance(exc, CycloptsError):
            return 2
        error = explain(exc)
        if error is None:
            raise
        return _fail(error)
    finally:
        console.set_quiet(False)  # -q holds for one command (tests run many in one process)
    return result if isinstance(result, int) else 0


def _fail(exc: BatchError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code


def run() -> None:
    """The `openai-batch` program: `main`, then exit.

    The objects left are frozen out of the interpreter's last garbage collection: after a big
    make-batch-file that pass alone takes a tenth of a second. Everything has been written and
    closed by then; atexit handlers and stream flushes still run."""
    code = main()
    import gc

    gc.freeze()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
