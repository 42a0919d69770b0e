"""Prompt templates: a chat-completion body as JSON text with `<<placeholders>>`.

A template is compiled once into literal JSON text and *slots*. Rendering a row fills each slot
with text that is already valid JSON for its place (an escaped string, a number, ...), so every
rendered body is valid JSON by construction and a row's cell text is never rendered twice.

Syntax: `<<expr>>` for values, `<% ... %>` for Jinja blocks inside strings, `<# ... #>` for
comments. The original tool's `{{ }}` / `{% %}` spelling also works (template_syntax chooses).
`expr` is either exactly a column header (`<<College Education>>`) or a Jinja2 expression
evaluated in jinja2's sandbox over the row (`<<Age | int + 1>>`, `<<row["College Education"]>>`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError
from openai_batch.table import surrogates
from openai_batch.template.marks import Marks
from openai_batch.template.sandbox import (
    NotPlainError,
    TemplateLimitError,
    make_sandbox,
    plain_value,
    start_row,
)
from openai_batch.template.syntax import MODERN, Syntax, choose_syntax

_CR = "_openai_batch_cr"  # stands for "\r" inside block templates

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
            return str(self.block_template.render(**_context(row), **{_CR: "\r"}))
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
            column = f"column {slot.expr.column!r}" if slot.expr.column else slot.expr.label
            raise RenderError(
                f"{column} is {str(value)!r}, which is not a number, true, false or null, "
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


# --------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------


def load_template(path: Path, columns: Sequence[str], base_dir: Path | None = None) -> Template:
    """Read and compile a template file against the data's columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BatchError(f"template file not found: {path}") from None
    except UnicodeDecodeError:
        raise BatchError(f"template {path} is not UTF-8 text.") from None
    except OSError as exc:
        raise BatchError(f"cannot read template {path}: {exc.strerror}.") from None
    return compile_template(text, columns, source=path, base_dir=base_dir)


def compile_template(
    text: str,
    columns: Sequence[str],
    *,
    source: Path | None = None,
    base_dir: Path | None = None,
) -> Template:
    """Compile template text; every problem is found here, before any row is rendered."""
    name = str(source) if source else "template"
    syntax = choose_syntax(text, columns)
    marks = Marks.absent_from(text)
    tokens, sanitized = _scan(text, syntax, name, marks)
    try:
        tree = json.loads(sanitized)
    except json.JSONDecodeError as exc:
        raise _json_error(name, text, exc, syntax) from None
    if not isinstance(tree, dict):
        raise BatchError(
            f"{name} must be a JSON object (a request body), not {type(tree).__name__}."
        )
    if surrogates.may_hold(text) and (where := surrogates.find(tree, "body")) is not None:
        raise BatchError(
            f"{name}: {where} holds a lone UTF-16 surrogate, which is not text: no request "
            "can carry it.",
            hint=surrogates.HINT,
        )
    builder = _Builder(tokens, syntax, list(columns), name, source, marks)
    replaced = builder.walk(tree, "body")
    dumped = json.dumps(replaced, ensure_ascii=False)
    parts: list[str | StringSlot | BareSlot] = []
    pos = 0
    for match in marks.slot_re.finditer(dumped):
        if match.start() > pos:
            parts.append(dumped[pos : match.start()])
        slot = builder.slots[int(match.group(1))]
        if isinstance(slot, StringSlot):
            parts.extend(['"', slot, '"'])
        else:
            parts.append(slot)
        pos = match.end()
    parts.append(dumped[pos:])
    merged = _merge_literals(parts)
    model = tree.get("model") if isinstance(tree.get("model"), str) else None
    if model is not None and marks.mark_re.search(model):
        model = None
    return Template(source, syntax, merged, list(columns), model, base_dir)


def _merge_literals(parts: list[str | StringSlot | BareSlot]) -> list[str | StringSlot | BareSlot]:
    merged: list[str | StringSlot | BareSlot] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return merged


def _scan(text: str, syntax: Syntax, name: str, marks: Marks) -> tuple[list[Token], str]:
    """Find every placeholder, noting whether it sits inside a JSON string; mark it for parsing."""
    openers = [("var", syntax.var), ("block", syntax.block), ("comment", syntax.comment)]
    tokens: list[Token] = []
    out: list[str] = []
    in_string = False
    i, start, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        hit = next(((k, d) for k, d in openers if text.startswith(d[0], i)), None)
        if hit:
            kind, (opening, closing) = hit
            end = text.find(closing, i + len(opening))
            line = text.count("\n", 0, i) + 1
            if end < 0:
                raise BatchError(
                    f"{name}, line {line}: {opening} is never closed with {closing}.",
                    hint=f"write placeholders as {opening}Column{closing}.",
                )
            out.append(text[start:i])
            body = text[i + len(opening) : end]
            if in_string and "\\" in body:
                body = _unescape(body)
            if kind == "comment":
                pass
            elif kind == "block" and not in_string:
                raise BatchError(
                    f"{name}, line {line}: {opening}{body}{closing} stands outside a string; "
                    f"{opening} {closing} blocks work only inside JSON string values.",
                )
            elif in_string:
                out.append(marks.in_string.format(len(tokens)))
            else:
                out.append(marks.bare.format(len(tokens)))
            tokens.append(Token(kind, body, in_string, line))
            i = start = end + len(closing)
            continue
        if ch == "\\" and in_string:
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        i += 1
    out.append(text[start:])
    return tokens, "".join(out)


