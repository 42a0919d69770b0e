"""The official `openai` package's request types, made strict, as a checker of request bodies.

The SDK's TypedDicts are made strict for checking: `Iterable` fields become lists (pydantic
validates iterables lazily, so errors inside messages would go unseen), unions of shapes that
carry a `type` or `role` tag become discriminated (one precise error instead of one per
member), and unknown fields are reported (an error at the top of a body, a warning deeper).
Where the SDK calls a field required that the API treats as optional (`API_OPTIONAL`), the API
is followed. Importing the SDK and compiling its types takes about half a second, so the
compiled schemas are kept in this machine's cache (`cache.py`) for the installed SDK version;
checking then needs only pydantic-core.
"""

from __future__ import annotations

import collections.abc as cabc
import threading
import types
import typing
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typing_extensions as te

from openai_batch.errors import quoted
from openai_batch.requestfile.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES
from openai_batch.requestfile.problems import ERROR, WARNING

# Endpoint -> (module, TypedDict) of the SDK's non-streaming create params.
BODY_TYPES = {
    CHAT: (
        "openai.types.chat.completion_create_params",
        "CompletionCreateParamsNonStreaming",
    ),
    RESPONSES: (
        "openai.types.responses.response_create_params",
        "ResponseCreateParamsNonStreaming",
    ),
    EMBEDDINGS: ("openai.types.embedding_create_params", "EmbeddingCreateParams"),
    COMPLETIONS: (
        "openai.types.completion_create_params",
        "CompletionCreateParamsNonStreaming",
    ),
    MODERATIONS: ("openai.types.moderation_create_params", "ModerationCreateParams"),
}


# -- body schemas from the SDK's TypedDicts ------------------------------------------------------

_SEQUENCES = {cabc.Iterable, cabc.Sequence, cabc.Collection, list, typing.List}  # noqa: UP006
_WRAPPERS = {te.Required, te.NotRequired, typing.Required, typing.NotRequired, te.ReadOnly}
_TAG_KEYS = ("type", "role")
NO_SHAPE = "no_matching_shape"
_CHOSEN_MAX = 4096  # shapes remembered per union (forgotten all at once past it)

# Fields the SDK's types call required that the API and its documentation treat as optional:
# the API is followed. (TypedDict name, field).
API_OPTIONAL = {
    # the spec's "Image input" example for /v1/responses has no detail; the API defaults to auto
    ("ResponseInputImageParam", "detail"),
    # the spec's "Functions" example for /v1/responses has no strict; its request schema
    # (FunctionToolParam) requires only name and type
    ("FunctionToolParam", "strict"),
    ("FunctionToolParam", "parameters"),
}


def _unwrap(hint: Any) -> Any:
    while get_origin(hint) in _WRAPPERS:
        hint = get_args(hint)[0]
    return hint


def _is_required(td: Any, name: str, hint: Any) -> bool:
    """Whether TypedDict `td` requires `name`.

    The SDK writes `Required[...]` under `from __future__ import annotations`, which
    `__required_keys__` cannot see on Python < 3.12; the resolved hint can.
    """
    if (td.__name__, name) in API_OPTIONAL:
        return False
    origin = get_origin(hint)
    if origin in (te.Required, typing.Required):
        return True
    if origin in (te.NotRequired, typing.NotRequired):
        return False
    return name in td.__required_keys__


def _literal_values(hint: Any) -> tuple:
    """The values of a Literal, also inside Optional[...] (None is not a tag)."""
    if get_origin(hint) is Literal:
        return get_args(hint)
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(v for arg in get_args(hint) for v in _literal_values(arg))
    return ()


