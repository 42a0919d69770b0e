"""Prompt templates: a chat-completion body as JSON text with `<<placeholders>>`.

A template is compiled once into literal JSON text and *slots*. Rendering a row fills each slot
with text that is already valid JSON for its place (an escaped string, a number, ...), so every
rendered body is valid JSON by construction and a row's cell text is never rendered twice.

Syntax: `<<expr>>` for values, `<% ... %>` for Jinja blocks inside strings, `<# ... #>` for
comments. The original tool's `{{ }}` / `{% %}` spelling also works (template_syntax chooses).
`expr` is either exactly a column header (`<<College Education>>`) or a Jinja2 expression
evaluated in jinja2's sandbox over the row (`<<Age | int + 1>>`, `<<row["College Education"]>>`).

This module is the compiled template and its rendering; `compile.py` builds it from the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, quoted
from openai_batch.template.sandbox import (
    NotPlainError,
    TemplateLimitError,
    plain_value,
    start_row,
)
from openai_batch.template.syntax import Syntax

CR = "_openai_batch_cr"  # stands for "\r" inside block templates

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def json_escape(text: str) -> str:
    """The inside of a JSON string literal for `text` (UTF-8 kept, control characters escaped)."""
    return encode_basestring(text)[1:-1]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Token:
    """One `<<...>>`, `<%...%>` or `<#...#>` found in the template text."""

    kind: str  # "var" | "block" | "comment"
    source: str  # the text between the delimiters
    in_string: bool
    line: int

    def label(self, syntax: Syntax) -> str:
        opening, closing = getattr(syntax, self.kind)
        return f"{opening}{self.source}{closing}"


class RenderError(BatchError):
    """A row could not be rendered; the message names the row and the placeholder."""


# --------------------------------------------------------------------------------------------
# Expressions: a plain column, or a sandboxed Jinja expression
# --------------------------------------------------------------------------------------------


@dataclass
class Expr:
    """What one `<<...>>` evaluates: a column's cell, or a Jinja expression over the row."""

    label: str
    column: str | None = None
    jinja: Callable[..., Any] | None = None

    def value(self, row: Mapping[str, str]) -> Any:
        """The cell, or the expression's value: only text, numbers, booleans, None and lists or
        dicts of them (an object would reach the prompt as its repr)."""
        if self.column is not None:
            return row[self.column]
        assert self.jinja is not None
        return plain_value(self.jinja(**_context(row)))

    def text(self, row: Mapping[str, str]) -> str:
        value = self.value(row)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _context(row: Mapping[str, str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {key: val for key, val in row.items() if key.isidentifier()}
    ctx["row"] = row
    return ctx


# --------------------------------------------------------------------------------------------
# Slots
# --------------------------------------------------------------------------------------------


@dataclass
class StringSlot:
    """A JSON string with placeholders; renders to its escaped inside (quotes are literal)."""

    path: str
    pieces: list[str | Expr] = field(default_factory=list)  # literal text and expressions
    block_template: Any = None  # a jinja2 Template when the string holds `<% %>` blocks
    image: bool = False  # an image_url value: local files become data: URLs

    @property
    def columns_only(self) -> bool:
        """True when only plain columns are substituted: the vectorised renderer can do it."""
        return (
            self.block_template is None
            and not self.image
            and all(isinstance(p, str) or p.column is not None for p in self.pieces)
        )

    def text(self, row: Mapping[str, str]) -> str:
        if self.block_template is not None:
            return str(self.block_template.render(**_context(row), **{CR: "\r"}))
        return "".join(p if isinstance(p, str) else p.text(row) for p in self.pieces)

    def labels(self) -> list[str]:
        return [p.label for p in self.pieces if isinstance(p, Expr)]


@dataclass
class BareSlot:
    """A placeholder standing where a JSON value goes: renders a number, boolean or null."""

    path: str
    expr: Expr


def bare_json(value: Any) -> str | None:
    """JSON text for a cell used as a bare value, or None when it is not a number/bool/null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value) if value == value and abs(value) != float("inf") else None
    text = str(value).strip()
    lowered = text.lower()
    if lowered in ("true", "false", "null"):
        return lowered
    if _JSON_NUMBER.fullmatch(text):
        return text
    if _LOOSE_NUMBER.fullmatch(text):  # "+3", "007", ".5", "1." read as numbers
        number = float(text)
        if number.is_integer() and not re.search(r"[.eE]", text):
            return str(int(text))
        return json.dumps(number)
    return None


# --------------------------------------------------------------------------------------------
# The compiled template
# --------------------------------------------------------------------------------------------


@dataclass
class Template:
    """A compiled template: literal JSON text interleaved with slots."""

    source: Path | None
    syntax: Syntax
    parts: list[str | StringSlot | BareSlot]
    columns: list[str]
    model: str | None  # the literal model name, when the template fixes it
    base_dir: Path | None  # where relative image paths in the data are looked up

    @property
    def slots(self) -> list[StringSlot | BareSlot]:
        return [p for p in self.parts if not isinstance(p, str)]

    @property
    def columns_only(self) -> bool:
        """Every slot is a plain column inside a string: the fast, vectorised path applies."""
        return all(isinstance(s, StringSlot) and s.columns_only for s in self.slots)

    def used_columns(self) -> list[str]:
        """The columns a render reads (all of them when a Jinja expression may read `row`)."""
        used: list[str] = []
        for slot in self.slots:
            pieces = slot.pieces if isinstance(slot, StringSlot) else [slot.expr]
            if isinstance(slot, StringSlot) and slot.block_template is not None:
                return list(self.columns)
            for piece in pieces:
                if isinstance(piece, Expr):
                    if piece.column is None:
                        return list(self.columns)
                    if piece.column not in used:
                        used.append(piece.column)
        return used

    def render(self, row: Mapping[str, str]) -> str:
        """The body's JSON text for one row; a RenderError's message lacks only the row."""
        start_row()  # the row's loop budget
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, StringSlot):
                out.append(self._render_string(part, row))
            else:
                out.append(self._render_bare(part, row))
        return "".join(out)

    def _render_string(self, slot: StringSlot, row: Mapping[str, str]) -> str:
        try:
            text = slot.text(row)
        except Exception as exc:
            raise _row_error(exc, ", ".join(slot.labels()) or slot.path) from None
        if slot.image:
            from openai_batch.template.images import image_url_value

            text = image_url_value(text, self.base_dir, f"image at {slot.path}")
        return json_escape(text)

    def _render_bare(self, slot: BareSlot, row: Mapping[str, str]) -> str:
        try:
            value = slot.expr.value(row)
            rendered = bare_json(value)
        except Exception as exc:
            raise _row_error(exc, slot.expr.label) from None
        if rendered is None:
            column = f"column {quoted(slot.expr.column)}" if slot.expr.column else slot.expr.label
            raise RenderError(
                f"{column} is {quoted(value)}, which is not a number, true, false or null, "
                f"but {slot.expr.label} stands where a JSON value goes ({slot.path}).",
                hint="fix the cell, or put the placeholder inside quotes to use it as text.",
            )
        return rendered


def _row_error(exc: Exception, where: str) -> BatchError:
    from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

    if isinstance(exc, BatchError):
        return exc
    if isinstance(exc, NotPlainError):
        return RenderError(
            f"{where}: {exc}.",
            hint="an expression may give text, numbers, true/false/none, or lists of them "
            "(e.g. <<Items | join(', ')>>).",
        )
    if isinstance(exc, TemplateLimitError):
        return RenderError(
            f"{where}: {str(exc).rstrip('.')}.",
            hint="docs/template-limits.md says what one row's expressions may do.",
        )
    if isinstance(exc, SecurityError | UndefinedError) and "unsafe" in str(exc):
        return RenderError(
            f"{where} was refused by the template sandbox: {str(exc).rstrip('.')}.",
            hint="templates may read the row's values and use filters, not Python internals.",
        )
    if isinstance(exc, UndefinedError):
        return RenderError(f"{where}: {exc}.")
    if isinstance(exc, TemplateError):
        return RenderError(f"{where} failed: {exc}.")
    return RenderError(f"{where} failed: {type(exc).__name__}: {exc}.")
