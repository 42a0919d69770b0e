"""make-batch-file end to end: the real CLI, real files, checked line by line."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest

from helpers import (
    ROOT,
    assert_clean_error,
    need_seed,
    pretend_terminal,
    read_jsonl,
    run_cli,
    write,
)

CHAT = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "%s"}]}'


def chat_template(tmp_path: Path, content: str, extra: str = "") -> Path:
    body = '{"model": "gpt-4o-mini"%s, "messages": [{"role": "user", "content": "%s"}]}'
    return write(tmp_path / "t.json", body % (extra, content))


def contents(path: Path) -> list[str]:
    return [line["body"]["messages"][0]["content"] for line in read_jsonl(path)]


# --- the seed workflow ------------------------------------------------------------------------


def test_seed_fixture_renders_json_equal_lines(tmp_path, capsys):
    seed = need_seed()
    out = tmp_path / "out.jsonl"
    code, stdout, _ = run_cli(
        capsys,
        "make-batch-file",
        seed / "config.json",
        seed / "simulated_survey_personas.csv",
        "-o",
        out,
    )
    assert code == 0
    assert f"Batch file created: {out}" in stdout
    assert read_jsonl(out) == read_jsonl_loose(seed / "batch-requests.jsonl")


def test_seed_fixture_with_angle_placeholders(tmp_path, capsys):
    seed = need_seed()
    template = write(
        tmp_path / "config.json",
        (seed / "config.json").read_text().replace("{{Description}}", "<<Description>>"),
    )
    out = tmp_path / "out.jsonl"
    code, _, _ = run_cli(
        capsys, "make-batch-file", template, seed / "simulated_survey_personas.csv", "-o", out
    )
    assert code == 0
    assert read_jsonl(out) == read_jsonl_loose(seed / "batch-requests.jsonl")


def read_jsonl_loose(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line]


@pytest.mark.parametrize(
    ("template", "data", "rows"),
    [
        ("persona_survey.json", "personas.csv", 120),
        ("spam_classifier.json", "emails.csv", 40),
        ("synthetic_qa.json", "passages.csv", 20),
    ],
)
def test_bundled_templates_render_the_sample_data(tmp_path, capsys, template, data, rows):
    out = tmp_path / "requests.jsonl"
    code, _, _ = run_cli(
        capsys,
        "make-batch-file",
        ROOT / "templates" / template,
        ROOT / "sample_data" / data,
        "-o",
        out,
        "-q",
    )
    assert code == 0
    lines = read_jsonl(out)
    assert [line["custom_id"] for line in lines] == [f"id_{i}" for i in range(rows)]
    with open(ROOT / "sample_data" / data, newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    rendered = json.dumps(lines[0]["body"], ensure_ascii=False)
    assert json.dumps(list(first.values())[-1], ensure_ascii=False)[1:-1] in rendered


# --- cells are text, exactly as written --------------------------------------------------------


def test_cells_stay_exactly_as_written(tmp_path, capsys):
    data = write(
        tmp_path / "d.csv",
        'v\nNA\nnull\nNone\nN/A\n""\n007\n1.50\n" padded "\nnan\n',
    )
    out = tmp_path / "o.jsonl"
    code, _, _ = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "[<<v>>]"), data, "-o", out, "-q"
    )
    assert code == 0
    assert contents(out) == [
        "[NA]",
        "[null]",
        "[None]",
        "[N/A]",
        "[]",
        "[007]",
        "[1.50]",
        "[ padded ]",
        "[nan]",
    ]


def test_cell_text_is_escaped_and_never_rendered_again(tmp_path, capsys):
    tricky = 'He said "hi"\\ \n\ttab\r\x01\x1f <<v>> {{x}} <% if %> <b>&amp; é 中文 😀 \u2028'
    data = tmp_path / "d.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["v"], [tricky]])
    out = tmp_path / "o.jsonl"
    code, _, _ = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<v>>"), data, "-o", out, "-q"
    )
    assert code == 0
    assert contents(out) == [tricky]
    raw = out.read_text(encoding="utf-8")
    assert "&lt;" not in raw and "😀" in raw  # never HTML-escaped; UTF-8 kept


# --- the template language --------------------------------------------------------------------


def test_jinja_expressions_filters_and_blocks(tmp_path, capsys):
    data = write(
        tmp_path / "d.csv",
        "Name,Age,College Education\nann,28,Yes\nbob,61,No\n",
    )
    template = chat_template(
        tmp_path,
        r"<<Name | upper>> <<Age | int + 1>> <<row[\"College Education\"]>> "
        r"<% if Age | int > 40 %>senior<% else %>junior<% endif %> <<College Education>>",
    )
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    assert contents(out) == ["ANN 29 Yes junior Yes", "BOB 62 No senior No"]


def test_bare_placeholders_become_json_values(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "T,N,B,Z\n0.7,12,true,null\n1,-3e2,FALSE,NULL\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "m", "temperature": <<T>>, "n": <<N>>, "store": <<B>>, "seed": <<Z>>,'
        ' "max_tokens": <<N | int * 2>>, "messages": [{"role": "user", "content": "x"}]}',
    )
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    bodies = [line["body"] for line in read_jsonl(out)]
    assert bodies[0] == {
        "model": "m",
        "temperature": 0.7,
        "n": 12,
        "store": True,
        "seed": None,
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "x"}],
    }
    assert bodies[1]["n"] == -300.0 and bodies[1]["store"] is False and bodies[1]["seed"] is None


def test_bare_placeholder_with_text_is_an_error_naming_row_and_column(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "T\n0.5\nwarm\n")
    template = write(tmp_path / "t.json", '{"model": "m", "temperature": <<T>>}')
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert_clean_error(code, err, "row 2", "'T'", "warm")
    assert not out.exists()


def test_legacy_curly_syntax_when_no_angle_placeholder(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "College Education,x\nYes,<<x>>\n")
    template = chat_template(tmp_path, "{{College Education}} {{ x }} {{x|lower}}")
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    assert contents(out) == ["Yes <<x>> <<x>>"]


def test_sandbox_refusal_is_an_error_not_a_crash(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    template = chat_template(tmp_path, "<<Name.__class__.__mro__>>")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "row 1", "sandbox")
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_column_lists_columns_and_suggests_nearest(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name,College Education\nann,Yes\n")
    template = chat_template(tmp_path, "<<College Educaton>>")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(
        code, err, "College Educaton", "did you mean <<College Education>>", "'Name'"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_unknown_name_in_expression_is_caught_before_rendering(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    template = chat_template(tmp_path, "<<Nmae | upper>>")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "'Nmae'", "did you mean <<Name>>")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"model": "m", "messages": [}', "not valid JSON at line 1"),
        ('{"model": "m", "x": "<<Name"}', "never closed"),
        ('["<<Name>>"]', "must be a JSON object"),
        ('{"model": "m", "x": <% if 1 %>1<% endif %>}', "only inside JSON string"),
        ('{"model": "m", "x": "<% if %>"}', "not valid"),
    ],
)
def test_invalid_templates(tmp_path, capsys, text, needle):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    template = write(tmp_path / "t.json", text)
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, needle)
    assert not (tmp_path / "o.jsonl").exists()


def test_template_without_model_is_refused(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    template = write(tmp_path / "t.json", '{"messages": [{"role": "user", "content": "<<Name>>"}]}')
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, '"model"')


# --- images -------------------------------------------------------------------------------------

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

IMAGE_TEMPLATE = (
    '{"model": "gpt-4o", "messages": [{"role": "user", "content": ['
    '{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "<<Image>>"}}'
    "]}]}"
)


def test_image_urls_pass_and_local_files_become_data_urls(tmp_path, capsys):
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "cat.png").write_bytes(PNG)
    (tmp_path / "data" / "img" / "dog.jpeg").write_bytes(b"\xff\xd8\xff\xe0fakejpeg")
    data = write(
        tmp_path / "data" / "d.csv",
        'Image\nhttps://example.com/a.png\n"data:image/png;base64,AAAA"\nimg/cat.png\n'
        f"{tmp_path / 'data' / 'img' / 'dog.jpeg'}\n",
    )
    template = write(tmp_path / "t.json", IMAGE_TEMPLATE)
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    urls = [r["body"]["messages"][0]["content"][1]["image_url"]["url"] for r in read_jsonl(out)]
    assert urls[0] == "https://example.com/a.png"
    assert urls[1] == "data:image/png;base64,AAAA"
    assert urls[2] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert urls[3].startswith("data:image/jpeg;base64,")


def test_missing_image_file_names_row_and_path(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Image\nhttps://example.com/a.png\nnope/missing.png\n")
    template = write(tmp_path / "t.json", IMAGE_TEMPLATE)
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "row 2", "missing.png")
    assert not (tmp_path / "o.jsonl").exists()


def test_image_url_list_form_is_refused_with_the_object_form(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": ['
        '{"type": "image_url", "image_url": [{"url": "https://x/y.png"}]}]}]}',
    )
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "is a list", '"image_url": {"url": "https://x/y.png"}')


# --- input tables -------------------------------------------------------------------------------


def test_csv_with_bom_quoted_newlines_and_semicolons(tmp_path, capsys):
    data = write(tmp_path / "d.csv", '\ufeffName;Note\nann;"two\nlines; here"\nbob;x\n')
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<Name>>|<<Note>>"), data, "-o", out
    )
    assert code == 0, err
    assert contents(out) == ["ann|two\nlines; here", "bob|x"]


def test_tsv_and_explicit_delimiter(tmp_path, capsys):
    tsv = write(tmp_path / "d.tsv", "Name\tNote\nann\ta,b\n")
    out = tmp_path / "o.jsonl"
    template = chat_template(tmp_path, "<<Name>>|<<Note>>")
    assert run_cli(capsys, "make-batch-file", template, tsv, "-o", out, "-q")[0] == 0
    assert contents(out) == ["ann|a,b"]
    piped = write(tmp_path / "p.csv", "Name|Note\nann|a,b\n")
    assert (
        run_cli(capsys, "make-batch-file", template, piped, "-o", out, "--delimiter", "|")[0] == 0
    )
    assert contents(out) == ["ann|a,b"]


@pytest.mark.parametrize("delimiter", ["§", "；", '"', "ab"])
def test_a_delimiter_no_reader_splits_on_is_refused_with_a_message(tmp_path, capsys, delimiter):
    data = write(tmp_path / "d.csv", f"Name{delimiter}Note\nann{delimiter}x\n")
    out = tmp_path / "o.jsonl"
    template = chat_template(tmp_path, "<<Name>>")
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "-o", out, "--delimiter", delimiter
    )
    assert_clean_error(code, err, "--delimiter must be one ASCII character", "hint:")
    assert not out.exists()


def test_latin1_csv_needs_encoding(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nJosé\n", encoding="latin-1")
    template = chat_template(tmp_path, "<<Name>>")
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert_clean_error(code, err, "not valid UTF-8", "--encoding")
    code, _, _ = run_cli(
        capsys, "make-batch-file", template, data, "-o", out, "--encoding", "latin-1"
    )
    assert code == 0 and contents(out) == ["José"]


def test_excel_parquet_and_jsonl_inputs(tmp_path, capsys):
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    template = chat_template(tmp_path, "<<Name>>:<<Age>>:<<Note>>")
    expected = ["ann:28:NA", "bob:7.5:"]

    book = openpyxl.Workbook()
    book.active.title = "first"
    book.create_sheet("people")
    sheet = book["people"]
    for row in (["Name", "Age", "Note"], ["ann", 28, "NA"], ["bob", 7.5, None]):
        sheet.append(row)
    book.save(tmp_path / "d.xlsx")
    pq.write_table(
        pa.table({"Name": ["ann", "bob"], "Age": [28.0, 7.5], "Note": ["NA", None]}),
        tmp_path / "d.parquet",
    )
    write(
        tmp_path / "d.jsonl",
        '{"Name": "ann", "Age": 28, "Note": "NA"}\n\n{"Name": "bob", "Age": 7.5, "Note": null}\n',
    )
    out = tmp_path / "o.jsonl"
    for data, extra in (("d.xlsx", ["--sheet", "people"]), ("d.parquet", []), ("d.jsonl", [])):
        code, _, err = run_cli(
            capsys, "make-batch-file", template, tmp_path / data, "-o", out, "-q", *extra
        )
        assert code == 0, (data, err)
        assert contents(out) == expected, data
    code, _, err = run_cli(
        capsys, "make-batch-file", template, tmp_path / "d.xlsx", "-o", out, "--sheet", "nope"
    )
    assert_clean_error(code, err, "no sheet 'nope'", "'people'")


def test_limit_takes_the_first_rows(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\n" + "".join(f"{i}\n" for i in range(50)))
    out = tmp_path / "o.jsonl"
    code, _, _ = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<n>>"), data, "-o", out, "--limit", "7"
    )
    assert code == 0
    assert contents(out) == [str(i) for i in range(7)]


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        ("", "d.csv", "empty"),
        ("a,a\n1,2\n", "d.csv", "appears twice"),
        ("Name\n", "d.csv", "no data rows"),
        ("a,b\n1,2,3,4\n", "d.csv", "row 1: 4 fields where the header has 2"),
        ("x", "d.xls", ".xls"),
        ("x", "d.docx", "unknown data file type"),
        ('{"a": 1}\nnot json\n', "d.jsonl", "line 2"),
    ],
)
def test_bad_data_files(tmp_path, capsys, content, name, needle):
    data = write(tmp_path / name, content)
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "x"), data, "-o", tmp_path / "o.jsonl"
    )
    assert_clean_error(code, err, needle)
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_files(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "a\n1\n")
    code, _, err = run_cli(capsys, "make-batch-file", tmp_path / "nope.json", data)
    assert_clean_error(code, err, "template file not found")
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "x"), tmp_path / "nope.csv"
    )
    assert_clean_error(code, err, "data file not found")


# --- output -------------------------------------------------------------------------------------


def test_custom_ids_from_a_column_with_prefix(tmp_path, capsys):
    data = write(tmp_path / "d.csv", 'key,v\nA-1,x\n"b ""2""",y\n')
    out = tmp_path / "o.jsonl"
    template = chat_template(tmp_path, "<<v>>")
    args = ["make-batch-file", template, data, "-o", out, "-q"]
    assert run_cli(capsys, *args, "--id-column", "key")[0] == 0
    assert [r["custom_id"] for r in read_jsonl(out)] == ["id_A-1", 'id_b "2"']
    assert run_cli(capsys, *args, "--id-column", "key", "--id-prefix", "q-")[0] == 0
    assert [r["custom_id"] for r in read_jsonl(out)] == ["q-A-1", 'q-b "2"']
    assert run_cli(capsys, *args, "--id-prefix", "row")[0] == 0
    assert [r["custom_id"] for r in read_jsonl(out)] == ["row0", "row1"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("key\nA\n\n\nB\nA\n", "rows 1 and 3"), ('key\nA\n""\n', "row 2")],
)
def test_duplicate_or_empty_ids_are_errors(tmp_path, capsys, content, needle):
    data = write(tmp_path / "d.csv", content)
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "x"),
        data,
        "-o",
        out,
        "--id-column",
        "key",
    )
    assert_clean_error(code, err, needle)
    assert not out.exists()


