"""Find everything the Batch API would reject in a request file, before uploading it.

File rules (JSON per line, the four fields, unique custom_ids, one model and one url, 50,000
requests, 200 MB) are checked here; each body is checked against the official `openai`
package's request types for its endpoint, so the rules follow the SDK as it updates.

The SDK's TypedDicts are made strict for checking: `Iterable` fields become lists (pydantic
validates iterables lazily, so errors inside messages would go unseen), unions of shapes that
carry a `type` or `role` tag become discriminated (one precise error instead of one per
member), and unknown fields are reported (an error at the top of a body, a warning deeper).
Importing the SDK and compiling its types takes about half a second, so the compiled schemas are
kept in this machine's cache (`cache.py`) for the installed SDK version; checking then needs
only pydantic-core.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import json
import math
import re
import threading
import types
import typing
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typing_extensions as te

from . import surrogates
from .errors import BatchError
from .requestfile_limits import MAX_EMBEDDING_ARRAY, OPENAI
from .requestfile_limits import FileLimits as Limits

LINE_FIELDS = ("custom_id", "method", "url", "body")
IMAGE_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp")

ERROR = "error"
WARNING = "warning"

# Endpoint -> (module, TypedDict) of the SDK's non-streaming create params.
_BODY_TYPES = {
    "/v1/chat/completions": (
        "openai.types.chat.completion_create_params",
        "CompletionCreateParamsNonStreaming",
    ),
    "/v1/responses": (
        "openai.types.responses.response_create_params",
        "ResponseCreateParamsNonStreaming",
    ),
    "/v1/embeddings": ("openai.types.embedding_create_params", "EmbeddingCreateParams"),
    "/v1/completions": (
        "openai.types.completion_create_params",
        "CompletionCreateParamsNonStreaming",
    ),
    "/v1/moderations": ("openai.types.moderation_create_params", "ModerationCreateParams"),
}


@dataclass
class Problem:
    """One thing wrong with one line: `path` is like body.messages[1].content[1].image_url."""

    line: int
    path: str
    message: str
    severity: str = ERROR


@dataclass
class FileReport:
    """What was found in one request file."""

    path: str
    requests: int = 0
    bytes: int = 0
    model: str | None = None
    url: str | None = None
    embedding_inputs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.severity == ERROR for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.severity == WARNING for p in self.problems)

    def groups(self) -> list[tuple[str, str, str, list[int]]]:
        """(severity, path, message, lines): the same problem on many lines is said once."""
        grouped: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for p in self.problems:
            grouped[(p.severity, p.path, p.message)].append(p.line)
        order = sorted(grouped.items(), key=lambda kv: (kv[0][0] != ERROR, kv[1][0]))
        return [(sev, path, msg, lines) for (sev, path, msg), lines in order]


@dataclass
class Report:
    """All files checked; `ok` when none has an error (warnings are allowed)."""

    files: list[FileReport]

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.files)

    @property
    def warnings(self) -> int:
        return sum(f.warnings for f in self.files)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "files": [
                {
                    **{k: v for k, v in asdict(f).items() if k != "problems"},
                    "errors": f.errors,
                    "warnings": f.warnings,
                    "ok": f.errors == 0,
                    "problems": [
                        {"severity": s, "path": p, "message": m, "lines": lines}
                        for s, p, m, lines in f.groups()
                    ],
                }
                for f in self.files
            ],
        }


# -- body schemas from the SDK's TypedDicts ------------------------------------------------------

_SEQUENCES = {cabc.Iterable, cabc.Sequence, cabc.Collection, list, typing.List}  # noqa: UP006
_WRAPPERS = {te.Required, te.NotRequired, typing.Required, typing.NotRequired, te.ReadOnly}
_TAG_KEYS = ("type", "role")
NO_SHAPE = "no_matching_shape"


def _unwrap(hint: Any) -> Any:
    while get_origin(hint) in _WRAPPERS:
        hint = get_args(hint)[0]
    return hint


def _is_required(td: Any, name: str, hint: Any) -> bool:
    """Whether TypedDict `td` requires `name`.

    The SDK writes `Required[...]` under `from __future__ import annotations`, which
    `__required_keys__` cannot see on Python < 3.12; the resolved hint can.
    """
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

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
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


class _Strict:
    """Rebuilds an SDK TypedDict tree into one pydantic validates eagerly and precisely.

    `expected` maps the error type given to each shape union to what it expected
    ({"type": "'a', 'b' or 'c'", "role": ...}), for the message; share one between the
    conversions of one snapshot so their error types stay distinct."""

    def __init__(self, expected: dict[str, dict[str, str]]) -> None:
        self.memo: dict[Any, Any] = {}
        self.expected = expected

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
        """Unions of two or more object shapes pick one member (see _ShapePicker)."""
        dicts = [m for m in members if te.is_typeddict(m)]
        if len(dicts) < 2:
            return Union[tuple(members)]  # noqa: UP007
        from pydantic import Discriminator, Tag

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
        tagged: Any = Annotated[members_union, discriminator]
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


def _body_type(url: str, expected: dict[str, dict[str, str]]) -> Any:
    """The strict form of the SDK's create-params type for requests to `url`."""
    import importlib

    module, name = _BODY_TYPES[url]
    return _Strict(expected).convert(getattr(importlib.import_module(module), name))


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
    return tuple(_BODY_TYPES)


