"""Issue 10's standing guard: random templates and tables through the real make-batch-file.

Whatever the template (placeholders, expressions, blocks, literals, broken JSON) and the table
(any text, any header, ragged rows), the command either succeeds with a well-formed request
file or exits 1/2 with an `error:` line: never a traceback, never a partial or temp file.
Bounded (a few dozen examples, no deadline) so CI stays within its minutes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_batch.cli import main

TEXT = st.text(
    alphabet=st.sampled_from(list('ab <>{}%#"\\\n\t,;é\ue000\ue001\ue010\u2028€😀')), max_size=8
)
EXPRESSIONS = [
    "{col}", " {col} ", "{col} | upper", "{col} | int + 1", "row[{col!r}]", "row.nokey",
    "{col}.__class__", "{col} | nofilter", "'a' * 10**9", "10**(10**10)", "self", "lipsum",
    "range(3)", "[{col}]", "{{'k': {col}}}", "none", "1 / 0", "({col} | length) * 2", "'{{'",
    "{col} ~ '\\ud800'", "'%s' % {col}", "cycler", "{col}|replace('a', 'bb')",
]  # fmt: skip
BLOCKS = [
    "<% if {col} %>yes<% else %>no<% endif %>",
    "<% for c in {col} %>[<<c>>]<% endfor %>",
    "<% for i in range(100000) %><% for j in range(100000) %><% endfor %><% endfor %>",
    "<# a comment #>",
    "<% if %>",
]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], str, str]:
    """(columns, file name, file text): a CSV with any header and rows, ragged or not."""
    width = draw(st.integers(1, 3))
    header = draw(st.lists(st.one_of(st.sampled_from(["Name", "Age", "x y"]), TEXT),
                           min_size=width, max_size=width))  # fmt: skip
    rows = draw(st.lists(st.lists(TEXT, min_size=max(1, width - 1), max_size=width + 1),
                         min_size=0, max_size=4))  # fmt: skip
    if draw(st.booleans()):  # JSON Lines
        lines = [json.dumps(dict(zip(header, row, strict=False))) for row in rows]
        return header, "d.jsonl", "".join(line + "\n" for line in lines) or "{}\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return header, "d.csv", buffer.getvalue()


@st.composite
def templates(draw: st.DrawFn, columns: list[str]) -> str:
    col = draw(st.sampled_from([*columns, "missing"]))
    pieces = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "expr", "block"]))
        if kind == "text":
            pieces.append(draw(TEXT))
        elif kind == "expr":
            pieces.append("<<" + draw(st.sampled_from(EXPRESSIONS)).format(col=col) + ">>")
        else:
            pieces.append(draw(st.sampled_from(BLOCKS)).format(col=col))
    content = json.dumps("".join(pieces), ensure_ascii=draw(st.booleans()))
    bare = draw(st.sampled_from(["", ', "seed": <<Age | int>>', ', "temperature": <<row.nokey>>',
                                 f', "top_p": <<{col}>>']))  # fmt: skip
    text = '{"model": "gpt-4o", "messages": [{"role": "user", "content": ' + content + "}]" + bare
    text += "}"
    if draw(st.integers(0, 9)) == 0:  # broken JSON
        text = text[: draw(st.integers(0, len(text)))]
    return text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_make_batch_file_succeeds_or_fails_cleanly(
    data: st.DataObject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    columns, name, table = data.draw(tables())
    template = data.draw(templates(columns))
    folder = Path(tempfile.mkdtemp(prefix="openai-batch-guard-"))
    try:
        (folder / "t.json").write_text(template, encoding="utf-8", errors="surrogatepass")
        (folder / name).write_text(table, encoding="utf-8", errors="surrogatepass")
        out = folder / "out"
        out.mkdir()
        monkeypatch.setenv("OPENAI_BATCH_RENDERER", data.draw(st.sampled_from(["auto", "general"])))
        code = main(["make-batch-file", str(folder / "t.json"), str(folder / name),
                     "-o", str(out / "r.jsonl"), "-q"])  # fmt: skip
        _, err = capsys.readouterr()
        assert "Traceback" not in err
        written = sorted(p.name for p in out.iterdir())
        if code == 0:
            assert written and all(n.endswith(".jsonl") and not n.startswith(".") for n in written)
            ids = [json.loads(line)["custom_id"] for n in written
                   for line in (out / n).read_text(encoding="utf-8").split("\n")[:-1]]  # fmt: skip
            assert ids == [f"id_{i}" for i in range(len(ids))]
        else:
            assert code in (1, 2), (code, err)
            assert "error:" in err or code == 2, err
            assert written == [], written  # no partial file, no temp file
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("OPENAI_BATCH_RENDERER", None)
