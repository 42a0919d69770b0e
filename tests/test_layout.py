"""The structure the redesign (issue 13) set, kept by a test rather than by memory.

Modules stay small; only commands/, ui/ and cli.py talk to the terminal; only ledger/ opens
SQLite; command modules do not lean on each other (shared option types live in
commands/options.py); only ui/commandline.py spells a suggested command, and library code names
one as errors.Command data, never through ui/hints' text; a dependency pyproject.toml requires
is imported plainly. Every exception is listed below with its reason.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "openai_batch"
MAX_LINES = 600

# modules that may touch sys.stdout / sys.stderr outside commands/, ui/ and cli.py, and why
STREAM_ALLOWED = {
    # the review child answers its parent over its own stdin/stdout pipe (pickles, not text)
    "requestfile/review.py",
    # flushes both streams before os.fork(), so buffered text is not written twice
    "results/parallelread.py",
}

# modules that may write `openai-batch SUBCOMMAND ...` in a string themselves, and why
SPELLING_ALLOWED = {
    # each command's help example, shown by cyclopts as written (docs/commands.md repeats it)
    "cli.py",
}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _may_print(rel: str) -> bool:
    return rel.startswith(("commands/", "ui/")) or rel == "cli.py"


def _imported(node: ast.AST) -> list[str]:
    """Module names an import statement brings in (`from a import b` gives a and a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _is_std_stream(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr in ("stdout", "stderr")
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def _terminal_uses(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append(f"{node.lineno}: print()")
        if any(name.split(".")[0] == "tqdm" for name in _imported(node)):
            found.append(f"{node.lineno}: imports tqdm")
        if _is_std_stream(node):
            found.append(f"{node.lineno}: sys.{node.attr}")  # type: ignore[attr-defined]
    return found


def test_no_module_is_over_600_lines() -> None:
    too_long = {}
    for path in _modules():
        with path.open(encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
        if lines > MAX_LINES:
            too_long[_rel(path)] = lines
    assert too_long == {}


def test_only_commands_ui_and_cli_talk_to_the_terminal() -> None:
    offenders = []
    for path in _modules():
        rel = _rel(path)
        if _may_print(rel):
            continue
        for use in _terminal_uses(_tree(path)):
            if use.endswith(("sys.stdout", "sys.stderr")) and rel in STREAM_ALLOWED:
                continue
            offenders.append(f"{rel}:{use}")
    assert offenders == []


def test_the_stream_allow_list_has_no_stale_entries() -> None:
    """An entry that no longer needs its exception goes, so the list stays short and true."""
    for rel in STREAM_ALLOWED:
        uses = _terminal_uses(_tree(SRC / rel))
        assert any(use.endswith(("sys.stdout", "sys.stderr")) for use in uses), rel


def test_only_the_ledger_imports_sqlite3() -> None:
    offenders = []
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("ledger/"):
            continue
        for node in ast.walk(_tree(path)):
            if "sqlite3" in (name.split(".")[0] for name in _imported(node)):
                offenders.append(f"{rel}:{node.lineno}")  # type: ignore[attr-defined]
    assert offenders == []


def test_only_commands_ui_and_cli_import_the_hint_text_builders() -> None:
    """ui/hints spells suggestions as text for what commands/ and ui/ print; library code puts
    `errors.Command` data in a BatchError's hint, which a program can read back."""
    offenders = []
    for path in _modules():
        rel = _rel(path)
        if _may_print(rel):
            continue
        for node in ast.walk(_tree(path)):
            if "openai_batch.ui.hints" in _imported(node):
                offenders.append(f"{rel}:{node.lineno}")  # type: ignore[attr-defined]
    assert offenders == []


def _command_imports() -> set[tuple[str, str]]:
    pairs = set()
    for path in (SRC / "commands").glob("*.py"):
        for node in ast.walk(_tree(path)):
            for name in _imported(node):
                parts = name.split(".")
                if parts[:2] == ["openai_batch", "commands"] and len(parts) > 2:
                    target = parts[2]
                    if target not in ("options", path.stem):
                        pairs.add((path.stem, target))
    return pairs


def test_command_modules_import_only_options_from_each_other() -> None:
    """What two commands share lives in the library, in ui/, or in commands/options.py."""
    assert _command_imports() == set()


def _subcommands() -> list[str]:
    from openai_batch.cli import COMMANDS

    return [name for _, name, _, _ in COMMANDS] + ["utils"]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes (module, class, function): prose may name a command."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _spelled_commands(tree: ast.Module, subcommands: list[str]) -> list[str]:
    """Strings (f-string parts included) that write `openai-batch SUBCOMMAND` by hand."""
    names = "|".join(map(re.escape, subcommands))
    pattern = re.compile(rf"openai-batch (?:{names})\b")
    skip = _docstrings(tree)
    return [
        f"{node.lineno}: {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and pattern.search(node.value)
    ]


def test_only_ui_commandline_spells_a_suggested_command() -> None:
    """Code names a suggested command as data (`errors.Command`, or `ui.hints.command(args)`),
    so every suggestion is quoted one way; a hand-written `openai-batch start-batch {path}`
    shows a file name with a space unquoted."""
    subcommands = _subcommands()
    offenders = []
    for path in _modules():
        rel = _rel(path)
        if rel in SPELLING_ALLOWED:
            continue
        offenders += [f"{rel}:{use}" for use in _spelled_commands(_tree(path), subcommands)]
    assert offenders == []


def test_the_spelling_allow_list_has_no_stale_entries() -> None:
    subcommands = _subcommands()
    for rel in SPELLING_ALLOWED:
        assert _spelled_commands(_tree(SRC / rel), subcommands), rel


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"""Run `openai-batch list-batches`."""', []),
        ('def f():\n    """`openai-batch run T D`."""', []),
        ('x = "check `openai-batch list-batches`"', ["1: 'check `openai-batch list-batches`'"]),
        ('x = f"`openai-batch get-batch-results {b}`"', ["1: '`openai-batch get-batch-results '"]),
        ('x = "openai-batch utils validate F"', ["1: 'openai-batch utils validate F'"]),
        ('x = "another openai-batch command holds it"', []),
    ],
)
def test_the_spelling_check_sees_what_it_looks_for(source: str, expected: list[str]) -> None:
    assert _spelled_commands(ast.parse(source), _subcommands()) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("print('x')", ["1: print()"]),
        ("import sys\nsys.stderr.write('x')", ["2: sys.stderr"]),
        ("from tqdm import tqdm", ["1: imports tqdm"]),
        ("import tqdm.auto", ["1: imports tqdm"]),
        ("log = logger.print\nx.print('y')", []),
    ],
)
def test_the_checks_see_what_they_look_for(source: str, expected: list[str]) -> None:
    """The AST checks above are not vacuous: each catches its kind of use."""
    assert _terminal_uses(ast.parse(source)) == expected