@dataclass
class _Snapshot:
    """Everything checking needs from the SDK, in plain data: pydantic-core schemas per
    endpoint, the endpoint list, and what each shape union expected (for its message)."""

    schemas: dict[str, Any]
    endpoints: tuple[str, ...]
    expected: dict[str, dict[str, str]]


def _build_snapshot() -> _Snapshot:
    """Import the SDK and compile its request types (about half a second)."""
    from pydantic import TypeAdapter

    expected: dict[str, dict[str, str]] = {}
    schemas = {
        url: _plain(TypeAdapter(_body_type(url, expected)).core_schema) for url in _BODY_TYPES
    }
    return _Snapshot(schemas, _sdk_endpoints(), expected)


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
    from . import cache as disk

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
            from . import cache as disk

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
        for url in _BODY_TYPES:
            _VALIDATORS[url] = SchemaValidator(snapshot.schemas[url])
    except Exception:
        _VALIDATORS.clear()
        return False
    return True


_VALIDATORS: dict[str, Any] = {}


def _validator(url: str) -> Any:
    """A pydantic-core validator for bodies of requests to `url`.

    Built from the snapshot's plain schema in every case (fresh or cached), so a cached run
    checks exactly as a fresh one does."""
    snapshot = _snapshot()
    if url not in _VALIDATORS:
        from pydantic_core import SchemaValidator

        _VALIDATORS[url] = SchemaValidator(snapshot.schemas[url])
    return _VALIDATORS[url]


def batch_endpoints() -> tuple[str, ...]:
    """The endpoints the Batch API accepts, as the installed SDK lists them."""
    return _snapshot().endpoints


# -- one line -------------------------------------------------------------------------------------


def check_line(obj: Any, line_no: int) -> list[Problem]:
    """Problems in one parsed request line, on its own (file-wide rules are in validate_file)."""
    if not isinstance(obj, dict):
        return [Problem(line_no, "", f"a request line must be a JSON object, not {_kind(obj)}")]
    problems = [
        Problem(line_no, key, "required field missing") for key in LINE_FIELDS if key not in obj
    ]
    problems += [
        Problem(line_no, key, "unknown field in the request line", WARNING)
        for key in obj
        if key not in LINE_FIELDS
    ]
    custom_id = obj.get("custom_id")
    if "custom_id" in obj and (not isinstance(custom_id, str) or not custom_id.strip()):
        problems.append(Problem(line_no, "custom_id", "must be a non-empty string"))
    if "method" in obj and obj["method"] != "POST":
        problems.append(Problem(line_no, "method", f'must be "POST", not {obj["method"]!r}'))
    url = obj.get("url")
    if "url" in obj and url not in batch_endpoints():
        problems.append(
            Problem(
                line_no,
                "url",
                f"{url!r} is not a Batch API endpoint ({', '.join(batch_endpoints())})",
            )
        )
    body = obj.get("body")
    if "body" in obj and not isinstance(body, dict):
        problems.append(Problem(line_no, "body", f"must be a JSON object, not {_kind(body)}"))
    elif isinstance(body, dict) and url in _BODY_TYPES:
        problems += check_body(body, url, line_no)
    return problems