class _Shape:
    """What tells one TypedDict member of a union apart: its tags and keys."""

    def __init__(self, td: Any, tag: str) -> None:
        self.tag = tag
        hints = typing.get_type_hints(td, include_extras=True)
        self.keys = set(hints)
        self.required = {k for k, h in hints.items() if _is_required(td, k, h)}
        self.literals: dict[str, tuple] = {}
        for key in _TAG_KEYS:
            values = _literal_values(_unwrap(hints.get(key)))
            if values:
                self.literals[key] = values

    def fits(self, value: dict) -> bool:
        """The input's type/role agree with this shape's (a required tag must be present)."""
        for key in _TAG_KEYS:
            allowed = self.literals.get(key)
            if key in value:
                if allowed is None and key not in self.keys:
                    return False  # a tag this shape does not have at all
                if allowed is not None and value[key] not in allowed:
                    return False
            elif key in self.required:
                return False
        return True

    def misfit(self, value: dict) -> tuple[int, int]:
        """(required keys missing, unknown keys present): lower is a closer match."""
        return len(self.required - value.keys()), len(value.keys() - self.keys)


class _ShapePicker:
    """Chooses the union member an input means, from its type/role tag and then its keys.

    Pydantic's smart unions report every member's errors when all fail (dozens for the
    Responses API's input items); picking one member first gives the one error that matters.
    """

    def __init__(self, shapes: list[_Shape]) -> None:
        self.shapes = shapes
        self.__name__ = "shape"  # pydantic names the validator after it
        self.chosen: dict[tuple[Any, ...], str | None] = {}

    def __call__(self, value: Any) -> str | None:
        """The tag of the member `value` means (None: no member fits).

        The choice depends only on the value's keys and its type/role tags (see `_Shape`), so
        it is remembered by those: the parts of a file's lines mostly share a few shapes, and
        this is called for every message and content part of every line."""
        if not isinstance(value, dict):
            return None
        tags = (value.get("type"), value.get("role"))  # a key's presence is in tuple(value)
        if not all(tag is None or type(tag) is str for tag in tags):
            return self.choose(value)  # unhashable or unusual tags: decided afresh
        key = (*tags, *value)
        try:
            return self.chosen[key]
        except KeyError:
            pass
        if len(self.chosen) >= _CHOSEN_MAX:
            self.chosen.clear()
        chosen = self.chosen[key] = self.choose(value)
        return chosen

    def choose(self, value: dict) -> str | None:
        fitting = [s for s in self.shapes if s.fits(value)]
        if not fitting:
            return None
        return min(fitting, key=lambda s: s.misfit(value)).tag

    def expected(self) -> dict[str, str]:
        """{"type": "'text', 'image_url' or 'file'", "role": ...} for the no-match message."""
        out = {}
        for key in _TAG_KEYS:
            tags = dict.fromkeys(v for shape in self.shapes for v in shape.literals.get(key, ()))
            values = [repr(v) for v in tags]
            if values:
                out[key] = " or ".join(filter(None, [", ".join(values[:-1]), values[-1]]))
        return out


def _tag_literals(td: Any) -> dict[str, tuple] | None:
    """{tag key: its literal values} of a converted TypedDict whose tag keys are each a plain
    required-or-optional Literal (None: some tag key is typed otherwise)."""
    hints = typing.get_type_hints(td, include_extras=True)
    out = {}
    for key in _TAG_KEYS:
        if key not in hints:
            continue
        hint = _unwrap(hints[key])
        if get_origin(hint) is not Literal:
            return None
        out[key] = get_args(hint)
    return out


def _plain_tag(members: list[Any]) -> str | None:
    """The tag key that alone tells the members of a union apart, if there is one.

    For the snapshot's `fast` types: every member requires the key, with literal values no
    other member has, and its other tag keys are plain literals too. Then a value that a
    member validates against is a value `_ShapePicker` gives to that member and no other
    (the member's keys and tags all fit; every other member's tag does not), so a pydantic
    tagged union on the key accepts exactly what the picker's union accepts, or less."""
    literals = [_tag_literals(m) for m in members]
    if any(found is None for found in literals):
        return None
    for key in _TAG_KEYS:
        seen: set[Any] = set()
        ok = True
        for member, found in zip(members, literals, strict=True):
            values = (found or {}).get(key)
            hint = typing.get_type_hints(member, include_extras=True).get(key)
            if not values or not _is_required(member, key, hint) or seen & set(values):
                ok = False
                break
            seen |= set(values)
        if ok:
            return key
    return None


