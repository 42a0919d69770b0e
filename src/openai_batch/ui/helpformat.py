"""How `--help` shows help texts: flowing paragraphs, not the line breaks of the source.

Help texts come from docstrings (a command's Parameters section, an option class's attribute
docstrings), wrapped at the source's line length and, for attribute docstrings, indented. The
CLI uses cyclopts' plaintext format (so <<Column>> and <stem> stay literal), which prints a text
as it is: each source line break and its indentation would show in the terminal. This formatter
is cyclopts' default one with every description flowed first, so the terminal wraps the text
at its own width; a blank line (a real paragraph) and a list item still start a new line.

cyclopts and rich are imported only when help is shown, so a command's start stays fast.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyclopts.help import HelpPanel
    from rich.console import Console, ConsoleOptions

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"[ \t]*\n[ \t]*")
_LIST_ITEM = re.compile(r"[-*] ")


def flow(text: str) -> str:
    """`text` with the line breaks inside each paragraph (and the indentation after them) turned
    into single spaces; paragraphs stay apart by one blank line, list items on their own lines."""
    paragraphs = _PARAGRAPH.split(text.strip())
    return "\n\n".join(_flow_paragraph(p) for p in paragraphs)


def _flow_paragraph(paragraph: str) -> str:
    out: list[str] = []
    for line in _LINE_BREAK.split(paragraph):
        if out and not _LIST_ITEM.match(line):
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)


def _flowed(description: Any) -> Any:
    """A plaintext description (rich Text, or cyclopts' InlineText around one) flowed; any other
    renderable as it is."""
    from cyclopts.help.inline_text import InlineText
    from rich.text import Text

    primary = description.primary_renderable if isinstance(description, InlineText) else None
    if isinstance(description, Text):
        primary = description
    if not isinstance(primary, Text) or primary.spans or "\n" not in primary.plain:
        return description
    text = Text(flow(primary.plain), end=primary.end)
    if not isinstance(description, InlineText):
        return text
    flowed = InlineText(text, force_empty_end=description.force_empty_end)
    for extra in description.texts:
        flowed.append(extra)
    return flowed


class FlowingHelp:
    """cyclopts' default help formatter, given flowed descriptions (see the module docstring)."""

    show_metavar = True  # as the default formatter: `--output PATH` in the usage line and rows

    def __init__(self) -> None:
        self._default: Any = None

    def _formatter(self) -> Any:
        if self._default is None:
            from cyclopts.help.formatters import DefaultFormatter

            self._default = DefaultFormatter()
        return self._default

    def __call__(self, console: Console, options: ConsoleOptions, panel: HelpPanel) -> None:
        entries = [e.copy(description=_flowed(e.description)) for e in panel.entries]
        flowed = panel.copy(description=_flowed(panel.description), entries=entries)
        self._formatter()(console, options, flowed)

    def render_usage(self, console: Console, options: ConsoleOptions, usage: Any) -> None:
        self._formatter().render_usage(console, options, usage)

    def render_description(
        self, console: Console, options: ConsoleOptions, description: Any
    ) -> None:
        self._formatter().render_description(console, options, _flowed(description))
