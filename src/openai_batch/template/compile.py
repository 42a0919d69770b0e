"""Compiling a template: its JSON text, scanned for placeholders and blocks, turned into the
literal text and slots of a `prompt.Template`; every problem is found here, before any row is
rendered (unknown columns, broken JSON, an image part of the wrong shape).
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, quoted, quoted_list
from openai_batch.jsondepth import MAX_DEPTH, too_deep, too_deep_at
from openai_batch.table import surrogates
from openai_batch.template.marks import Marks
from openai_batch.template.prompt import CR, BareSlot, Expr, StringSlot, Template, Token
from openai_batch.template.sandbox import (
    make_sandbox,
    plain_value,
)
from openai_batch.template.syntax import MODERN, Syntax, choose_syntax


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
    if too_deep(sanitized):  # the json module would recurse near the interpreter's limit
        raise _too_deep(name, text)
    try:
        tree = json.loads(sanitized)
    except json.JSONDecodeError as exc:
        raise _json_error(name, text, exc, syntax) from None
    except ValueError:  # the one other: an integer longer than int() reads (a traceback)
        digits = sys.get_int_max_str_digits()
        raise BatchError(
            f"{name} holds an integer of over {digits:,} digits, too long to read.",
            hint="no request field takes one: write it shorter.",
        ) from None
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


def _too_deep(name: str, text: str) -> BatchError:
    """A template nested past jsondepth.MAX_DEPTH, at the place it goes past (found in the
    text as written: a bare placeholder's own braces open and close within it)."""
    at = too_deep_at(text)
    where = ""
    if at is not None:
        line = text.count("\n", 0, at) + 1
        where = f" at line {line}, column {at - text.rfind(chr(10), 0, at):,}"
    return BatchError(
        f"{name} is nested too deeply{where}: more than {MAX_DEPTH} lists or objects inside "
        "each other.",
        hint="no request body is this deep; the template is almost certainly damaged: check it "
        "there.",
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
        if isinstance(node, list):  # a loop, not a comprehension: one frame a level (512 deep)
            items = []
            for i, v in enumerate(node):
                items.append(self.walk(v, f"{path}[{i}]", None))
            return items
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
        text = "".join(source).replace("\r", f"{self.syntax.var[0]} {CR} {self.syntax.var[1]}")
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
        known = {c for c in self.columns if c.isidentifier()} | {"row", CR} | set(self.env.globals)
        for unknown in sorted(names - known):
            if token is not None:
                raise self._unknown(token, f"{quoted(unknown)} is not a column", name=unknown)
            raise BatchError(
                f"{self.name}: {where} uses {quoted(unknown)}, which is not a column.",
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
        columns = quoted_list(self.columns)
        hint = f"the data's columns are: {columns}."
        spaced = [c for c in self.columns if c != wanted and c.strip() == wanted.strip()]
        if spaced:  # `ID, Age` in a file whose rows are not all written that way
            return (
                f"the header says {quoted(spaced[0])}, with spaces around the name: take them "
                "out of the header (make-batch-file drops the space after each comma by itself "
                "only when every row is written that way). " + hint
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