class _Strict:
    """Rebuilds an SDK TypedDict tree into one pydantic validates eagerly and precisely.

    `expected` maps the error type given to each shape union to what it expected
    ({"type": "'a', 'b' or 'c'", "role": ...}), for the message; share one between the
    conversions of one snapshot so their error types stay distinct."""

    def __init__(self, expected: dict[str, dict[str, str]], fast: bool = False) -> None:
        self.memo: dict[Any, Any] = {}
        self.expected = expected
        self.fast = fast

    def register(self, picker: _ShapePicker) -> str:
        """A distinct pydantic error type for a union, to say later which tags it wanted."""
        kind = f"{NO_SHAPE}:{len(self.expected)}"
        self.expected[kind] = picker.expected()
        return kind

    def convert(self, tp: Any) -> Any:
        if te.is_typeddict(tp):
            return self.typed_dict(tp)
        origin = get_origin(tp)
        if origin is None or origin is Literal:
            return tp
        args = get_args(tp)
        if origin is Annotated:  # the SDK's metadata (aliases) does not matter for checking
            return self.convert(args[0])
        if origin in (Union, types.UnionType):
            return self.union([self.convert(a) for a in args])
        if origin in _SEQUENCES or getattr(origin, "__name__", "") == "SequenceNotStr":
            return types.GenericAlias(list, (self.convert(args[0]),))
        if origin in (dict, cabc.Mapping, typing.Dict):  # noqa: UP006
            return types.GenericAlias(dict, (args[0], self.convert(args[1])))
        return tp

    def union(self, members: list[Any]) -> Any:
        """Unions of two or more object shapes pick one member (see _ShapePicker); in the
        fast types, by their tag alone where that accepts no more (see `_plain_tag`)."""
        dicts = [m for m in members if te.is_typeddict(m)]
        if len(dicts) < 2:
            return Union[tuple(members)]  # noqa: UP007
        from pydantic import Discriminator, Tag

        key = _plain_tag(dicts) if self.fast else None
        tagged: Any
        if key is not None:
            tagged = Annotated[Union[tuple(dicts)], Discriminator(key)]  # noqa: UP007
        else:
            names = [d.__name__ for d in dicts]
            tags = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]
            picker = _ShapePicker([_Shape(d, t) for d, t in zip(dicts, tags, strict=True)])
            variants = tuple(Annotated[d, Tag(t)] for d, t in zip(dicts, tags, strict=True))
            members_union: Any = Union[variants]  # type: ignore[valid-type]  # noqa: UP007
            discriminator = Discriminator(
                picker,
                custom_error_type=self.register(picker),
                custom_error_message="matches none of the shapes the API accepts here",
            )
            tagged = Annotated[members_union, discriminator]
        others = [m for m in members if not te.is_typeddict(m)]
        return Union[(*others, tagged)] if others else tagged

    def typed_dict(self, td: Any) -> Any:
        if td in self.memo:
            return self.memo[td]
        from pydantic import ConfigDict

        fields = {}
        for name, hint in typing.get_type_hints(td, include_extras=True).items():
            converted = self.convert(_unwrap(hint))
            if _is_required(td, name, hint):
                fields[name] = te.Required[converted]
            else:
                fields[name] = te.NotRequired[converted]
        new = te.TypedDict(td.__name__, fields, total=False)  # type: ignore[misc, operator]
        new.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
        self.memo[td] = new
        return new


def _body_type(url: str, expected: dict[str, dict[str, str]], fast: bool = False) -> Any:
    """The strict form of the SDK's create-params type for requests to `url` (`fast`: with
    plain tagged unions where they accept no more than the picker's, see `_plain_tag`)."""
    import importlib

    module, name = BODY_TYPES[url]
    return _Strict(expected, fast).convert(getattr(importlib.import_module(module), name))


def _sdk_endpoints() -> tuple[str, ...]:
    """The endpoints the Batch API accepts, as the installed SDK lists them."""
    try:
        from openai.types.batch_create_params import BatchCreateParams

        hint = _unwrap(typing.get_type_hints(BatchCreateParams)["endpoint"])
        values = get_args(hint)
        if values:
            return tuple(str(v) for v in values)
    except (ImportError, KeyError):  # pragma: no cover - very old or very new SDK
        pass
    return tuple(BODY_TYPES)


