"""The vectorised make-batch-file writes exactly the bytes the general, per-row path writes.

Each test renders the same inputs twice through the real CLI: with OPENAI_BATCH_RENDERER=general
(the per-row renderer) and with OPENAI_BATCH_RENDERER=fast (the vectorised one, where falling
back to the general path is an error, so we know which path wrote the files). Where the fast path
must give way (files pandas reads differently, bad ids, oversize lines), the default `auto` must
end exactly like the general path: same files, same error.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, need_seed, pretend_terminal, write
from openai_batch.cli import main
from openai_batch.errors import BatchError
from openai_batch.requestfile import fastpath, fastread
from openai_batch.requestfile.make import MakeOptions, make_batch_files
from openai_batch.table.read import TableOptions

TEMPLATE = (
    '{"model": "gpt-4o-mini", "temperature": 0, "messages": ['
    '{"role": "system", "content": "Tab\\there, quote \\" and \\\\ and \\u2028 <<Name>>!"}, '
    '{"role": "user", "content": [{"type": "text", "text": "<<Name>> says: <<Text>>"}]}]}'
)


@dataclass
class Made:
    code: int
    files: dict[str, bytes]
    err: str

    @property
    def error(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(("error:", "hint:"))]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))


@contextlib.contextmanager
def renderer(name: str) -> Iterator[None]:
    old = os.environ.get(fastpath.RENDERER_ENV)
    os.environ[fastpath.RENDERER_ENV] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ[fastpath.RENDERER_ENV]
        else:
            os.environ[fastpath.RENDERER_ENV] = old


def make(
    capsys: pytest.CaptureFixture[str],
    how: str,
    template: Path,
    data: Path,
    *args: str,
    quiet: bool = True,
) -> Made:
    """Run make-batch-file with renderer `how` into a fresh folder; every file it leaves there."""
    outdir = Path(tempfile.mkdtemp(prefix=f"openai-batch-{how}-"))  # never beside the data
    try:
        argv = ["make-batch-file", str(template), str(data), "-o", str(outdir / "requests.jsonl")]
        with renderer(how):
            code = main([*argv, *(["-q"] if quiet else []), *args])
        _, err = capsys.readouterr()
        files = {p.name: p.read_bytes() for p in sorted(outdir.iterdir())}
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return Made(code, files, err)


def same_both_ways(capsys, template: Path, data: Path, *args: str) -> Made:
    """The fast path ran (no fallback) and wrote the general path's files, byte for byte."""
    general = make(capsys, "general", template, data, *args)
    fast = make(capsys, "fast", template, data, *args)
    assert general.code == 0, general.err
    assert fast.code == 0, fast.err
    assert list(fast.files) == list(general.files)
    for name, content in general.files.items():
        assert fast.files[name] == content, name
    return fast


def same_as_general(capsys, template: Path, data: Path, *args: str) -> Made:
    """The automatic choice ends like the general path: same files, or the same error."""
    general = make(capsys, "general", template, data, *args)
    auto = make(capsys, "auto", template, data, *args)
    assert auto.code == general.code
    assert auto.files == general.files  # also: no temp file of an abandoned fast run is left
    assert auto.error == general.error
    return general


def persona_csv(path: Path, rows: int, **fmt: str) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, **fmt)
        out.writerow(["ID", "Name", "Text"])
        for i in range(rows):
            out.writerow([f"p{i}", f"Name {i}", f'Text number {i} with "quotes" and é{"x" * i}'])
    return path


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of ~4 kB: many blocks per shard and many shards per block."""
    monkeypatch.setattr(fastread, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(fastread, "PARQUET_ROWS", 7)


@pytest.fixture
def sliced_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every block cut into pieces of one row (as a template of megabytes would be)."""
    monkeypatch.setattr(fastpath, "RENDER_BYTES", 1)


# --- the fixtures users start from ------------------------------------------------------------