def test_unknown_id_column(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Key\nA\n")
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "x"),
        data,
        "--id-column",
        "key",
        "-o",
        tmp_path / "o.jsonl",
    )
    assert_clean_error(code, err, "'key'", "did you mean 'Key'")


def test_endpoint_is_each_lines_url(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "t\nhello\n")
    template = write(tmp_path / "t.json", '{"model": "text-embedding-3-small", "input": "<<t>>"}')
    out = tmp_path / "o.jsonl"
    code, _, _ = run_cli(
        capsys, "make-batch-file", template, data, "-o", out, "--endpoint", "/v1/embeddings"
    )
    assert code == 0
    assert read_jsonl(out)[0]["url"] == "/v1/embeddings"
    assert read_jsonl(out)[0]["method"] == "POST"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "--endpoint", "/v1/chat")
    assert_clean_error(code, err, "unknown endpoint")


def test_sharding_by_request_count(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\n" + "".join(f"{i}\n" for i in range(25)))
    out = tmp_path / "reqs.jsonl"
    code, stdout, _ = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "<<n>>"),
        data,
        "-o",
        out,
        "--max-requests",
        "10",
        "-q",
    )
    assert code == 0
    shards = [tmp_path / f"reqs-00{i}.jsonl" for i in (1, 2, 3)]
    assert not out.exists()
    assert [len(read_jsonl(s)) for s in shards] == [10, 10, 5]
    ids = [r["custom_id"] for s in shards for r in read_jsonl(s)]
    assert ids == [f"id_{i}" for i in range(25)]
    for shard in shards:
        assert f"Batch file created: {shard}" in stdout


