"""`--help` shows each help text as flowing paragraphs: the line breaks and indentation of the
docstrings it comes from never reach the terminal, whatever its width."""

from __future__ import annotations

import io
from dataclasses import dataclass

from cyclopts import App, Parameter
from rich.console import Console

from helpers import run_cli
from openai_batch.cli import app
from openai_batch.ui import helpdoc
from openai_batch.ui.helpformat import FlowingHelp, flow


def _page(application: App, tokens: list[str], width: int) -> list[str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    application.help_print(tokens, console=console)
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def _continuations(lines: list[str]) -> list[str]:
    """The lines of the help panels that carry on an entry's text: wider than its name columns
    (` *  NAME` or ` --name`) is indented."""
    inside = [line[1:-1] for line in lines if line.startswith("│") and line.endswith("│")]
    return [line for line in inside if len(line) - len(line.lstrip(" ")) > 4]


def test_no_help_text_keeps_its_source_line_breaks():
    # So wide that nothing wraps: a line that carries on an option's text is a source line
    # break (with the source's indentation, for an option class's attribute docstring).
    pages = [(), *(path for path, _ in helpdoc.commands(app))]
    broken = {
        " ".join(path) or "openai-batch": found
        for path in pages
        if (found := _continuations(_page(app, list(path), width=1000)))
    }
    assert broken == {}


def test_a_wrapped_help_text_lines_up_with_its_column(capsys):
    code, out, _ = run_cli(capsys, "make-batch-file", "--help")
    assert code == 0
    lines = [line.rstrip() for line in out.splitlines()]
    first = next(i for i, line in enumerate(lines) if "--max-requests" in line)
    end = next(i for i, line in enumerate(lines) if "--max-bytes" in line)
    column = lines[first].index("At most")
    carried = lines[first + 1 : end]
    assert carried and all(c[column - 1] == " " and c[column] != " " for c in carried), carried
    assert "Azure's 100,000" in " ".join(c[column:].rstrip(" │") for c in carried)


def test_paragraphs_and_list_items_keep_their_own_lines():
    text = "One line\n    carried on.\n\n    A second\n  paragraph:\n- one\n- two\n  more\n"
    assert flow(text) == ("One line carried on.\n\nA second paragraph:\n- one\n- two more")
    assert flow("Already one line.") == "Already one line."


@Parameter(name="*")
@dataclass
class _Options:
    depth: int = 1
    """How deep to go, a number
    written over two lines.

    A second paragraph."""


def test_the_formatter_flows_attribute_and_parameter_docstrings():
    demo = App(name="demo", help_format="plaintext", help_formatter=FlowingHelp())

    @demo.default
    def main(name: str, *, options: _Options = _Options()) -> None:  # noqa: B008
        """Say hello.

        Parameters
        ----------
        name
            Whom to greet, with <<Column>>
            left literal.
        """

    page = "\n".join(_page(demo, [], width=200))
    assert "Whom to greet, with <<Column>> left literal." in page
    assert "How deep to go, a number written over two lines." in page
    assert "A second paragraph." in page
    assert "    written" not in page