def _unescape(body: str) -> str:
    """An expression written JSON-escaped inside a string (`row[\\"x\\"]`) means `row["x"]`."""
    try:
        return str(json.loads(f'"{body}"'))
    except json.JSONDecodeError:
        return body


def _json_error(name: str, text: str, exc: json.JSONDecodeError, syntax: Syntax) -> BatchError:
    lines = text.splitlines()
    shown = lines[exc.lineno - 1].strip() if 0 < exc.lineno <= len(lines) else ""
    return BatchError(
        f"{name} is not valid JSON at line {exc.lineno}: {exc.msg}.\n    {shown}",
        hint=f"a template is a JSON request body; placeholders ({syntax.var[0]}Column"
        f"{syntax.var[1]}) may stand inside strings or where a JSON value goes.",
    )


class _Builder:
    """Walks the parsed JSON, turning strings with placeholders into slots."""

    def __init__(
        self,
        tokens: list[Token],
        syntax: Syntax,
        columns: list[str],
        name: str,
        source: Path | None,
        marks: Marks,
    ) -> None:
        self.tokens = tokens
        self.marks = marks
        self.syntax = syntax
        self.columns = columns
        self.name = name
        self.template_dir = source.parent if source else Path.cwd()
        self.slots: list[StringSlot | BareSlot] = []
        self._env: Any = None

    # -- walking ------------------------------------------------------------------------
    def walk(self, node: Any, path: str, parent: Mapping[str, Any] | None = None) -> Any:
        if isinstance(node, dict):
            _check_image_url(node, path, self.name, self.marks)
            out = {}
            for key, value in node.items():
                if self.marks.mark_re.search(key) or self.marks.bare_re.match(key):
                    raise BatchError(
                        f"{self.name}: placeholders cannot stand in a key ({path}).",
                    )
                out[key] = self.walk(value, f"{path}.{key}", node)
            return out
        if isinstance(node, list):
            return [self.walk(v, f"{path}[{i}]", None) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self._string(node, path, parent)
        return node

    def _string(self, value: str, path: str, parent: Mapping[str, Any] | None) -> Any:
        bare = self.marks.bare_re.match(value)
        if bare:
            token = self.tokens[int(bare.group(1))]
            return self._add(BareSlot(path, self._expr(token)))
        image = _is_image_value(path, parent)
        if not self.marks.mark_re.search(value):
            if image:
                from openai_batch.template.images import image_url_value

                return image_url_value(value, self.template_dir, f"{self.name} ({path})")
            return value
        slot = StringSlot(path, image=image)
        chunks = self.marks.mark_re.split(value)
        if any(self.tokens[int(i)].kind == "block" for i in chunks[1::2]):
            slot.block_template = self._block_template(chunks, path)
            return self._add(slot)
        for index, chunk in enumerate(chunks):
            if index % 2 == 0:
                if chunk:
                    slot.pieces.append(chunk)
            else:
                slot.pieces.append(self._expr(self.tokens[int(chunk)]))
        return self._add(slot)

    def _add(self, slot: StringSlot | BareSlot) -> str:
        self.slots.append(slot)
        return self.marks.slot.format(len(self.slots) - 1)

    # -- expressions --------------------------------------------------------------------
    @property
    def env(self) -> Any:
        if self._env is None:
            self._env = make_environment(self.syntax)
        return self._env

    def _expr(self, token: Token) -> Expr:
        label = token.label(self.syntax)
        if token.source in self.columns:
            return Expr(label, column=token.source)
        stripped = token.source.strip()
        if stripped in self.columns:
            return Expr(label, column=stripped)
        from jinja2 import TemplateSyntaxError

        try:
            compiled = self.env.compile_expression(stripped, undefined_to_none=False)
        except TemplateSyntaxError as exc:
            raise self._unknown(
                token, f"it is neither a column nor a valid expression ({exc})"
            ) from None
        self._check_names(token, f"{self.syntax.var[0]} {stripped} {self.syntax.var[1]}")
        return Expr(label, jinja=compiled)

    def _block_template(self, chunks: list[str], path: str) -> Any:
        from jinja2 import TemplateSyntaxError

        source: list[str] = []
        for index, chunk in enumerate(chunks):
            if index % 2 == 0:
                source.append(chunk)
                continue
            token = self.tokens[int(chunk)]
            opening, closing = getattr(self.syntax, token.kind)
            body = token.source
            if token.kind == "var" and body.strip() in self.columns:
                body = f" row[{json.dumps(body.strip())}] "
            source.append(f"{opening}{body}{closing}")
        # Jinja turns every line break in template text into "\n": keep "\r" as written.
        text = "".join(source).replace("\r", f"{self.syntax.var[0]} {_CR} {self.syntax.var[1]}")
        try:
            template = self.env.from_string(text)
        except TemplateSyntaxError as exc:
            raise BatchError(
                f"{self.name}: the template text at {path} is not valid: {exc.message}.",
                hint=f"blocks look like {self.syntax.block[0]} if Age | int > 30 "
                f"{self.syntax.block[1]}...{self.syntax.block[0]} endif {self.syntax.block[1]}.",
            ) from None
        self._check_names(None, text, where=path)
        return template

    def _check_names(self, token: Token | None, source: str, where: str = "") -> None:
        """Unknown names are typos of column names: say so now, not at row 1,000,000."""
        from jinja2 import meta

        names = meta.find_undeclared_variables(self.env.parse(source))
        known = {c for c in self.columns if c.isidentifier()} | {"row", _CR} | set(self.env.globals)
        for unknown in sorted(names - known):
            if token is not None:
                raise self._unknown(token, f"{unknown!r} is not a column", name=unknown)
            raise BatchError(
                f"{self.name}: {where} uses {unknown!r}, which is not a column.",
                hint=self._columns_hint(unknown),
            )

    def _unknown(self, token: Token, why: str, name: str | None = None) -> BatchError:
        label = token.label(self.syntax)
        return BatchError(
            f"{self.name}, line {token.line}: unknown column in {label}: {why}.",
            hint=self._columns_hint(name or token.source.strip()),
        )

    def _columns_hint(self, wanted: str) -> str:
        close = difflib.get_close_matches(wanted, self.columns, n=1, cutoff=0.5)
        if not close:
            lowered = {c.lower(): c for c in self.columns}
            close = [lowered[wanted.lower()]] if wanted.lower() in lowered else []
        columns = ", ".join(repr(c) for c in self.columns)
        hint = f"the data's columns are: {columns}."
        spaced = [c for c in self.columns if c != wanted and c.strip() == wanted.strip()]
        if spaced:  # `ID, Age` in a file whose rows are not all written that way
            return (
                f"the header says {spaced[0]!r}, with spaces around the name: take them out of "
                "the header (make-batch-file drops the space after each comma by itself only "
                "when every row is written that way). " + hint
            )
        if close:
            o, c = self.syntax.var
            hint = f"did you mean {o}{close[0]}{c}? " + hint
        return hint


def make_environment(syntax: Syntax = MODERN) -> Any:
    """Jinja2's sandbox with our delimiters and bounded work (`template_sandbox`); undefined
    names are errors, nothing is HTML-escaped, only plain values are output."""
    from jinja2 import StrictUndefined

    return make_sandbox(
        variable_start_string=syntax.var[0],
        variable_end_string=syntax.var[1],
        block_start_string=syntax.block[0],
        block_end_string=syntax.block[1],
        comment_start_string=syntax.comment[0],
        comment_end_string=syntax.comment[1],
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )


def _finalize(value: Any) -> Any:
    """What a block's expression outputs: None as nothing (as outside blocks), plain values."""
    return "" if value is None else plain_value(value)


def _is_image_value(path: str, parent: Mapping[str, Any] | None) -> bool:
    """`...image_url.url` (chat) or `image_url` of an `input_image` part (responses)."""
    if path.endswith(".image_url.url"):
        return True
    return bool(
        path.endswith(".image_url") and parent is not None and parent.get("type") == "input_image"
    )


def _check_image_url(node: Mapping[str, Any], path: str, name: str, marks: Marks) -> None:
    value = node.get("image_url")
    if isinstance(value, list):
        url = value[0].get("url", "...") if value and isinstance(value[0], dict) else "..."
        shown = json.dumps({"type": "image_url", "image_url": {"url": url}}, ensure_ascii=False)
        shown = marks.mark_re.sub("<<...>>", shown)
        from openai_batch.template.images import image_url_shape_problem

        raise BatchError(
            f"{name}: {path}.image_url {image_url_shape_problem(value)}.",
            hint=f"write the part as {shown}",
        )