def check_body(body: dict, url: str, line_no: int = 0) -> list[Problem]:
    """Problems in a request body for endpoint `url`, with `body.`-prefixed field paths."""
    from pydantic_core import ValidationError

    problems: list[Problem] = []
    try:
        _validator(url).validate_python(body, strict=True)
    except ValidationError as exc:
        problems += _from_pydantic(exc.errors(include_url=False), body, line_no)
    problems += _semantic_checks(body, url, line_no)
    return problems


def _from_pydantic(errors: list[Any], body: dict, line_no: int) -> list[Problem]:
    located = [(_clean_path(body, e["loc"], e["type"]), e) for e in errors]
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
    problems: list[Problem] = []
    type_errors: dict[tuple, list[str]] = defaultdict(list)
    for path, err in kept:
        if err["type"].endswith("_type") and not _special_type_error(path):
            type_errors[path].append(err["msg"].removeprefix("Input should be "))
            continue
        message, severity, suffix = _friendly(path, err)
        problems.append(Problem(line_no, _format_path(("body", *path, *suffix)), message, severity))
    for path, kinds in type_errors.items():
        wanted = " or ".join(dict.fromkeys(kinds))
        problems.append(Problem(line_no, _format_path(("body", *path)), f"should be {wanted}"))
    unique = {(p.path, p.message): p for p in problems}
    return list(unique.values())


def _special_type_error(path: tuple) -> bool:
    return bool(path) and path[-1] == "image_url"


def _is_inside(inner: tuple, outer: tuple) -> bool:
    return len(inner) > len(outer) and inner[: len(outer)] == outer


def _clean_path(value: Any, loc: tuple, err_type: str) -> tuple:
    """Pydantic's loc without union-member labels: just the input's own keys and indexes."""
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


def _format_path(parts: tuple) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
        return (
            'must be an object with a "url", e.g. {"url": "https://..."}, not a string',
            ERROR,
            (),
        )
    if path == ("stream",):
        return "streaming is not supported in batches: remove it or set it to false", ERROR, ()
    if kind.startswith(NO_SHAPE):
        value, expected = err.get("input"), _snapshot().expected.get(kind, {})
        if not isinstance(value, dict):
            return "should be an object", ERROR, ()
        for key in _TAG_KEYS:
            if key in value and key in expected:
                return f"{value[key]!r} is not one of {expected[key]}", ERROR, (key,)
        wanted = " or ".join(f"{k} {v}" for k, v in expected.items())
        return f"needs {wanted}", ERROR, ()
    return err["msg"].replace("Input should be", "should be"), ERROR, ()


# Ranges the API enforces that the SDK's types do not carry: field -> (lowest, highest).
RANGES: dict[str, tuple[float, float]] = {
    "max_tokens": (1, math.inf),
    "max_completion_tokens": (1, math.inf),
    "max_output_tokens": (1, math.inf),
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
    "n": (1, 128),
    "top_logprobs": (0, 20),
}


def _range_checks(body: dict, line_no: int) -> list[Problem]:
    problems = []
    for key, (low, high) in RANGES.items():
        value = body.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or low <= value <= high:
            continue
        bounds = f"at least {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
        problems.append(Problem(line_no, f"body.{key}", f"{value!r} must be {bounds}"))
    bias = body.get("logit_bias")
    if isinstance(bias, dict):
        for token, value in bias.items():
            if isinstance(value, int | float) and not -100 <= value <= 100:
                problems.append(
                    Problem(line_no, f"body.logit_bias.{token}", "must be between -100 and 100")
                )
    return problems


def _semantic_checks(body: dict, url: str, line_no: int) -> list[Problem]:
    """Rules the SDK types cannot express."""
    problems: list[Problem] = _range_checks(body, line_no)
    if url == "/v1/chat/completions" and body.get("messages") == []:
        problems.append(Problem(line_no, "body.messages", "must contain at least one message"))
    if url == "/v1/embeddings":
        problems += _check_embedding_input(body.get("input"), line_no)
    for path, image_url in _image_urls(body):
        message = _image_url_problem(image_url)
        if message:
            problems.append(Problem(line_no, path, message))
    return problems