def test_seed_fixture_both_syntaxes(tmp_path, capsys):
    seed = need_seed()
    data = seed / "simulated_survey_personas.csv"
    same_both_ways(capsys, seed / "config.json", data)
    modern = (seed / "config.json").read_text().replace("{{Description}}", "<<Description>>")
    same_both_ways(capsys, write(tmp_path / "config.json", modern), data)


def test_seed_fixture_fast_output_matches_the_seed_tool_requests(tmp_path, capsys):
    seed = need_seed()
    made = make(capsys, "fast", seed / "config.json", seed / "simulated_survey_personas.csv")
    assert made.code == 0, made.err
    ours = [json.loads(line) for line in made.files["requests.jsonl"].splitlines()]
    theirs = [json.loads(line) for line in (seed / "batch-requests.jsonl").read_text().split("\n")]
    assert ours == [t for t in theirs if t]


@pytest.mark.parametrize(
    ("template", "data"),
    [
        ("persona_survey.json", "personas.csv"),
        ("spam_classifier.json", "emails.csv"),
        ("synthetic_qa.json", "passages.csv"),
    ],
)
def test_bundled_templates(tmp_path, capsys, template, data):
    from openai_batch.table.read import open_table
    from openai_batch.template.compile import load_template

    template_path = ROOT / "templates" / template
    data_path = ROOT / "sample_data" / data
    columns = open_table(data_path).columns
    if not load_template(template_path, columns).columns_only:
        pytest.skip(f"{template} uses expressions: the general path renders it")
    # copy next to tmp_path: make() writes beside the data
    local = write(tmp_path / data, data_path.read_text(encoding="utf-8"))
    same_both_ways(capsys, template_path, local)


# --- cells of every kind ----------------------------------------------------------------------