def test_stale_files_from_an_earlier_run_are_pointed_out(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\n" + "".join(f"{i}\n" for i in range(4)))
    out = tmp_path / "reqs.jsonl"
    template = chat_template(tmp_path, "<<n>>")
    args = ("make-batch-file", template, data, "-o", out)
    assert run_cli(capsys, *args, "--max-requests", "2")[0] == 0
    code, _, err = run_cli(capsys, *args)
    assert code == 0
    assert "reqs-001.jsonl is from an earlier run" in err
    assert "reqs-002.jsonl is from an earlier run" in err


def test_sharding_by_bytes(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\n" + "".join(f"{'x' * 100}{i}\n" for i in range(30)))
    out = tmp_path / "reqs.jsonl"
    code, _, _ = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "<<n>>"),
        data,
        "-o",
        out,
        "--max-bytes",
        "1kB",
        "-q",
    )
    assert code == 0
    shards = sorted(tmp_path.glob("reqs-*.jsonl"))
    assert len(shards) > 1
    assert all(s.stat().st_size <= 1000 for s in shards)
    assert sum(len(read_jsonl(s)) for s in shards) == 30


def test_one_request_over_the_byte_limit_names_its_row(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\nshort\n" + "y" * 3000 + "\n")
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "<<n>>"),
        data,
        "-o",
        tmp_path / "o.jsonl",
        "--max-bytes",
        "2KiB",
    )
    assert_clean_error(code, err, "row 2", "2,048-byte")
    assert list(tmp_path.glob("o*.jsonl")) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-bytes", "lots"], "as a size"),
        (["--max-bytes", "300MB"], "200MB"),
        (["--max-requests", "50001"], "50,000"),
        (["-o", "out.json"], ".jsonl"),
    ],
)
def test_bad_limits_and_output_names(tmp_path, capsys, args, needle):
    data = write(tmp_path / "d.csv", "n\n1\n")
    code, _, err = run_cli(capsys, "make-batch-file", chat_template(tmp_path, "x"), data, *args)
    assert_clean_error(code, err, needle)


