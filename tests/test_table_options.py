"""How a data file is read (TableOptions) travels as one rule: from make-batch-file's arguments
to the ledger's TableSpec and back to the join's reading of the same rows, field by field, so a
new reading option cannot be left behind on the way (it was copied field by field in three
places: commands/options, table/spec and flow/submit)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from helpers import run_cli
from openai_batch.commands.options import RenderArgs
from openai_batch.ledger.store import open_ledger
from openai_batch.table.read import TableOptions
from openai_batch.table.spec import TableSpec

SRC = Path(__file__).resolve().parents[1] / "src" / "openai_batch"
# a value for each reading option other than its default
SET = {"sheet": "S", "delimiter": ";", "encoding": "latin-1", "limit": 2, "keep_spaces": True,
       "ragged_rows": True}  # fmt: skip


def test_every_reading_option_is_set_here() -> None:
    options = TableOptions(**SET)
    assert {f.name for f in dataclasses.fields(TableOptions)} == set(SET)
    assert all(getattr(options, name) != getattr(TableOptions(), name) for name in SET)


def test_each_reading_option_travels_from_the_arguments_and_the_spec() -> None:
    assert RenderArgs(**SET).options(quiet=True).table == TableOptions(**SET)
    assert TableSpec("data.csv", **SET).read_options() == TableOptions(**SET)


def test_make_batch_file_records_each_reading_option_for_the_join(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_bytes("n;q\na;caf\xe9\nb;x;extra\nc;z\n".encode("latin-1"))
    template = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}'
    (tmp_path / "t.json").write_text(template, encoding="utf-8")
    args = ["--delimiter", ";", "--encoding", "latin-1", "--limit", "2"]
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", *args,
                              "--keep-spaces", "--ragged-rows")  # fmt: skip
    assert code == 0, err
    with open_ledger() as ledger:
        record = ledger.request_file(path=tmp_path / "batch-requests.jsonl")
    assert record is not None and record.table is not None
    wanted = TableOptions(delimiter=";", encoding="latin-1", limit=2, keep_spaces=True,
                          ragged_rows=True)  # fmt: skip
    assert record.table.read_options() == wanted


def _field_by_field(tree: ast.Module) -> list[int]:
    """Lines that copy the reading options by hand: TableOptions(...) called with arguments, or
    a call given two or more of them as `name=something.name`."""
    names = {f.name for f in dataclasses.fields(TableOptions)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "TableOptions":
            if node.args or node.keywords:
                found.append(node.lineno)
            continue
        copied = [
            k for k in node.keywords
            if k.arg in names and isinstance(k.value, ast.Attribute) and k.value.attr == k.arg
        ]  # fmt: skip
        if len(copied) >= 2:
            found.append(node.lineno)
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("TableOptions(a.sheet, a.delimiter)", [1]),
        ("TableOptions(limit=2)", [1]),
        ("TableOptions()\nTableOptions.of(a)", []),
        ("TableSpec(\n    path=p,\n    sheet=o.table.sheet,\n    limit=o.table.limit,\n)", [1]),
        ("TableSpec(path=p, sheet=o.sheet, id_column=o.id_column)", []),
    ],
)
def test_the_copy_check_sees_what_it_looks_for(source: str, expected: list[int]) -> None:
    assert _field_by_field(ast.parse(source)) == expected


def test_no_module_copies_the_reading_options_field_by_field() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        lines = _field_by_field(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[path.relative_to(SRC).as_posix()] = lines
    assert found == {}