SPECIALS = [
    '"',
    "\\",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\b",
    "\f",
    "\x00",
    "\x01",
    "\x1f",
    "\x7f",
    "\u2028",
    "\u2029",
    "😀",
    "é",
    " ",
    ",",
    ";",
    "\ufeff",
    "\\u0041",
    '""',
]
cell = st.lists(
    st.one_of(
        st.sampled_from(SPECIALS),
        st.text(st.characters(blacklist_categories=["Cs"]), max_size=6),
    ),
    max_size=5,
).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(cell, cell), min_size=1, max_size=12),
    crlf=st.booleans(),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_cells_give_the_same_bytes(rows, crlf, delimiter):
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        template = write(base / "t.json", TEMPLATE)
        data = base / ("data.tsv" if delimiter == "\t" else "data.csv")
        with open(data, "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
            out.writerow(["Name", "Text"])
            out.writerows(rows)
        # The fast path leaves two kinds of file to pandas (so `auto`, not `fast`, here): one
        # whose last cell ends in a line break looks, from its end, like one that ends inside an
        # unclosed quote; a lone carriage return is read differently by pandas and pyarrow.
        raw = data.read_bytes()
        lone_cr = re.search(rb"\r(?!\n)", raw) is not None
        fast = "auto" if lone_cr or rows[-1][-1].endswith(("\n", "\r")) else "fast"
        results = {}
        for how in ("general", fast):
            opts = MakeOptions(output=base / how / "r.jsonl")
            if delimiter == ";":
                opts.table = TableOptions(delimiter=";")
            with renderer(how):
                try:
                    made = make_batch_files(template, data, opts)
                except BatchError as exc:
                    results[how] = str(exc)
                    continue
            shards = [(f.path.name, f.requests, f.bytes, f.digest, f.first_row) for f in made.files]
            results[how] = (shards, [f.path.read_bytes() for f in made.files], made.model)
        assert results[fast] == results["general"]


# --- sharding, ids, limits --------------------------------------------------------------------


@pytest.mark.parametrize("blocks", ["default", "tiny", "sliced"])
@pytest.mark.parametrize("max_requests", ["1", "7", "50", "50000"])
def test_sharding_by_count(tmp_path, capsys, request, blocks, max_requests):
    if blocks != "default":
        request.getfixturevalue(f"{blocks}_blocks")
    data = persona_csv(tmp_path / "p.csv", 50)
    made = same_both_ways(
        capsys, write(tmp_path / "t.json", TEMPLATE), data, "--max-requests", max_requests
    )
    assert len(made.files) == -(-50 // int(max_requests))


def line_sizes(capsys, template: Path, data: Path) -> list[int]:
    made = make(capsys, "general", template, data)
    return [len(line) for line in made.files["requests.jsonl"].splitlines(keepends=True)]


@pytest.mark.parametrize("blocks", ["default", "tiny", "sliced"])
@pytest.mark.parametrize("slack", [-1, 0, 1])
def test_sharding_by_bytes_at_the_boundary(tmp_path, capsys, request, blocks, slack):
    if blocks != "default":
        request.getfixturevalue(f"{blocks}_blocks")
    template = write(tmp_path / "t.json", TEMPLATE)
    data = persona_csv(tmp_path / "p.csv", 60)
    sizes = line_sizes(capsys, template, data)
    limit = sum(sizes[:3]) + slack  # exactly three lines fit when slack >= 0
    made = same_both_ways(capsys, template, data, "--max-bytes", str(limit))
    first = next(iter(made.files.values()))
    assert first.count(b"\n") == (3 if slack >= 0 else 2)


def test_line_over_max_bytes_is_the_general_error(tmp_path, capsys):
    template = write(tmp_path / "t.json", TEMPLATE)
    data = persona_csv(tmp_path / "p.csv", 30)
    sizes = line_sizes(capsys, template, data)
    general = same_as_general(capsys, template, data, "--max-bytes", str(max(sizes) - 1))
    assert general.code != 0
    assert f"row {sizes.index(max(sizes)) + 1} renders to a request" in general.err
    assert not general.files


@pytest.mark.parametrize("blocks", ["default", "tiny", "sliced"])
def test_id_column_and_prefix(tmp_path, capsys, request, blocks):
    if blocks != "default":
        request.getfixturevalue(f"{blocks}_blocks")
    template = write(tmp_path / "t.json", TEMPLATE)
    path = tmp_path / "ids.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["Key", "Name", "Text"])
        for i in range(40):
            out.writerow([f'k"{i}\\é😀\t', f"n{i}", "t"])
    made = same_both_ways(
        capsys, template, path, "--id-column", "Key", "--id-prefix", 'P"', "--max-requests", "9"
    )
    first = json.loads(made.files["requests-001.jsonl"].splitlines()[0])
    assert first["custom_id"] == 'P"k"0\\é😀\t'


@pytest.mark.parametrize(
    ("keys", "needle"),
    [
        (["a", "b", "a", "c"], "rows 1 and 3 have the same id 'a'"),
        (["a", "", "b", "b"], "row 2: the id column 'Key' is empty"),
        (["a", "b", "c", "b"], "rows 2 and 4 have the same id 'b'"),
    ],
)
def test_bad_ids_end_with_the_general_error(tmp_path, capsys, keys, needle):
    template = write(tmp_path / "t.json", TEMPLATE)
    rows = "".join(f"{k},n,t\n" for k in keys)
    data = write(tmp_path / "ids.csv", "Key,Name,Text\n" + rows)
    general = same_as_general(capsys, template, data, "--id-column", "Key")
    assert general.code != 0
    assert needle in general.err


def test_distinct_ids_that_share_a_block_pass(tmp_path, capsys):
    template = write(tmp_path / "t.json", TEMPLATE)
    keys = ["a", "b", "ab", "ba", "aa", "A", "é", "e\u0301", "1", "01", "1.0", " 1"]
    data = write(tmp_path / "ids.csv", "Key,Name,Text\n" + "".join(f"{k},n,t\n" for k in keys))
    same_both_ways(capsys, template, data, "--id-column", "Key")


@pytest.mark.parametrize("blocks", ["default", "tiny", "sliced"])
@pytest.mark.parametrize("limit", ["1", "17", "49", "50", "51", "1000"])
def test_limit(tmp_path, capsys, request, blocks, limit):
    if blocks != "default":
        request.getfixturevalue(f"{blocks}_blocks")
    data = persona_csv(tmp_path / "p.csv", 50)
    made = same_both_ways(
        capsys, write(tmp_path / "t.json", TEMPLATE), data, "--limit", limit, "--max-requests", "8"
    )
    assert sum(c.count(b"\n") for c in made.files.values()) == min(int(limit), 50)


# --- table formats ----------------------------------------------------------------------------


def test_bom_quoted_newlines_semicolons_and_blank_lines(tmp_path, capsys):
    template = write(tmp_path / "t.json", TEMPLATE)
    text = '\ufeffName;Text\r\n"A;1";"line\r\nbreak"\r\n\r\nB;"say ""hi"""\r\n;\r\nC;\u2028\r\n'
    same_both_ways(capsys, template, write(tmp_path / "d.csv", text))
    same_both_ways(capsys, template, write(tmp_path / "e.csv", text.replace("\r\n", "\n")))
    same_both_ways(capsys, template, write(tmp_path / "f.csv", text.rstrip("\r\n")))


def test_tsv_and_explicit_delimiter(tmp_path, capsys):
    template = write(tmp_path / "t.json", TEMPLATE)
    same_both_ways(capsys, template, write(tmp_path / "d.tsv", "Name\tText\na b\t,c\n"))
    data = write(tmp_path / "d.csv", "Name|Text\na|b,c\n")
    same_both_ways(capsys, template, data, "--delimiter", "|")


def test_parquet_with_numbers_and_nulls(tmp_path, capsys, tiny_blocks):
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = pa.array(["a", None, 'q"\\', "é😀", "x"] * 5)
    texts = pa.array([1.0, 2.5, None, 28.0, -0.0] * 5)
    path = tmp_path / "d.parquet"
    keys = pa.array(range(25), type=pa.int64())
    table = pa.table({"Key": keys, "Name": names, "Text": texts})
    pq.write_table(table, path, row_group_size=6)
    template = write(tmp_path / "t.json", TEMPLATE)
    same_both_ways(capsys, template, path, "--max-requests", "4")
    same_both_ways(capsys, template, path, "--limit", "11", "--id-column", "Key")


def test_comma_space_csv(tmp_path, capsys, tiny_blocks):
    """A CSV written with ", " between all fields: read without those spaces, both ways."""
    template = write(tmp_path / "t.json", TEMPLATE)
    rows = "".join(f"{i},  Name {i},   é{'x' * i} , \t{i}\n" for i in range(60))
    data = write(tmp_path / "d.csv", "Key, Name, Text, Tab\n" + rows)
    made = same_both_ways(capsys, template, data, "--max-requests", "7")
    assert b"Name 0 says: \\u00e9 " not in b"".join(made.files.values())
    assert b'"Name 0 says: \xc3\xa9 ' in b"".join(made.files.values())
    spaced = write(tmp_path / "s.json", TEMPLATE.replace("<<", "<< "))
    same_both_ways(capsys, spaced, data, "--keep-spaces")
    semicolons = write(tmp_path / "s.csv", "Name; Text\na; b\n;  \n")
    same_both_ways(capsys, template, semicolons)


@pytest.mark.parametrize(
    "body",
    ['a, "b, c"\n', 'a, "b"\n', 'a, "b" \n', 'a,   "line\nbreak"\n', 'a, "unterminated\n'],
)
def test_comma_space_csv_with_quotes_after_the_space(tmp_path, capsys, body):
    template = write(tmp_path / "t.json", TEMPLATE)
    same_as_general(capsys, template, write(tmp_path / "d.csv", "Name, Text\nx, y\n" + body))


# --- where the fast path gives way -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("short.csv", "Name,Text\na,b\nc\n"),
        ("long.csv", "Name,Text\na,b\nc,d,e\n"),
        ("unterminated.csv", 'Name,Text\na,b\nc,"d\ne\n'),
        ("unterminated_no_newline.csv", 'Name,Text\na,"b'),
        ("header_only.csv", "Name,Text\n"),
        ("quote_then_text.csv", 'Name,Text\na,"b"c\n'),
        ("space_before_quote.csv", 'Name,Text\na, "b,c"\n'),
    ],
)
def test_files_pandas_reads_its_own_way(tmp_path, capsys, name, content):
    template = write(tmp_path / "t.json", TEMPLATE)
    same_as_general(capsys, template, write(tmp_path / name, content))


