"""The sandbox template expressions run in: Jinja2's, with the work of one row bounded.

Templates are code that people share, so every expression must either produce text or end in a
clear error, within seconds and bounded memory, whatever it says:

- operators are intercepted (`intercepted_binops`) and refused *before* they would build a value
  over `MAX_VALUE_CHARS` characters/items or an integer over `MAX_INT_BITS` bits; intercepted
  operators are also never folded at compile time, so `10**(10**10)` cannot hang compilation;
- calls, filters and `~` joins are checked the same way (a width or count argument over the cap
  is refused before the call; every result is measured after);
- loops and `range` count against `MAX_LOOP_STEPS` iterations per row;
- what one row's expressions render, all together (a list of many big strings, a loop that
  outputs a big value each time), counts against `MAX_ROW_CHARS`, checked as each value is
  rendered so it stops before memory runs out;
- only strings, numbers, booleans, None and lists/dicts of them may be rendered: anything else
  (an object's repr with a memory address, an undefined value inside a list) is an error naming
  the expression (`plain_value`).

docs/template-limits.md states these limits for users.
"""

from __future__ import annotations

import functools
import math
import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from openai_batch.table import surrogates

MAX_VALUE_CHARS = 10_000_000  # characters (or items) one value may have
MAX_INT_BITS = 100_000  # bits of one integer (about 30,000 digits)
MAX_LOOP_STEPS = 100_000  # loop iterations in one row, all loops together
MAX_ROW_CHARS = 20_000_000  # characters (or items) all of one row's expression values hold
MAX_DEPTH = 100  # nesting of a rendered list/dict

_BIG_WIDTH = re.compile(r"\d{8,}")  # a width in a format string: 10,000,000 and up
# Filters whose result is no bigger than a small multiple of their input (the input is already
# bounded): left unwrapped, as rendering calls them for every row.
_SHRINKING_FILTERS = frozenset(
    {
        "abs",
        "attr",
        "bool",
        "capitalize",
        "count",
        "default",
        "d",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "forceescape",
        "groupby",
        "int",
        "last",
        "length",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "round",
        "safe",
        "select",
        "selectattr",
        "sort",
        "string",
        "striptags",
        "title",
        "trim",
        "unique",
        "upper",
        "wordcount",
    }
)
_CALL_GROWTH = {"ljust", "rjust", "center", "zfill", "expandtabs", "format", "format_map"}


class TemplateLimitError(Exception):
    """An expression would exceed a limit on the work or memory of one row, or produce what
    cannot be rendered."""


# -- per-row accounting ------------------------------------------------------------------------

_state = threading.local()


def start_row() -> None:
    """Reset the loop and output budgets: called before each row's expressions are evaluated."""
    _state.steps = 0
    _state.chars = 0


def _spend(chars: int) -> None:
    used = getattr(_state, "chars", 0) + chars
    _state.chars = used
    if used > MAX_ROW_CHARS:
        raise TemplateLimitError(
            f"the template's expressions render more than {MAX_ROW_CHARS:,} characters for one row"
        )


def _step() -> None:
    steps = getattr(_state, "steps", 0) + 1
    _state.steps = steps
    if steps > MAX_LOOP_STEPS:
        raise TemplateLimitError(
            f"the template loops more than {MAX_LOOP_STEPS:,} times for one row"
        )


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's iterable, each step counted against the row's budget."""
    for item in iterable:
        _step()
        yield item


# -- sizes ---------------------------------------------------------------------------------------


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"{what} would be over {MAX_VALUE_CHARS:,} characters, the limit of one value"
    )


def _size(value: Any) -> int | None:
    """Characters or items of a sized value, or None for numbers and the like."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return None


def check_size(value: Any, what: str = "a value") -> Any:
    size = _size(value)
    if size is not None and size > MAX_VALUE_CHARS:
        raise _too_big(what)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"{what} would be an integer over {MAX_INT_BITS:,} bits")
    return value


def _bits(value: Any) -> float:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length()
    if isinstance(value, float):
        return 64
    return 0


def _check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, a result over the limits."""
    ints = isinstance(left, int) and isinstance(right, int)
    if op == "*":
        for seq, count in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(count, int) and size * count > MAX_VALUE_CHARS:
                raise _too_big("a repeated text or list")
        if ints and _bits(left) + _bits(right) > MAX_INT_BITS:
            raise TemplateLimitError(f"a product would be an integer over {MAX_INT_BITS:,} bits")
    elif op == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_VALUE_CHARS:
            raise _too_big("a sum of texts or lists")
    elif op == "**":
        if ints and right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateLimitError(f"a power would be an integer over {MAX_INT_BITS:,} bits")
    elif op == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
        raise _too_big("a %-formatted text")


_NUMBERS = frozenset({int, float, bool})
_SMALL_OPS = frozenset({"+", "-", "/", "//", "%"})
_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
    "%": operator.mod,
}


# -- the environment -----------------------------------------------------------------------------


@functools.cache
def _sandbox_class() -> type:
    """Jinja2's immutable sandbox with every operator, call, filter, join and loop bounded
    (built on first use: importing jinja2 costs every command that renders plain columns)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(_BINOPS)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator in _SMALL_OPS and type(left) in _NUMBERS and type(right) in _NUMBERS:
                return _BINOPS[operator](left, right)  # adds a bit at most: nothing to check
            _check_binop(operator, left, right)
            return check_size(_BINOPS[operator](left, right), f"{operator!r} here")

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(__obj, "__name__", "")
            # a str method, or the sandbox's wrapper of str.format (kept as __wrapped__)
            owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
            if isinstance(owner, str) and name in _CALL_GROWTH:
                _check_growth(name, owner, args, kwargs)
            if isinstance(owner, str) and name == "replace":
                _check_replace(owner, args)
            result = super().call(__context, __obj, *args, **kwargs)
            return check_size(result, f"{name or 'a call'}()")

        def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
            return super()._generate(_bounded_tree(source), name, filename, defer_init)

    return BoundedSandbox