def _check_embedding_input(value: Any, line_no: int) -> list[Problem]:
    if value == "" or (isinstance(value, list) and not value):
        return [Problem(line_no, "body.input", "cannot be empty")]
    if isinstance(value, list):
        problems = []
        if len(value) > MAX_EMBEDDING_ARRAY:
            problems.append(
                Problem(line_no, "body.input", f"at most {MAX_EMBEDDING_ARRAY:,} inputs a request")
            )
        problems += [
            Problem(line_no, f"body.input[{i}]", "cannot be empty")
            for i, item in enumerate(value)
            if item == "" or item == []
        ]
        return problems
    return []


def embedding_inputs(body: Any) -> int:
    """How many inputs an embeddings body asks for (the batch limit counts these)."""
    value = body.get("input") if isinstance(body, dict) else None
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1 if value else 0


def _image_urls(body: dict) -> list[tuple[str, Any]]:
    """(path, url) of every image in chat messages and Responses input items."""
    found = []
    for key in ("messages", "input"):
        items = body.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            content = item.get("content") if isinstance(item, dict) else None
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    continue
                where = f"body.{key}[{i}].content[{j}]"
                image = part.get("image_url")
                if part.get("type") == "image_url" and isinstance(image, dict):
                    found.append((f"{where}.image_url.url", image.get("url")))
                elif part.get("type") == "input_image" and isinstance(image, str):
                    found.append((f"{where}.image_url", image))
    return found


_DATA_URL = re.compile(r"data:([\w/+.-]+);base64,", re.IGNORECASE)


def _image_url_problem(url: Any) -> str | None:
    if not isinstance(url, str):
        return None  # the type check has said so already
    if url.startswith(("https://", "http://")):
        return None
    match = _DATA_URL.match(url)
    if url.startswith("data:"):
        if not match:
            return "a data: URL must look like data:image/png;base64,<data>"
        if match.group(1).lower() not in IMAGE_MIME:
            return f"images must be PNG, JPEG, GIF or WebP, not {match.group(1)}"
        try:
            base64.b64decode(url[match.end() : match.end() + 4096 * 4], validate=True)
        except (binascii.Error, ValueError):
            return "the data: URL's base64 data is damaged"
        return None
    return (
        "an image URL must be http(s):// or a data: URL; the API cannot read local files "
        "(make-batch-file embeds local images as data: URLs)"
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# -- files ----------------------------------------------------------------------------------------


def validate_file(path: str | Path, limits: Limits = OPENAI) -> FileReport:
    """Check one request file line by line, then the file-wide rules."""
    path = Path(path)
    if not path.is_file():
        raise BatchError(f"request file not found: {path}", hint="check the path.")
    report = FileReport(path=str(path), bytes=path.stat().st_size)
    problems = report.problems
    first_seen: dict[str, int] = {}
    models: dict[str, list[int]] = defaultdict(list)
    urls: dict[str, list[int]] = defaultdict(list)
    over_limit_line = 0
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            obj = _parse(raw, line_no, problems)
            if obj is None:
                continue
            report.requests += 1
            if report.requests == limits.requests + 1:
                over_limit_line = line_no
            if limits.unversioned_urls and isinstance(obj, dict) and "url" in obj:
                obj["url"] = limits.canonical_url(obj["url"])  # Azure: "/chat/completions"
            problems += check_line(obj, line_no)
            refused = limits.endpoint_problem(obj.get("url")) if isinstance(obj, dict) else None
            if refused:
                problems.append(Problem(line_no, "url", refused))
            if not isinstance(obj, dict):
                continue
            _check_unique(obj.get("custom_id"), line_no, first_seen, problems)
            body = obj.get("body")
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                models[body["model"]].append(line_no)
            if isinstance(obj.get("url"), str):
                urls[obj["url"]].append(line_no)
            if obj.get("url") == "/v1/embeddings":
                report.embedding_inputs += embedding_inputs(body)
    report.model = _only_one(models, "body.model", "model", problems)
    report.url = _only_one(urls, "url", "url", problems)
    _check_limits(report, limits, over_limit_line)
    return report


def _parse(raw: bytes, line_no: int, problems: list[Problem]) -> Any:
    """The JSON value of one line, or None (with a problem noted) when there is none."""
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(line_no, "", "the file starts with a byte-order mark (BOM)"))
        raw = raw[3:]
    if not raw.strip():
        problems.append(Problem(line_no, "", "empty line", WARNING))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(line_no, "", f"not UTF-8 text (byte {exc.start + 1})"))
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(line_no, "", f"not valid JSON: {exc.msg} at column {exc.colno}"))
        return None
    if surrogates.may_hold(text) and (where := surrogates.find(value)) is not None:
        message = "holds a lone UTF-16 surrogate (\\udXXX), which the API cannot read as text"
        problems.append(Problem(line_no, where, message))
        return None
    return value