@dataclass
class _Snapshot:
    """Everything checking needs from the SDK, in plain data: pydantic-core schemas per
    endpoint, the endpoint list, and what each shape union expected (for its message).

    `fast` are the same types with plain tagged unions where that accepts no more (see
    `_plain_tag`): validated in pydantic-core alone, without calling back into Python for every
    message and content part. A body they accept, `schemas` accept; a body they refuse is
    checked against `schemas`, which say what is wrong."""

    schemas: dict[str, Any]
    endpoints: tuple[str, ...]
    expected: dict[str, dict[str, str]]
    fast: dict[str, Any]


def _build_snapshot() -> _Snapshot:
    """Import the SDK and compile its request types (about half a second)."""
    from pydantic import TypeAdapter

    expected: dict[str, dict[str, str]] = {}
    schemas = {
        url: _plain(TypeAdapter(_body_type(url, expected)).core_schema) for url in BODY_TYPES
    }
    fast = {
        url: _plain(TypeAdapter(_body_type(url, {}, fast=True)).core_schema) for url in BODY_TYPES
    }
    return _Snapshot(schemas, _sdk_endpoints(), expected, fast)


def _plain(schema: Any) -> Any:
    """A core schema without the `cls` references of its typed-dict schemas (the generated
    TypedDicts): validation does not use them, and without them the schema pickles and loads
    without importing the SDK. Nothing else is touched (a field may be named "cls")."""
    if isinstance(schema, dict):
        typed_dict = schema.get("type") == "typed-dict"
        return {k: _plain(v) for k, v in schema.items() if not (typed_dict and k == "cls")}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


_SNAPSHOT_LOCK = threading.Lock()
_SNAPSHOTS: list[_Snapshot] = []  # the one in use, once loaded or built


def _snapshot_name() -> str:
    from openai_batch.local import cache as disk

    return "request-types-" + disk.key(
        disk.versions("openai", "pydantic", "pydantic-core", "typing-extensions"),
        disk.installed_stamp("openai"),
        disk.source_of(__file__),
    )


def _snapshot() -> _Snapshot:
    """The compiled request types: from this machine's cache when it holds them for the
    installed SDK, pydantic and this module, else built (and kept for next time).

    Locked: make-batch-file loads it in a warm-up thread while the main thread may need it."""
    if _SNAPSHOTS:
        return _SNAPSHOTS[0]
    with _SNAPSHOT_LOCK:
        if not _SNAPSHOTS:
            from openai_batch.local import cache as disk

            name = _snapshot_name()
            snapshot = disk.load(name)
            if not isinstance(snapshot, _Snapshot) or not _compiles(snapshot):
                snapshot = _build_snapshot()
                disk.store(name, snapshot)
            _SNAPSHOTS.append(snapshot)
    return _SNAPSHOTS[0]


def _compiles(snapshot: _Snapshot) -> bool:
    """Whether a cached snapshot still makes validators (else it is rebuilt from the SDK)."""
    from pydantic_core import SchemaValidator

    try:
        for url in BODY_TYPES:
            _VALIDATORS[url] = SchemaValidator(snapshot.schemas[url])
            _FAST[url] = SchemaValidator(snapshot.fast[url])
    except Exception:
        _VALIDATORS.clear()
        _FAST.clear()
        return False
    return True


_VALIDATORS: dict[str, Any] = {}
_FAST: dict[str, Any] = {}  # the snapshot's `fast` types, by endpoint


def _validator(url: str) -> Any:
    """A pydantic-core validator for bodies of requests to `url`.

    Built from the snapshot's plain schema in every case (fresh or cached), so a cached run
    checks exactly as a fresh one does."""
    snapshot = _snapshot()
    if url not in _VALIDATORS:
        from pydantic_core import SchemaValidator

        _VALIDATORS[url] = SchemaValidator(snapshot.schemas[url])
    return _VALIDATORS[url]


def _fast_validator(url: str) -> Any:
    """The validator of the snapshot's `fast` types for `url` (see `_Snapshot`)."""
    validator = _FAST.get(url)
    if validator is None:
        from pydantic_core import SchemaValidator

        validator = _FAST[url] = SchemaValidator(_snapshot().fast[url])
    return validator