def _check_growth(name: str, text: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and value > MAX_VALUE_CHARS:
            raise _too_big(f"{name}()")
    if name in ("format", "format_map") and _BIG_WIDTH.search(text):
        raise _too_big(f"{name}()")
    width = args[0] if args and isinstance(args[0], int) else 8
    if name == "expandtabs" and text.count("\t") * width + len(text) > MAX_VALUE_CHARS:
        raise _too_big("expandtabs()")


def _check_replace(text: str, args: tuple[Any, ...]) -> None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        hits = len(text) + 1 if old == "" else text.count(old)
        if len(text) + hits * max(0, len(new) - len(old)) > MAX_VALUE_CHARS:
            raise _too_big("replace()")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses width/count arguments over the cap and results over it."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0  # the context/environment comes first

    @functools.wraps(func)  # keeps jinja's pass_context / pass_environment markers
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        for arg in (*rest, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and arg > MAX_VALUE_CHARS:
                raise _too_big(f"the {name} filter")
        if name == "format" and isinstance(value, str) and _BIG_WIDTH.search(value):
            raise _too_big("the format filter")
        if name == "replace" and isinstance(value, str):
            _check_replace(value, tuple(rest[:2]))
        return check_size(func(*args, **kwargs), f"the {name} filter")

    return bounded


def bounded_join(pieces: Iterable[Any]) -> str:
    """`a ~ b ~ c`: the joined text, refused before it is built when over the cap."""
    texts = [str(p) for p in pieces]
    if sum(len(t) for t in texts) > MAX_VALUE_CHARS:
        raise _too_big("a ~ join")
    return "".join(texts)


def _bounded_tree(tree: Any) -> Any:
    """The parsed template with every loop's iterable counted and every `~` join bounded."""
    from jinja2 import nodes

    for loop in list(tree.find_all(nodes.For)):
        if not loop.recursive:
            loop.iter = _imported_call("counted", [loop.iter])
    for concat in list(tree.find_all(nodes.Concat)):
        call = _imported_call("bounded_join", [nodes.List(list(concat.nodes))])
        concat.nodes = [call]  # a Concat of one element: the join's result
    return tree


def _imported_call(function: str, args: list[Any]) -> Any:
    from jinja2 import nodes

    target = nodes.ImportedName(f"{__name__}.{function}")
    return nodes.Call(target, args, [], None, None)


def make_sandbox(**options: Any) -> Any:
    """The environment for templates, with `options` (delimiters, undefined, finalize ...)."""
    from jinja2.sandbox import safe_range

    env = _sandbox_class()(**options)
    env.filters = {
        name: f if name in _SHRINKING_FILTERS else _bounded_filter(name, f)
        for name, f in env.filters.items()
    }
    env.globals = {
        "range": safe_range,  # at most 100,000 numbers; loops over it are counted
        "dict": dict,
        "cycler": env.globals["cycler"],
        "joiner": env.globals["joiner"],
        "namespace": env.globals["namespace"],
    }
    return env


# -- what may be rendered ----------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """`value` when it is a string, number, boolean, None or a list/dict of them; else an
    error (an object would reach the prompt as its repr, memory address included)."""
    kind = type(value)
    if kind is str:  # the common case, without a call per level
        if _lone_surrogate(value) is None:
            _spend(len(value))
            return value
    elif kind is int or kind is float or kind is bool or value is None:
        return value
    _check_plain(value, 0)
    return value


_lone_surrogate = surrogates.LONE.search


class NotPlainError(TemplateLimitError):
    """An expression's value is not text, a number, a boolean, None or a list/dict of them."""


_SCALARS = frozenset({type(None), bool, int, float})
_SCALAR_BATCH = 1 << 16


def _check_plain(value: Any, depth: int) -> None:
    if isinstance(value, str):
        if surrogates.in_text(value):
            raise NotPlainError("it holds a lone UTF-16 surrogate, which is not text")
        _spend(len(value))
        return
    _spend(1)  # an item of a list or dict costs at least its separator
    if value is None or isinstance(value, bool | int | float):
        return
    from jinja2.runtime import Undefined

    if isinstance(value, Undefined):
        if depth:
            raise NotPlainError("it holds an undefined value")
        value._fail_with_undefined_error()
    if depth > MAX_DEPTH:
        raise NotPlainError(f"it is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, list | tuple):
        scalars = 0  # 1 each, spent in bulk: a call per number made a 20M-item row take ~20 s
        for item in value:
            if type(item) in _SCALARS:
                scalars += 1
                if scalars >= _SCALAR_BATCH:
                    _spend(scalars)
                    scalars = 0
            else:
                _check_plain(item, depth + 1)
        _spend(scalars)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
        return
    raise NotPlainError(
        f"it is {'a ' if depth == 0 else 'or holds a '}{type(value).__name__}, not text, a "
        "number, true/false/none or a list of them"
    )