def test_failure_leaves_existing_output_untouched_and_no_temp_files(tmp_path, capsys):
    out = write(tmp_path / "o.jsonl", "precious\n")
    data = write(tmp_path / "d.csv", "T\n1\n2\nnot-a-number\n")
    template = write(tmp_path / "t.json", '{"model": "m", "temperature": <<T>>}')
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert_clean_error(code, err, "row 3")
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "o.jsonl", "t.json"]


def test_json_summary_and_progress_on_stderr(tmp_path, capsys, monkeypatch):
    pretend_terminal(monkeypatch)
    data = write(tmp_path / "d.csv", "n\n1\n2\n3\n")
    out = tmp_path / "o.jsonl"
    code, stdout, stderr = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<n>>"), data, "-o", out, "--json"
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["requests"] == 3
    assert summary["bytes"] == out.stat().st_size
    assert summary["files"][0]["path"] == str(out)
    assert summary["files"][0]["requests"] == 3
    assert "Rendering" in stderr
    _, _, quiet_err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<n>>"), data, "-o", out, "-q"
    )
    assert "Rendering" not in quiet_err


def test_preview_prints_bodies_and_writes_nothing(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\nfirst\nsecond\nthird\n")
    out = tmp_path / "o.jsonl"
    code, stdout, _ = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "<<n>>"),
        data,
        "-o",
        out,
        "--preview",
        "2",
    )
    assert code == 0
    assert not out.exists()
    assert "first" in stdout and "second" in stdout and "third" not in stdout