def _module_names(src: Path) -> dict[str, Path]:
    """Every module under `src` by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules of the project it imports, wherever the import is written: at the
    top, under `if TYPE_CHECKING:` or delayed inside a function (a delayed import that dodges
    a cycle still is one). Packages are left out (their `__init__.py` files are empty)."""
    modules = _module_names(src)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if path.name == "__init__.py":
            continue
        found = set()
        for node in ast.walk(_tree(path)):
            for imported in _imported(node):
                if imported in modules and modules[imported].name != "__init__.py":
                    found.add(imported)
        graph[name] = found - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return groups


def test_no_modules_import_each_other() -> None:
    """Dependencies go one way: a module that needs what another holds never is needed by it,
    through any loop. A shared piece belongs in a module both import."""
    assert _cycles(_import_graph(SRC)) == []


def test_the_cycle_check_sees_a_delayed_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg.sub.c import g\n")
    (package / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
    )
    (package / "d.py").write_text("import pkg.a\n")
    graph = _import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.d"] == {"pkg.a"}
    assert _cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]


def _distribution(name: str) -> str:
    """A distribution's name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _required() -> set[str]:
    """The distributions pyproject.toml requires (not the optional ones)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = project["dependencies"]
    return {_distribution(re.match(r"[A-Za-z0-9._-]+", spec).group()) for spec in specs}  # type: ignore[union-attr]


@functools.cache
def _owners() -> dict[str, frozenset[str]]:
    """Each importable top-level name and the distributions that install it."""
    found = importlib.metadata.packages_distributions().items()
    return {top: frozenset(map(_distribution, owners)) for top, owners in found}


def _guarded_imports(tree: ast.Module, required: set[str]) -> list[str]:
    """Imports of a required distribution under `except ImportError`: a fallback for a
    dependency that is always there is dead code, and its comment a promise nobody keeps."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type}
        if not caught & {"ImportError", "ModuleNotFoundError"}:
            continue
        for statement in node.body:
            for name in _imported(statement):
                top = name.split(".")[0]
                if _owners().get(top, frozenset()) & required:
                    found.append(f"{statement.lineno}: {top}")
    return sorted(set(found))


def test_a_required_dependency_is_imported_plainly() -> None:
    required = _required()
    offenders = []
    for path in _modules():
        offenders += [f"{_rel(path)}:{use}" for use in _guarded_imports(_tree(path), required)]
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("try:\n    import orjson as o\nexcept ImportError:\n    o = None", ["2: orjson"]),
        (
            "try:\n    from msgspec import json\nexcept ModuleNotFoundError:\n    pass",
            ["2: msgspec"],
        ),
        (
            "try:\n    import fcntl\nexcept ImportError:\n    fcntl = None",
            [],
        ),  # the standard library
        ("try:\n    import orjson\nexcept ValueError:\n    pass", []),
    ],
)
def test_the_dependency_check_sees_what_it_looks_for(source: str, expected: list[str]) -> None:
    assert _guarded_imports(ast.parse(source), _required()) == expected
