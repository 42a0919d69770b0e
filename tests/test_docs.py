"""The documentation stays true to the code: the commands page is the CLI's own help, every module
is in the contributing page's map, every relative link leads somewhere, and README stays short."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import ROOT
from openai_batch.cli import app
from openai_batch.ui import helpdoc

DOCS = ROOT / "docs"


def test_the_commands_page_is_the_clis_own_help():
    page = (DOCS / "commands.md").read_text(encoding="utf-8")
    assert page == helpdoc.render(app), (
        f"docs/commands.md is stale: a command's help changed. Regenerate it: {helpdoc.REGENERATE}"
    )


def test_the_commands_page_lists_every_command_with_its_usage_and_example():
    page = (DOCS / "commands.md").read_text(encoding="utf-8")
    paths = [path for path, _ in helpdoc.commands(app)]
    assert ("make-batch-file",) in paths and ("utils", "retry-failed") in paths
    for path in paths:
        section = page.split(f"\n## {' '.join(path)}\n", 1)[1].split("\n## ", 1)[0]
        assert f"Usage: openai-batch {' '.join(path)}" in section
        if path != ("utils",):
            assert f"Example:\n  openai-batch {' '.join(path)}" in section, path


def test_the_help_pages_do_not_depend_on_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("FORCE_COLOR", "1")
    narrow = helpdoc.help_text(app, ["make-batch-file"])
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FORCE_COLOR")
    assert helpdoc.help_text(app, ["make-batch-file"]) == narrow
    assert "\x1b[" not in narrow
    assert max(len(line) for line in narrow.splitlines()) == helpdoc.WIDTH


def _module_map() -> str:
    page = (DOCS / "contributing.md").read_text(encoding="utf-8")
    return page.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]


def test_every_module_is_in_the_module_map():
    package = ROOT / "src" / "openai_batch"
    listed = _module_map()
    modules = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    )
    missing = [m for m in modules if f"`{m}`" not in listed]
    assert not missing, (
        f"modules missing from docs/contributing.md's module map: {missing}; add one line each "
        "saying what the module owns, in its package's table"
    )
    packages = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    assert [p for p in packages if f"### `{p}/`" not in listed] == []


def test_the_module_map_names_no_module_that_is_gone():
    package = ROOT / "src" / "openai_batch"
    named = re.findall(r"`([\w/]+\.py)`", _module_map())
    assert named
    gone = [name for name in named if not (package / name).is_file()]
    assert not gone, f"docs/contributing.md's module map names modules that do not exist: {gone}"


def _slug(heading: str) -> str:
    """The anchor GitHub makes of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def _relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_relative_link_resolves():
    broken = []
    for page in _pages():
        for target in _relative_links(page):
            path, _, fragment = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A title\nsee [x](gone.md), [y](#a-title), `[z](no.md)` and [w](https://e.x)\n"
    )
    assert _relative_links(page) == ["gone.md", "#a-title"]
    assert "a-title" in _anchors(page)
    assert _slug("`utils estimate`: know the cost") == "utils-estimate-know-the-cost"


def test_readme_stays_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 15_000, f"README.md is {size:,} bytes: move the details into a page of docs/"


def _marked_command(readme: str, marker: str) -> str:
    """What .ci/run runs: the first line of the ```bash block after `<!-- marker -->`."""
    after = readme.split(f"\n<!-- {marker} -->\n", 1)[1]
    block = after.split("```bash\n", 1)[1].split("\n```", 1)[0]
    return block.splitlines()[0]


def test_readme_keeps_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = _marked_command(readme, "main-command")
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install . && ")
    assert "openai-batch make-batch-file" in install
    assert _marked_command(readme, "test-command").endswith(".venv/bin/python -m pytest")


def test_the_python_examples_import_what_exists():
    """Modules move; an example that imports a name from where it used to be is a broken promise."""
    import ast
    import importlib

    stale = []
    for page in _pages():
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
        for block in blocks:
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("openai_"):
                    try:
                        module = importlib.import_module(node.module or "")
                    except ModuleNotFoundError:
                        stale.append(f"{page.name}: from {node.module} (no such module)")
                        continue
                    stale += [
                        f"{page.name}: from {node.module} import {alias.name}"
                        for alias in node.names
                        if not hasattr(module, alias.name)
                    ]
    assert not stale, f"examples import names that are not there: {stale}"


def test_the_files_and_tests_the_pages_name_exist():
    """The pages name modules (`service/shape.py`), scripts and the tests that hold a promise
    (`test_two_starts_at_once_start_one_batch`): each must still be there."""
    package = ROOT / "src" / "openai_batch"
    tests = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").glob("*.py"))
    gone = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for name in re.findall(r"`((?:src/openai_batch/|tests/|benchmarks/)?[\w/]+\.py)", text):
            base = ROOT if name.startswith(("src/", "tests/", "benchmarks/")) else package
            if not (base / name).is_file():
                gone.append(f"{page.name}: {name}")
        for test in re.findall(r"(?:`|::)(test_\w+)", text):
            if f"def {test}(" not in tests:
                gone.append(f"{page.name}: {test}")
    assert not gone, f"the pages name files or tests that are not there: {gone}"


def test_every_environment_variable_is_documented():
    from openai_batch import settings

    names = [
        value
        for value in vars(settings).values()
        if isinstance(value, str) and re.fullmatch(r"(OPENAI|AZURE_OPENAI)_[A-Z_]+", value)
    ]
    assert "OPENAI_BATCH_HOME" in names
    page = (DOCS / "ledger.md").read_text(encoding="utf-8")
    table = page.split("\n## Environment variables\n", 1)[1]
    missing = [name for name in names if f"`{name}" not in table]
    assert not missing, f"add these to docs/ledger.md's environment variables: {missing}"