def test_single_column_with_whitespace_only_lines(tmp_path, capsys):
    template = write(
        tmp_path / "t.json", '{"model": "m", "messages": [{"role": "user", "content": "<<Text>>"}]}'
    )
    for index, body in enumerate(["a\n \nb\n", "a\n\t\n", "a\n  ", 'a\n" "\n', "a\n\n\nb\n"]):
        general = same_as_general(
            capsys, template, write(tmp_path / f"{index}.csv", "Text\n" + body)
        )
        assert general.code == 0


def test_encodings(tmp_path, capsys):
    template = write(tmp_path / "t.json", TEMPLATE)
    latin = write(tmp_path / "latin.csv", "Name,Text\né,ü\n", encoding="latin-1")
    same_as_general(capsys, template, latin)  # not UTF-8: the general error
    same_as_general(capsys, template, latin, "--encoding", "latin-1")
    bom = write(tmp_path / "bom.csv", "\ufeffName,Text\na,b\n")
    same_as_general(capsys, template, bom, "--encoding", "utf-8")  # the BOM stays in the header
    same_both_ways(capsys, template, bom, "--encoding", "utf-8-sig")
    plain = write(tmp_path / "plain.csv", "Name,Text\né,😀\n")
    same_both_ways(capsys, template, plain, "--encoding", "UTF8")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Name,Text,Other\na,b,\xff\n")
    assert same_as_general(capsys, template, bad).code != 0