def test_help_lists_commands_and_version(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "make-batch-file" in out and "Example" in out
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip()[0].isdigit()


# --- the checks make-batch-file runs on what it wrote --------------------------------------------


def test_seed_fixture_estimate_matches_real_usage(tmp_path, capsys):
    seed = need_seed()
    code, stdout, _ = run_cli(
        capsys,
        "make-batch-file",
        seed / "config.json",
        seed / "simulated_survey_personas.csv",
        "-o",
        tmp_path / "o.jsonl",
        "--image-size",
        "2048x683",
        "--json",
        "-q",
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["estimate"]["prompt_tokens"] == 154_128  # the real usage of that batch
    assert summary["problems"] == []


def test_summary_has_an_estimate_line(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\nhello\nworld\n")
    code, stdout, _ = run_cli(
        capsys,
        "make-batch-file",
        chat_template(tmp_path, "<<n>>"),
        data,
        "-o",
        tmp_path / "o.jsonl",
    )
    assert code == 0
    assert "Estimate: 2 requests" in stdout and "prompt tokens" in stdout


def test_template_the_api_would_reject_is_refused_before_writing(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "n\nhello\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "gpt-4o", "temprature": 1, "messages": [{"role": "bot", "content": "<<n>>"}]}',
    )
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "body.temprature", "body.messages[0].role")
    assert not (tmp_path / "o.jsonl").exists()


def test_review_samples_large_outputs_and_scales_the_estimate(tmp_path, capsys):
    from openai_batch.requestfile.review import review_files

    data = write(tmp_path / "d.csv", "n\n" + "".join(f"row {i}\n" for i in range(300)))
    out = tmp_path / "o.jsonl"
    assert (
        run_cli(
            capsys,
            "make-batch-file",
            chat_template(tmp_path, "<<n>>"),
            data,
            "-o",
            out,
            "-q",
            "--max-requests",
            "100",
        )[0]
        == 0
    )
    files = [(p, 100) for p in sorted(tmp_path.glob("o-*.jsonl"))]
    exact = review_files(files, k=1000)
    sampled = review_files(files, k=30)
    assert exact.checked == 300 and not exact.estimate.sampled
    assert sampled.checked < 60 and sampled.estimate.sampled
    assert sampled.estimate.requests == 300
    assert (
        abs(sampled.estimate.prompt_tokens - exact.estimate.prompt_tokens)
        < 0.1 * exact.estimate.prompt_tokens
    )


# --- edge cases found in review ---------------------------------------------------------------


def test_non_ascii_digits_are_not_json_numbers(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "N\n5\n1٣\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "m", "max_tokens": <<N>>, "messages": [{"role": "user", "content": "x"}]}',
    )
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(code, err, "row 2", "1٣")
    assert not (tmp_path / "o.jsonl").exists()


def test_old_mac_line_endings(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name,Age\rAnn,3\rBob,4\r")
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<Name>> <<Age>>"), data, "-o", out
    )
    assert code == 0, err
    assert contents(out) == ["Ann 3", "Bob 4"]


def test_unknown_encoding_is_a_clear_error(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name\nann\n")
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<Name>>"), data, "--encoding", "nope"
    )
    assert_clean_error(code, err, "unknown encoding 'nope'")


def test_columns_without_a_header_are_named_not_refused(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Name,Age,,\nann,3,,\n")
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<Name>> <<Age>>"), data, "-o", out
    )
    assert code == 0, err
    assert contents(out) == ["ann 3"]


def test_output_that_is_the_data_file_is_refused(tmp_path, capsys):
    data = write(tmp_path / "rows.jsonl", '{"Name": "ann"}\n')
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<Name>>"), data, "-o", data
    )
    assert_clean_error(code, err, "would destroy it")
    assert data.read_text() == '{"Name": "ann"}\n'


def test_blocks_keep_carriage_returns_and_render_none_as_empty(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Age\n50\n")
    template = chat_template(
        tmp_path, r"<% if Age|int > 30 %>old<% endif %>\r\nend <% if 1 %><<none>><% endif %>."
    )
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert code == 0, err
    assert contents(out) == ["old\r\nend ."]


def test_parquet_floats_beyond_int64_and_binary_columns(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"F": [1e20, float("inf"), -2.5e19, 3.0, 0.5]}), tmp_path / "f.parquet")
    out = tmp_path / "o.jsonl"
    template = chat_template(tmp_path, "<<F>>")
    code, _, err = run_cli(capsys, "make-batch-file", template, tmp_path / "f.parquet", "-o", out)
    assert code == 0, err
    assert contents(out) == ["1e+20", "inf", "-2.5e+19", "3", "0.5"]
    pq.write_table(pa.table({"F": pa.array([b"\xff\x00"], pa.binary())}), tmp_path / "b.parquet")
    code, _, err = run_cli(capsys, "make-batch-file", template, tmp_path / "b.parquet", "-o", out)
    assert_clean_error(code, err, "column 'F'", "not UTF-8")


