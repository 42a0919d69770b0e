"""The documentation stays true to the code: the commands page is the CLI's own help, every module
is in the contributing page's map, every relative link leads somewhere, and README stays short."""

from __future__ import annotations

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