def test_gzip_and_other_templates_use_the_general_path(tmp_path, capsys):
    data = tmp_path / "d.csv.gz"
    data.write_bytes(gzip.compress(b"Name,Text\na,b\n"))
    template = write(tmp_path / "t.json", TEMPLATE)
    assert same_as_general(capsys, template, data).code == 0
    jinja = write(
        tmp_path / "j.json",
        '{"model": "m", "messages": [{"role": "user", "content": "<<Name | upper>>"}]}',
    )
    csv_data = write(tmp_path / "d.csv", "Name,Text\na,b\n")
    assert same_as_general(capsys, jinja, csv_data).code == 0
    forced = make(capsys, "fast", jinja, csv_data)
    assert forced.code != 0
    assert "OPENAI_BATCH_RENDERER=fast" in forced.err


def test_unknown_renderer_is_an_error(tmp_path, capsys):
    made = make(
        capsys, "quick", write(tmp_path / "t.json", TEMPLATE), persona_csv(tmp_path / "p.csv", 2)
    )
    assert made.code != 0
    assert "OPENAI_BATCH_RENDERER='quick'" in made.err


def test_template_without_model_is_the_general_error(tmp_path, capsys):
    template = write(tmp_path / "t.json", '{"messages": [{"role": "user", "content": "<<Text>>"}]}')
    general = same_as_general(capsys, template, persona_csv(tmp_path / "p.csv", 3))
    assert general.code != 0


def test_progress_bar_on_the_fast_path(tmp_path, capsys, monkeypatch):
    pretend_terminal(monkeypatch)
    made = make(
        capsys,
        "fast",
        write(tmp_path / "t.json", TEMPLATE),
        persona_csv(tmp_path / "p.csv", 5),
        quiet=False,
    )
    assert made.code == 0
    assert "Rendering" in made.err