def test_jsonl_keys_that_first_appear_late_are_columns(tmp_path, capsys):
    lines = "".join('{"a": "x"}\n' for _ in range(1500)) + '{"a": "y", "late": "z"}\n'
    data = write(tmp_path / "d.jsonl", lines)
    out = tmp_path / "o.jsonl"
    code, _, err = run_cli(
        capsys, "make-batch-file", chat_template(tmp_path, "<<a>>-<<late>>"), data, "-o", out, "-q"
    )
    assert code == 0, err
    assert contents(out)[-2:] == ["x-", "y-z"]


def test_the_program_exits_with_the_command_code_and_everything_written(tmp_path):
    """`python -m openai_batch` (as the installed `openai-batch`): the summary is printed
    whole, the files are complete, and a user error is exit code 1 with its message."""
    import subprocess
    import sys

    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "openai_batch", "make-batch-file"]
    proc = subprocess.run(
        [*cmd, ROOT / "templates/spam_classifier.json", ROOT / "sample_data/emails.csv", "-o", out],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Batch file created: {out} (40 requests")
    assert "Estimate: 40 requests" in proc.stdout
    assert len(read_jsonl(out)) == 40
    proc = subprocess.run(
        [*cmd, "nope.json", tmp_path / "nope.csv"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: data file not found")


# -- an integer longer than Python reads (int()'s 4,300 digits) in a template or a cell -------


def test_a_template_holding_an_integer_too_long_to_read_is_a_clean_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was a traceback (json.loads raises a ValueError that is no JSONDecodeError)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("q\nhi\n", encoding="utf-8")
    body = (
        '{"model": "gpt-4o-mini", "seed": SEED, "messages": [{"role": "user", "content": "<<q>>"}]}'
    )
    (tmp_path / "t.json").write_text(body.replace("SEED", "7" * 5000), encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv")
    assert_clean_error(code, err, "t.json holds an integer of over 4,300 digits")
    assert not (tmp_path / "batch-requests.jsonl").exists()


@pytest.mark.parametrize("preview", [False, True], ids=["write", "--preview"])
def test_a_cell_holding_an_integer_too_long_to_read_is_a_clean_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    preview: bool,
) -> None:
    """A cell in a number's place renders as that number: one of 5,000 digits stopped
    make-batch-file (and its --preview) with a traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text(f"n,q\n{'1' * 5000},hi\n", encoding="utf-8")
    body = '{"model": "gpt-4o-mini", "max_tokens": <<n>>, "messages": []}'
    (tmp_path / "t.json").write_text(body, encoding="utf-8")
    args = ["--preview", "1"] if preview else []
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", *args)
    assert_clean_error(code, err, "holds an integer of over 4,300 digits, too long to read")
    assert not (tmp_path / "batch-requests.jsonl").exists()
