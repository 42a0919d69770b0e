"""The command line: parses arguments and hands them to the library; nothing else lives here.

Commands are registered by import path so `openai-batch --help` does not import pandas, pyarrow
or openai. Each command module lives in `openai_batch.commands` and returns an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cyclopts import App, Parameter

from . import __version__
from .errors import BatchError

app = App(
    name="openai-batch",
    help=(
        "Turn a prompt template and a table of data into OpenAI Batch API jobs, run them, "
        "and join the answers back to the rows."
    ),
    version=__version__,
    default_parameter=Parameter(negative=()),
    help_format="plaintext",  # help texts show <<Column>> and <stem>, not markup
    help_epilogue=(
        "Examples:\n"
        "  openai-batch make-batch-file templates/persona_survey.json sample_data/personas.csv\n"
    ),
)

utils = App(name="utils", help="Utility commands: estimate cost, validate request files, and more.")
app.command(utils)
utils.command(
    "openai_batch.commands.estimate:estimate",
    name="estimate",
    help="Count prompt tokens, output ceiling and batch cost of request files, offline.\n\n"
    "Example: openai-batch utils estimate batch-requests.jsonl --image-size 2048x683",
)
utils.command(
    "openai_batch.commands.validate:validate",
    name="validate",
    help="Check request files for everything the Batch API would reject, before uploading.\n\n"
    "Example: openai-batch utils validate batch-requests.jsonl",
)
utils.command(
    "openai_batch.commands.chat_complete:chat_complete",
    name="chat-complete",
    help="Run a request file through the synchronous API (OpenAI, vLLM, Ollama), Batch-format "
    "results.\n\nExample: openai-batch utils chat-complete batch-requests.jsonl --concurrency 16",
)
utils.command(
    "openai_batch.commands.retry_failed:retry_failed",
    name="retry-failed",
    help="Write a request file of the requests that failed or never ran, for another batch.\n\n"
    "Example: openai-batch utils retry-failed batch-requests.jsonl -o retry.jsonl",
)

# Each entry: (import path, command name, one-line help with an example).
app.command(
    "openai_batch.commands.make:make_batch_file",
    name="make-batch-file",
    help="Render a prompt template against every row of a table into request files.\n\n"
    "Example: openai-batch make-batch-file config.json personas.csv",
)
app.command(
    "openai_batch.commands.upload:upload_batch_file",
    name="upload-batch-file",
    help="Upload request files for the Batch API (checked first; never the same content twice).\n\n"
    "Example: openai-batch upload-batch-file batch-requests.jsonl",
)
app.command(
    "openai_batch.commands.start:start_batch",
    name="start-batch",
    help="Start a batch per uploaded file id or request file (uploads it first if needed).\n\n"
    "Example: openai-batch start-batch batch-requests.jsonl --description 'persona survey'",
)
app.command(
    "openai_batch.commands.results:get_batch_results",
    name="get-batch-results",
    help="Show a batch's status and timeline; when done, write its results in order (and CSV).\n\n"
    "Example: openai-batch get-batch-results batch-requests.jsonl --wait --csv results.csv",
)
app.command(
    "openai_batch.commands.list:list_batches",
    name="list-batches",
    help="List batches, newest first: id, created, status, counts, description.\n\n"
    "Example: openai-batch list-batches --limit 50 --status in_progress",
)
app.command(
    "openai_batch.commands.cancel:cancel_batch",
    name="cancel-batch",
    help="Cancel running batches (the results done so far are kept).\n\n"
    "Example: openai-batch cancel-batch batch_6708634c0ba081909ca21a5f182ce840",
)
app.command(
    "openai_batch.commands.run:run",
    name="run",
    help="Make, upload and start in one command; with --wait also get the results and CSV.\n\n"
    "Example: openai-batch run config.json personas.csv --wait --csv results.csv",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: runs a command and turns user errors into a message and an exit code."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        result = app(tokens, result_action="return_value", exit_on_error=False, print_error=True)
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
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
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
