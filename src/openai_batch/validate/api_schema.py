"""The request rules of OpenAI's published API specification, applied to request bodies.

`api_schema.json` beside this module is the request schema of every Batch API endpoint, taken
from OpenAI's OpenAPI spec (openai/openai-openapi, MIT licence in LICENSE-openai-openapi; the
commit is in the file's "source") by `python -m openai_batch.validate.api_schema_build`:
value ranges, lengths, enums, required fields. Nothing here reads the spec itself.

The JSON Schema is compiled to a pydantic-core validator (Rust): a general JSON Schema library
takes 0.7 ms for a chat body and 3 ms for a Responses body, too slow for 50,000 lines; this
takes tens of microseconds. Unions report every member's errors when none fits; `_choose`
keeps those of the member the input meant, so a mistake reads as one precise problem.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from openai_batch.errors import quoted
from openai_batch.validate.sdk_types import clean_path

_LABEL = "§"  # marks a union member in pydantic's error locations
_TAGS = ("type", "role")
_TAG_ERRORS = ("literal_error", "missing")
# What a list holds, for "at most 4 sequences, got 5".
_NOUNS = {"stop": "sequence", "messages": "message", "content": "part", "tools": "tool"}


@dataclass(frozen=True)
class SpecProblem:
    """One rule of the spec a body breaks: `path` is the keys and indexes under `body`."""

    path: tuple[str | int, ...]
    message: str


@cache
def snapshot() -> dict[str, Any]:
    """The committed snapshot (source, endpoints, $defs)."""
    data: dict[str, Any] = json.loads(
        (Path(__file__).with_name("api_schema.json")).read_text(encoding="utf-8")
    )
    return data


def source() -> dict[str, str]:
    """Which spec the rules come from: repository, commit, date, version."""
    return dict(snapshot()["source"])


class _Compiler:
    """JSON Schema (the subset the spec's request schemas use) -> pydantic-core schema."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.built: dict[str, Any] = {}

    def reference(self, ref: str) -> Any:
        from pydantic_core import core_schema as cs

        name = ref.removeprefix("#/$defs/")
        if name not in self.built:
            self.built[name] = None  # a recursive reference finds it while it is being built
            self.built[name] = {**self.node(self.defs[name]), "ref": name}
        return cs.definition_reference_schema(name)

    def node(self, node: Any) -> Any:
        from pydantic_core import core_schema as cs

        if not isinstance(node, dict) or not node:
            return cs.any_schema()
        if "$ref" in node:
            return self.reference(node["$ref"])
        if "allOf" in node:
            return self.node(self.merge(node))
        if "anyOf" in node:
            tagged = self.tagged(node["anyOf"])
            return tagged if tagged else self.union([self.node(m) for m in node["anyOf"]])
        if "enum" in node:
            return cs.literal_schema(list(node["enum"]))
        kind = node.get("type", "object" if "properties" in node else None)
        if isinstance(kind, list):
            return self.union([self.node({**node, "type": k}) for k in kind])
        return self.typed(kind, node)

    def typed(self, kind: str | None, node: dict[str, Any]) -> Any:
        from pydantic_core import core_schema as cs

        if kind == "string":
            return cs.str_schema(
                min_length=node.get("minLength"),
                max_length=node.get("maxLength"),
                pattern=node.get("pattern"),
                regex_engine="python-re",
            )
        if kind in ("integer", "number"):
            return self.number(kind, node)
        if kind == "boolean":
            return cs.bool_schema()
        if kind == "null":
            return cs.none_schema()
        if kind == "array":
            return cs.list_schema(
                self.node(node.get("items")),
                min_length=node.get("minItems"),
                max_length=node.get("maxItems"),
            )
        if kind == "object":
            return self.object(node)
        return cs.any_schema()

    def number(self, kind: str, node: dict[str, Any]) -> Any:
        """A number whose bounds, when broken, are named together ("from 0 to 2")."""
        from pydantic_core import core_schema as cs

        # the spec writes int64's bounds as floats (9223372036854776000.0)
        cast = int if kind == "integer" else float
        low, high = node.get("minimum"), node.get("maximum")
        above, below = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
        values: list[Any] = [None if v is None else cast(v) for v in (low, high, above, below)]
        ge, le, gt, lt = values
        bounds = {"ge": ge, "le": le, "gt": gt, "lt": lt}
        make: Any = cs.int_schema if kind == "integer" else cs.float_schema
        plain, ranged = make(), make(**bounds)
        if all(v is None for v in bounds.values()):
            return plain
        message = "must be " + _describe_range(bounds)
        return cs.chain_schema(
            [plain, cs.custom_error_schema(ranged, "out_of_range", custom_error_message=message)]
        )

    def object(self, node: dict[str, Any]) -> Any:
        from pydantic_core import core_schema as cs

        extra = node.get("additionalProperties", True)
        if "properties" not in node:
            keys = node.get("propertyNames", {})
            return cs.dict_schema(
                cs.str_schema(max_length=keys.get("maxLength")),
                self.node(extra if isinstance(extra, dict) else {}),
                max_length=node.get("maxProperties"),
            )
        required = set(node.get("required", ()))
        fields = {
            name: cs.typed_dict_field(self.node(sub), required=name in required)
            for name, sub in node["properties"].items()
        }
        return cs.typed_dict_schema(
            fields,
            total=False,
            extra_behavior="forbid" if extra is False else "allow",
            extras_schema=self.node(extra) if isinstance(extra, dict) else None,
        )

    def tagged(self, members: list[Any]) -> Any:
        """Objects told apart by a required `type` or `role` value, as a tagged union: only the
        member the tag names is tried (chat messages and parts: several times faster)."""
        from pydantic_core import core_schema as cs

        shapes = [self.shape(m) for m in members]
        if len(members) < 2 or any(shape is None for shape in shapes):
            return None
        for key in _TAGS:
            choices: dict[str, Any] = {}
            for member, shape in zip(members, shapes, strict=True):
                values = self.shape(shape["properties"].get(key), objects=False).get("enum")
                if (
                    key not in shape.get("required", ())
                    or not values
                    or not all(isinstance(v, str) and v not in choices for v in values)
                ):
                    break
                compiled = self.node(member)
                choices.update(dict.fromkeys(values, compiled))
            else:
                return cs.tagged_union_schema(choices, discriminator=key)
        return None

    def shape(self, node: Any, objects: bool = True) -> Any:
        """`node` with references and allOf resolved; with `objects`, None unless an object."""
        while isinstance(node, dict) and "$ref" in node:
            node = self.defs[node["$ref"].removeprefix("#/$defs/")]
        if isinstance(node, dict) and "allOf" in node:
            node = self.merge(node)
        if not objects:
            return node if isinstance(node, dict) else {}
        return node if isinstance(node, dict) and "properties" in node else None

    def union(self, members: list[Any]) -> Any:
        from pydantic_core import core_schema as cs

        if len(members) == 1:
            return members[0]
        # left to right: the first member that fits ends the search (smart mode tries them all,
        # a millisecond for a Responses body)
        choices: list[Any] = [(m, f"{_LABEL}{i}") for i, m in enumerate(members)]
        return cs.union_schema(choices, mode="left_to_right")

    def merge(self, node: dict[str, Any]) -> dict[str, Any]:
        """allOf of objects (the spec builds request bodies so) as one object."""
        out: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in node["allOf"]:
            while "$ref" in part:
                part = self.defs[part["$ref"].removeprefix("#/$defs/")]
            if "allOf" in part:
                part = self.merge(part)
            out["properties"].update(part.get("properties", {}))
            out["required"] += [r for r in part.get("required", ()) if r not in out["required"]]
            if part.get("additionalProperties") is False:
                out["additionalProperties"] = False
        return out


_LOCK = threading.Lock()


@cache
def _validator(url: str) -> Any:
    from pydantic_core import SchemaValidator
    from pydantic_core import core_schema as cs

    data = snapshot()
    with _LOCK:
        compiler = _Compiler(data["$defs"])
        root = compiler.reference("#/$defs/" + data["endpoints"][url])
        definitions = [schema for schema in compiler.built.values() if schema is not None]
        return SchemaValidator(cs.definitions_schema(root, definitions))


def endpoints() -> tuple[str, ...]:
    return tuple(snapshot()["endpoints"])


def check(body: Any, url: str) -> list[SpecProblem]:
    """What in `body` the spec's request schema for `url` does not allow."""
    from pydantic_core import ValidationError

    if url not in snapshot()["endpoints"]:
        return []
    try:
        _validator(url).validate_python(body, strict=True)
    except ValidationError as exc:
        located: Located = [(tuple(e["loc"]), dict(e)) for e in exc.errors(include_url=False)]
        # the input's own keys and indexes: without union labels and tagged unions' tags
        return [_problem(clean_path(body, loc, err["type"]), err) for loc, err in _choose(located)]
    return []


Located = list[tuple[tuple[Any, ...], dict[str, Any]]]


def _choose(errors: Located) -> Located:
    """Only the errors of the union member each input meant (see `_fit`); where no member takes
    the value's type, one "should be ..." error for the union."""
    plain: Located = []
    unions: dict[tuple[Any, ...], dict[str, Located]] = defaultdict(lambda: defaultdict(list))
    for loc, err in errors:
        at = next((i for i, p in enumerate(loc) if str(p).startswith(_LABEL)), None)
        if at is None:
            plain.append((loc, err))
        else:
            unions[loc[:at]][loc[at]].append((loc[:at] + loc[at + 1 :], err))
    for where, members in unions.items():
        resolved = [_choose(member) for member in members.values()]
        if all(_wrong_type(where, member) for member in resolved):
            plain.append((where, _no_member(where, resolved)))
            continue
        best: Located = min(resolved, key=lambda member: _fit(where, member))
        plain += best
    return plain


def _fit(where: tuple[Any, ...], member: Located) -> tuple[int, int, int]:
    """Lower is the member the input more likely meant: its type fits, its tags (type, role)
    agree, and it finds fewest other problems."""
    wrong_type = _wrong_type(where, member)
    wrong_tag = any(
        len(loc) == len(where) + 1 and loc[-1] in _TAGS and err["type"] in _TAG_ERRORS
        for loc, err in member
    )
    return (wrong_type, wrong_tag, len(member))


def _wrong_type(where: tuple[Any, ...], member: Located) -> bool:
    """The value at `where` is not of this member's type (or not its literal value)."""
    return any(loc == where and _is_type_error(err) for loc, err in member)


def _is_type_error(err: dict[str, Any]) -> bool:
    kind = err["type"]
    return kind.endswith("_type") or kind in ("none_required", "literal_error")


def _no_member(where: tuple[Any, ...], members: list[Located]) -> dict[str, Any]:
    wanted: list[str] = []
    for member in members:
        for loc, err in member:
            if loc == where and _is_type_error(err):
                text = _expected(err)
                if text not in wanted:
                    wanted.append(text)
    return {"type": "union_type", "msg": "should be " + " or ".join(wanted), "ctx": {}}


def _expected(err: dict[str, Any]) -> str:
    if err["type"] == "literal_error":
        return "one of " + str(err.get("ctx", {}).get("expected", ""))
    if err["type"] == "none_required":
        return "null"
    return str(err["msg"]).removeprefix("Input should be ").removeprefix("a valid ")


def _problem(loc: tuple[Any, ...], err: dict[str, Any]) -> SpecProblem:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    noun = _NOUNS.get(str(loc[-1]) if loc else "", "item")
    text: str
    suffix: tuple[str, ...] = ()
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        suffix = (str(ctx.get("discriminator", "")).strip("'"),)
    if kind == "union_tag_invalid":
        text = f"{quoted(ctx.get('tag'))} is not one of {ctx.get('expected_tags')}"
    elif kind in ("missing", "union_tag_not_found"):
        text = "required field missing"
    elif kind == "extra_forbidden":
        text = "unknown field: the API rejects it (check the spelling)"
    elif kind in ("too_long", "string_too_long"):
        bound = ctx.get("max_length")
        text = f"at most {_count(bound, noun, kind)}, got {_length(value)}"
    elif kind in ("too_short", "string_too_short"):
        bound = ctx.get("min_length")
        text = f"at least {_count(bound, noun, kind)}, got {_length(value)}"
    elif kind == "out_of_range":
        text = f"{err['msg']}, got {quoted(value)}"
    elif kind == "literal_error":
        text = f"{quoted(value)} is not one of {ctx.get('expected')}"
    elif kind == "string_pattern_mismatch":
        text = f"must match the pattern {ctx.get('pattern')}"
    else:
        text = str(err["msg"]).replace("Input should be", "should be")
    return SpecProblem(loc + suffix, text)


def _describe_range(bounds: dict[str, Any]) -> str:
    low, high = bounds["ge"], bounds["le"]
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    parts = [
        f"{word} {bounds[key]:g}"
        for key, word in (
            ("ge", "at least"),
            ("gt", "more than"),
            ("le", "at most"),
            ("lt", "less than"),
        )
        if bounds[key] is not None
    ]
    return " and ".join(parts)


def _count(n: Any, noun: str, kind: str) -> str:
    word = "character" if kind.startswith("string") else noun
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _length(value: Any) -> str:
    return f"{len(value):,}" if isinstance(value, str | list | dict) else repr(value)