def batch_endpoints() -> tuple[str, ...]:
    """The endpoints the Batch API accepts, as the installed SDK lists them."""
    return _snapshot().endpoints


# (path, message, severity): `path` is the keys and indexes under `body`.
Found = tuple[tuple[Any, ...], str, str]


def check(body: dict, url: str) -> list[Found]:
    """What the SDK's request type for `url` does not allow in `body`."""
    from pydantic_core import ValidationError

    try:
        _fast_validator(url).validate_python(body, strict=True)
        return []  # what the fast types accept, the picker's accept (see _Snapshot)
    except ValidationError:
        pass
    try:
        _validator(url).validate_python(body, strict=True)
    except ValidationError as exc:
        return _from_pydantic(exc.errors(include_url=False), body)
    return []


def _from_pydantic(errors: list[Any], body: dict) -> list[Found]:
    located = [(clean_path(body, e["loc"], e["type"]), e) for e in errors]
    # In an undiscriminated union (content: string or parts) a "not a string" error beside
    # errors deeper inside the same value only says the value took the other branch.
    kept = [
        (path, err)
        for path, err in located
        if not (
            err["type"].endswith("_type")
            and any(other is not err and _is_inside(p, path) for p, other in located)
        )
    ]
    problems: list[Found] = []
    type_errors: dict[tuple, list[str]] = defaultdict(list)
    for path, err in kept:
        if err["type"].endswith("_type") and not _special_type_error(path):
            type_errors[path].append(err["msg"].removeprefix("Input should be "))
            continue
        message, severity, suffix = _friendly(path, err)
        problems.append(((*path, *suffix), message, severity))
    for path, kinds in type_errors.items():
        wanted = " or ".join(dict.fromkeys(kinds))
        problems.append((path, f"should be {wanted}", ERROR))
    return list({(p[0], p[1]): p for p in problems}.values())


def _special_type_error(path: tuple) -> bool:
    return bool(path) and path[-1] == "image_url"


def _is_inside(inner: tuple, outer: tuple) -> bool:
    return len(inner) > len(outer) and inner[: len(outer)] == outer


def clean_path(value: Any, loc: tuple, err_type: str) -> tuple:
    """Pydantic's loc without union-member labels (and tags): just the input's own keys and
    indexes (a missing field's name last)."""
    path: list = []
    for i, item in enumerate(loc):
        if isinstance(value, dict) and isinstance(item, str):
            if item in value:
                path.append(item)
                value = value[item]
            elif i == len(loc) - 1 and err_type == "missing":
                path.append(item)
        elif isinstance(value, list) and isinstance(item, int) and 0 <= item < len(value):
            path.append(item)
            value = value[item]
    return tuple(path)


def _friendly(path: tuple, err: dict) -> tuple[str, str, tuple]:
    """A message a person can act on, its severity, and a path suffix (a tag's field name)."""
    kind = err["type"]
    if kind == "extra_forbidden":
        if len(path) == 1:
            return "unknown field: the API rejects requests with it (check the spelling)", ERROR, ()
        return "unknown field (the API may reject it; check the spelling)", WARNING, ()
    if kind == "missing":
        return "required field missing", ERROR, ()
    if _special_type_error(path) and kind in ("dict_type", "typed_dict_type"):
        from openai_batch.template.images import image_url_shape_problem

        return image_url_shape_problem(err.get("input")), ERROR, ()
    if path == ("stream",):
        return "streaming is not supported in batches: remove it or set it to false", ERROR, ()
    if kind.startswith(NO_SHAPE):
        value, expected = err.get("input"), _snapshot().expected.get(kind, {})
        if not isinstance(value, dict):
            return "should be an object", ERROR, ()
        for key in _TAG_KEYS:
            if key in value and key in expected:
                return f"{quoted(value[key])} is not one of {expected[key]}", ERROR, (key,)
        wanted = " or ".join(f"{k} {v}" for k, v in expected.items())
        return f"needs {wanted}", ERROR, ()
    return err["msg"].replace("Input should be", "should be"), ERROR, ()