def _check_unique(
    custom_id: Any, line_no: int, first_seen: dict[str, int], problems: list[Problem]
) -> None:
    if not isinstance(custom_id, str):
        return
    if custom_id in first_seen:
        problems.append(
            Problem(
                line_no,
                "custom_id",
                f"duplicate custom_id {custom_id!r} (first on line {first_seen[custom_id]})",
            )
        )
    else:
        first_seen[custom_id] = line_no


def _only_one(
    seen: dict[str, list[int]], path: str, what: str, problems: list[Problem]
) -> str | None:
    """The one value a file uses; each line that differs from the most common one is an error."""
    if not seen:
        return None
    common = max(seen, key=lambda k: len(seen[k]))
    for value, lines in seen.items():
        if value != common:
            message = f"{what} {value!r} differs from {common!r}: a batch uses one {what}"
            problems += [Problem(line, path, message) for line in lines]
    return common


def _check_limits(report: FileReport, limits: Limits, over_limit_line: int) -> None:
    problems = report.problems
    if report.requests > limits.requests:
        problems.append(
            Problem(
                over_limit_line,
                "",
                f"{report.requests:,} requests: a batch takes at most {limits.requests:,}; "
                "split it (make-batch-file --max-requests)",
            )
        )
    if report.bytes > limits.file_bytes:
        problems.append(
            Problem(
                0,
                "",
                f"the file is {report.bytes / 1e6:,.1f} MB: a batch file may be at most "
                f"{limits.file_bytes / 1e6:,.0f} MB; split it (make-batch-file --max-bytes)",
            )
        )
    if report.embedding_inputs > limits.embedding_inputs:
        problems.append(
            Problem(
                0,
                "",
                f"{report.embedding_inputs:,} embedding inputs: an embeddings batch takes at most "
                f"{limits.embedding_inputs:,} across all its requests",
            )
        )
    if report.requests == 0 and report.errors == 0:
        problems.append(Problem(0, "", "the file has no requests"))


def validate_files(
    paths: typing.Iterable[str | Path],
    limits: Limits = OPENAI,
) -> Report:
    """Check request files; the report says what is wrong where, and `ok` if nothing is."""
    return Report([validate_file(p, limits) for p in paths])


# -- human output ---------------------------------------------------------------------------------


def describe_lines(lines: list[int], shown: int = 3) -> str:
    """'line 3', 'lines 3 and 7', 'lines 3, 7, 9 and 40 more' (0 means the whole file)."""
    named = [str(n) for n in lines[:shown] if n]
    if not named:
        return "file"
    rest = len(lines) - len(named)
    if len(lines) == 1:
        return f"line {named[0]}"
    if rest == 0:
        return f"lines {', '.join(named[:-1])} and {named[-1]}"
    return f"lines {', '.join(named)} and {rest:,} more"


def render(report: Report) -> list[str]:
    """Lines for a person: each file's summary, then its grouped problems."""
    from .console import human_bytes

    out = []
    for f in report.files:
        facts = [f"{f.requests:,} requests", human_bytes(f.bytes)]
        facts += [x for x in (f.model, f.url) if x]
        verdict = "ok" if f.errors == 0 else plural(f.errors, "error")
        if f.warnings:
            verdict += f", {plural(f.warnings, 'warning')}"
        out.append(f"{f.path}: {', '.join(facts)} — {verdict}")
        for severity, path, message, lines in f.groups():
            where = describe_lines(lines) + (f": {path}" if path else "")
            out.append(f"  {severity}: {where}: {message}")
    return out


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
