"""Property tests: whatever a cell holds, it comes back exactly after render and json.loads."""

from __future__ import annotations

import csv
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import read_jsonl, run_cli, write
from openai_batch.template.compile import compile_template
from openai_batch.template.prompt import bare_json

# Any Unicode text Python can encode as UTF-8 (no lone surrogates), control characters included.
CELL = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
TEMPLATE = (
    '{"model": "m", "messages": [{"role": "user", "content": "pre <<A>> mid <<B C>> post"}],'
    ' "metadata": {"a": "<<A>>", "n": <<N>>}}'
)


@settings(max_examples=400, deadline=None)
@given(a=CELL, b=CELL, n=st.integers(-(10**18), 10**18))
def test_any_cell_text_round_trips_through_render(a, b, n):
    template = compile_template(TEMPLATE, ["A", "B C", "N"])
    body = json.loads(template.render({"A": a, "B C": b, "N": str(n)}))
    assert body["messages"][0]["content"] == f"pre {a} mid {b} post"
    assert body["metadata"] == {"a": a, "n": n}


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_bare_numbers_keep_their_value(value):
    assert json.loads(bare_json(repr(value))) == value
    assert json.loads(bare_json(str(value))) == value


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cells=st.lists(CELL, min_size=1, max_size=5))
def test_any_cell_round_trips_through_a_csv_file_and_the_cli(tmp_path, capsys, cells):
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(["v"])
        writer.writerows([c] for c in cells)
    template = write(
        tmp_path / "t.json", '{"model": "m", "messages": [{"role": "user", "content": "<<v>>"}]}'
    )
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    got = [r["body"]["messages"][0]["content"] for r in read_jsonl(out)]
    assert got == cells