@pytest.mark.parametrize("how", ["general", "fast"])
def test_the_library_reports_rows_to_its_caller_and_prints_nothing(tmp_path, capfd, how):
    """make_batch_files tells `MakeOptions.progress` the rows it rendered; the bar is the
    CLI's (it used to draw its own tqdm bar from the library)."""
    counted: list[int | None] = []

    class Counter:
        def update(self, rows: int) -> None:
            counted.append(rows)

        def close(self) -> None:
            counted.append(None)

    def progress(total: int | None) -> Counter:
        counted.append(total)
        return Counter()

    template = write(tmp_path / "t.json", TEMPLATE)
    opts = MakeOptions(output=tmp_path / "r.jsonl", progress=progress)
    with renderer(how):
        make_batch_files(template, persona_csv(tmp_path / "p.csv", 40), opts)
    assert counted[-1] is None and sum(n for n in counted[1:-1] if n) == 40
    assert capfd.readouterr() == ("", "")


def test_cli_import_stays_light():
    code = (
        "import sys, openai_batch.cli, openai_batch.requestfile.make,"
        " openai_batch.requestfile.fastpath;"
        "heavy = [m for m in ('pandas', 'pyarrow', 'numpy', 'openai', 'tiktoken', 'xxhash') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SPACED_CELL = st.text(st.sampled_from('ab ,"\n'), max_size=8).filter(
    lambda s: not s.startswith(" ")  # a leading space is the layout skipinitialspace drops
)
SPACED_TEMPLATE = (
    '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<A>>"}, '
    '{"role": "user", "content": "<<B>>"}, {"role": "user", "content": "<<C>>"}]}'
)


def _spaced(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n') else cell


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(rows=st.lists(st.tuples(st.text("ab", min_size=1, max_size=3), SPACED_CELL, SPACED_CELL),
                     min_size=1, max_size=5))  # fmt: skip
def test_a_spaced_csv_with_quoted_cells_reads_as_the_csv_module_does(
    capsys, tmp_path: Path, rows: list[tuple[str, str, str]]
) -> None:
    """`1, 30, "Likes cats, dogs"`: the quoted cell after `, ` is one cell (it used to be
    refused as a row with 4 fields, or not recognised as spaced when a cell was `","`)."""
    text = "A, B, C\n" + "".join(", ".join(_spaced(c) for c in row) + "\n" for row in rows)
    data = write(tmp_path / "spaced.csv", text)
    template = write(tmp_path / "t.json", SPACED_TEMPLATE)
    made = same_as_general(capsys, template, data)
    assert made.code == 0, made.err
    expected = list(csv.reader(text.splitlines(keepends=True), skipinitialspace=True))[1:]
    lines = made.files["requests.jsonl"].decode().splitlines()
    got = [[m["content"] for m in json.loads(line)["body"]["messages"]] for line in lines]
    assert got == [list(row) for row in expected]


@pytest.mark.parametrize(
    "text",
    [
        'A, B\n" , ", x\n',
        "A, B\n" + "a, b\n" * 120 + 'a," b"\n',  # past the rows that decide the file is spaced
        'A, B\n"  a",  b\n',
        '"A", B\n a, b\n',
    ],
    ids=["first-cell", "after-delimiter", "first-cell-spaces", "quoted-header"],
)
def test_a_spaced_csv_keeps_the_spaces_inside_a_quoted_cell(capsys, tmp_path, text):
    """`" , ", x` in a file written with `, `: the quoted cell keeps its spaces, as pandas reads
    it (the fast reader, which drops each cell's leading spaces, gave `, `)."""
    data = write(tmp_path / "spaced.csv", text)
    template = write(
        tmp_path / "t.json", SPACED_TEMPLATE.replace(', {"role": "user", "content": "<<C>>"}', "")
    )
    made = same_as_general(capsys, template, data)
    assert made.code == 0, made.err
