"""The first hour of a newcomer: every mistake gets a message that leads to the fix (issue 12).

Each test drives the real CLI (in-process or as a subprocess) against real files and, where a
service is needed, the in-repo fake server or a port where nothing listens.
"""

from __future__ import annotations

import json
import re
import socket
import time
import warnings
from pathlib import Path

import pytest

from helpers import (
    assert_clean_error,
    cli_json,
    pretend_terminal,
    read_csv,
    read_jsonl,
    run_cli,
    write,
)

# The personas file as the slides show it: a space after every comma.
SLIDES_CSV = (
    "ID, Age, College, Description\n"
    "1, 28, No, Hank Rodriguez is a 28 year old black architect who enjoys Star Wars.\n"
    "2, 45, Yes, David Carter is a 45 year old black nurse who enjoys medieval history.\n"
    "3, 39, Yes, David Smith is a 39 year old caucasian architect who enjoys medieval history.\n"
)
PERSONA = (
    '{"model": "gpt-4o-mini", "messages": [{"role": "user", '
    '"content": "Persona <<ID>> (<<Age>>, college: <<College>>): <<Description>>"}]}'
)
CHAT = '{"model": "m", "messages": [{"role": "user", "content": "CONTENT"}]}'


def _request_line(custom_id: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def contents(path: Path) -> list[str]:
    return [line["body"]["messages"][0]["content"] for line in read_jsonl(path)]


# --- data and templates ------------------------------------------------------------------------


def test_slides_csv_with_comma_space_is_read_as_meant(tmp_path, capsys):
    data = write(tmp_path / "personas.csv", SLIDES_CSV)
    template = write(tmp_path / "t.json", PERSONA)
    out = tmp_path / "req.jsonl"
    code, stdout, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert code == 0, err
    assert contents(out)[0] == (
        "Persona 1 (28, college: No): Hank Rodriguez is a 28 year old black architect who "
        "enjoys Star Wars."
    )
    assert "without the space after each delimiter" in stdout
    assert "--keep-spaces" in stdout
    code, summary = cli_json(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0 and summary["skipped_spaces"] is True


def test_keep_spaces_keeps_them(tmp_path, capsys):
    data = write(tmp_path / "personas.csv", SLIDES_CSV)
    template = write(tmp_path / "t.json", PERSONA)
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "-o", tmp_path / "r.jsonl", "--keep-spaces"
    )
    assert_clean_error(code, err, "Description")
    spaced = write(
        tmp_path / "s.json",
        '{"model": "m", "messages": [{"role": "user", "content": "{{ row[\' Age\'] }}|"}]}',
    )
    out = tmp_path / "s.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", spaced, data, "-o", out, "--keep-spaces")
    assert code == 0, err
    assert contents(out)[0] == " 28|"


def test_a_cell_without_the_space_keeps_the_table_as_written(tmp_path, capsys):
    """Only a file spaced throughout is read without the spaces: ` x` elsewhere is data."""
    data = write(tmp_path / "d.csv", "ID, Text\n1, a\n2,b\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "m", "messages": [{"role": "user", "content": "<<ID>>|<< Text>>|"}]}',
    )
    out = tmp_path / "r.jsonl"
    code, stdout, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    assert contents(out) == ["1| a|", "2|b|"]
    assert "--keep-spaces" not in stdout


def test_curly_template_with_literal_shift_operators(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "Code\nx = 1\n")
    template = write(
        tmp_path / "t.json",
        '{"model": "m", "messages": [{"role": "user", "content": '
        '"In C++, what does a << 2 do (and b >> 1)? Explain: {{Code}}"}]}',
    )
    out = tmp_path / "r.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
    assert code == 0, err
    assert contents(out) == ["In C++, what does a << 2 do (and b >> 1)? Explain: x = 1"]
    unclosed = write(
        tmp_path / "u.json",
        '{"model": "m", "messages": [{"role": "user", "content": "{{Code}} then a << 2"}]}',
    )
    code, _, err = run_cli(capsys, "make-batch-file", unclosed, data, "-o", out, "-q")
    assert code == 0, err
    assert contents(out) == ["x = 1 then a << 2"]


def test_literal_brackets_as_documented(tmp_path, capsys):
    """docs/templates.md: `<<'<<'>>` and `{{'{{'}}` write the brackets of their own spelling."""
    data = write(tmp_path / "d.csv", "Name\nAnn\n")
    out = tmp_path / "r.jsonl"
    for content, expected in [
        ("<<'<<'>> <<Name>> {{ x }}", "<< Ann {{ x }}"),
        ("{{'{{'}} {{Name}} a << b", "{{ Ann a << b"),
    ]:
        template = write(tmp_path / "t.json", CHAT.replace("CONTENT", content))
        code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out, "-q")
        assert code == 0, err
        assert contents(out) == [expected]


# --- connection ----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nothing_listening_fails_fast_naming_the_url(fake_api, monkeypatch, capsys, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    requests = write(tmp_path / "r.jsonl", _request_line("id_0") + "\n")
    for args in (
        ["list-batches"],
        ["upload-batch-file", requests],
        ["utils", "chat-complete", requests],
    ):
        started = time.monotonic()
        code, _, err = run_cli(capsys, *args)
        assert time.monotonic() - started < 5, args
        assert_clean_error(code, err, url, "connection refused", "OPENAI_BASE_URL")


def test_base_url_without_v1_says_so(fake_api, monkeypatch, capsys, tmp_path):
    base = fake_api.base_url.removesuffix("/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", base)
    code, _, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "GET /batches", "base URL", f"OPENAI_BASE_URL={base}/v1")
    assert "list-batches`" not in err  # not the hint to run the command that failed
    code, _, err = run_cli(capsys, "get-batch-results", "batch_abc")
    assert_clean_error(code, err, "GET /batches/batch_abc", f"{base}/v1")
    requests = write(tmp_path / "r.jsonl", _request_line("id_0") + "\n")
    code, _, err = run_cli(capsys, "upload-batch-file", requests)
    assert_clean_error(code, err, "POST /files", f"{base}/v1")


def test_501_is_not_retried(fake_api, capsys):
    fake_api.inject("GET", "/v1/batches", 501, times=None)
    code, _, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "/v1/batches", "501")
    assert [r.status for r in fake_api.requests] == [501]


def test_chat_complete_names_the_endpoint_the_server_lacks(fake_api, monkeypatch, capsys, tmp_path):
    base = fake_api.base_url.removesuffix("/v1")
    requests = write(
        tmp_path / "r.jsonl", "".join(_request_line(f"id_{i}") + "\n" for i in range(20))
    )
    for how in (["--base-url", base], []):
        monkeypatch.setenv("OPENAI_BASE_URL", base)
        code, _, err = run_cli(capsys, "utils", "chat-complete", requests, "-q", "-c", "2", *how)
        assert_clean_error(code, err, "POST /chat/completions", f"{base}/v1")
        assert "run the same command again" not in err
    assert len(fake_api.requests) < 10  # stopped at once, not one 404 per request


def test_chat_complete_unknown_model_is_a_failed_request(fake_api, capsys, tmp_path):
    body = {"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}}
    fake_api.inject("POST", "/v1/chat/completions", 404, times=None, body=body)
    requests = write(tmp_path / "r.jsonl", _request_line("id_0") + "\n")
    code, _, err = run_cli(capsys, "utils", "chat-complete", requests)
    assert code == 4, err
    assert "does not exist" in err and "base URL" not in err


# --- files in the wrong place ------------------------------------------------------------------

REQUEST_COMMANDS = [
    ["upload-batch-file"],
    ["start-batch"],
    ["get-batch-results"],
    ["utils", "validate"],
    ["utils", "estimate"],
    ["utils", "chat-complete"],
    ["utils", "retry-failed", "-o", "retry.jsonl"],
]


@pytest.mark.parametrize("command", REQUEST_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_table_or_template_where_a_request_file_goes(fake_api, capsys, tmp_path, command):
    files = {
        "people.csv": (SLIDES_CSV, "is a data table", "make-batch-file TEMPLATE.json"),
        "rows.jsonl": ('{"ID": "1", "Age": "28"}\n{"ID": "2"}\n', "is a data table", "TEMPLATE"),
        "config.json": (PERSONA.replace(", ", ",\n  "), "is a template", "DATA.csv"),
        "one-line.jsonl": (PERSONA + "\n", "is a template", "make-batch-file"),
    }
    for name, (text, what, hint) in files.items():
        path = write(tmp_path / name, text)
        code, _, err = run_cli(capsys, *command[:2], path, *command[2:])
        assert_clean_error(code, err, f"{path} {what}", hint)
    folder = tmp_path / "wave2"
    write(folder / "batch-requests.jsonl", _request_line("id_0") + "\n")
    code, _, err = run_cli(capsys, *command[:2], folder, *command[2:])
    assert_clean_error(code, err, f"{folder} is a folder", "batch-requests.jsonl")
    assert fake_api.requests == []


@pytest.mark.parametrize("command", REQUEST_COMMANDS[:2] + REQUEST_COMMANDS[3:6])
def test_a_truncated_last_line_is_said_to_be_cut_short(fake_api, capsys, tmp_path, command):
    whole = _request_line("id_0") + "\n"
    path = write(tmp_path / "r.jsonl", whole + _request_line("id_1")[:-30])
    _, out, err = run_cli(capsys, *command, path)
    assert re.search("(line |:)2:? (was skipped: )?cut short", out + err), out + err
    assert "Expecting" not in out + err
    # A complete last line without its newline is fine; a broken line in the middle is not cut.
    write(tmp_path / "r.jsonl", whole + '{"custom_id": "id_1" "body": {}}\n' + whole)
    _, out, err = run_cli(capsys, *command, path)
    assert "cut short" not in out + err


# --- output -------------------------------------------------------------------------------------

RESULT_LINES = ("Batch file created:", "Started batch:", "Results written to:", "Table written to:")


def test_quiet_prints_only_result_lines(fake_api, capsys, tmp_path, monkeypatch):
    pretend_terminal(monkeypatch)  # even on a terminal: no bar
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "personas.csv", SLIDES_CSV)
    image = '{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}'
    template = PERSONA.replace(
        '"content": "', '"content": [' + image + ', {"type": "text", "text": "'
    )
    write(tmp_path / "t.json", template.replace('"}]}', '"}]}]}'))
    code, out, err = run_cli(
        capsys, "run", "t.json", "personas.csv", "-q", "--wait", "--poll-interval", "0",
        "--csv", "out.csv",
    )  # fmt: skip
    assert code == 0, err
    assert err == ""
    assert out.splitlines() and all(line.startswith(RESULT_LINES) for line in out.splitlines())
    code, out, err = run_cli(capsys, "get-batch-results", "batch-requests.jsonl", "-q")
    assert (code, err) == (0, "")
    assert [line.split(":")[0] for line in out.splitlines()] == ["Results written to"]
    # Without -q the same commands say more (the warning about the remote image, the timeline).
    code, out, err = run_cli(capsys, "make-batch-file", "t.json", "personas.csv")
    assert "warning:" in err and "Estimate:" in out


def test_no_progress_bar_outside_a_terminal(fake_api, capsys, tmp_path):
    data = write(tmp_path / "personas.csv", SLIDES_CSV)
    template = write(tmp_path / "t.json", PERSONA)
    out = tmp_path / "r.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert code == 0
    assert "Rendering" not in err and "rows/s" not in err
    code, _, err = run_cli(capsys, "utils", "chat-complete", out)
    assert code == 0
    assert "req/s" not in err and "%|" not in err


def test_progress_rates_in_readable_units(monkeypatch, capsys):
    from openai_batch.ui.progress import progress_bar

    pretend_terminal(monkeypatch)
    bar = progress_bar(total=30_000, unit=" req")
    bar.update(20_813)
    meter = {**bar.format_dict, "elapsed": 2.0}  # as if two seconds had passed
    text = bar.format_meter(**meter)
    bar.close()
    assert "20,813/30,000" in text and "10.4k req/s" in text


ONE_PLURAL = re.compile(
    r"(?<![\d,.])1 (requests|lines|rows|files|request files|shards|batches|results|answers|"
    r"warnings|errors|prompt tokens)\b|\((s|es)\)|(?<![\d,.])1 were"
)


def test_one_is_singular(fake_api, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "one.csv", "ID,Description\n1,Hank\n")
    write(tmp_path / "t.json", PERSONA.replace("<<Age>>", "x").replace("<<College>>", "y"))
    said = []
    for args in (
        ["run", "t.json", "one.csv", "--wait", "--poll-interval", "0", "--csv", "out.csv"],
        ["utils", "validate", "batch-requests.jsonl"],
        ["utils", "estimate", "batch-requests.jsonl"],
        ["utils", "chat-complete", "batch-requests.jsonl", "--csv", "cc.csv"],
        ["get-batch-results", "batch-requests.jsonl"],
        ["start-batch", "batch-requests.jsonl"],
    ):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        said.append(out + err)
    text = "\n".join(said)
    assert "1 request file, 1 request" in text and "(1 line:" in text and "(1 row:" in text
    assert "1 of 1 request answered" in text
    assert not ONE_PLURAL.search(text), ONE_PLURAL.search(text)


def test_each_help_shows_its_own_example(capsys):
    from openai_batch.cli import COMMANDS, UTILS

    examples = [example for *_, example in COMMANDS + UTILS]
    commands = [([name], e) for _, name, _, e in COMMANDS]
    for argv, example in commands + [(["utils", name], e) for _, name, _, e in UTILS]:
        code, out, _ = run_cli(capsys, *argv, "--help")
        assert code == 0
        assert [e for e in examples if e in out] == [example], argv
    _, out, _ = run_cli(capsys, "--help")
    assert all(e in out for e in examples)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["list-batches", "--limit", "-1"], "--limit cannot be negative"),
        (["make-batch-file", "t.json", "d.csv", "--preview", "0"], "--preview must be at least 1"),
    ],
)
def test_nonsense_numbers_are_refused(fake_api, capsys, args, needle):
    code, _, err = run_cli(capsys, *args)
    assert_clean_error(code, err, needle)
    assert fake_api.requests == []


def test_parse_from_file_with_the_wrong_model_warns_naming_the_field(tmp_path):
    from pydantic import BaseModel

    from openai_batch import BatchJob

    class Answer(BaseModel):
        label: str

    class Other(BaseModel):
        verdict: str

    def line(custom_id: str, content: str) -> str:
        message = {"role": "assistant", "content": content}
        body = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
        response = {"status_code": 200, "request_id": "r", "body": body}
        return json.dumps({"id": "b", "custom_id": custom_id, "response": response, "error": None})

    path = write(
        tmp_path / "out.jsonl", line("id_0", "prose") + "\n" + line("id_1", '{"label": "x"}') + "\n"
    )
    with pytest.warns(UserWarning, match=r"none of the 2 lines .* Other; line 2: .*'verdict'"):
        parsed, unparsed = BatchJob.parse_from_file(path, Other)
    assert (parsed, len(unparsed)) == ([], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed, _ = BatchJob.parse_from_file(path, Answer)  # one parses: no warning
    assert [p.label for p in parsed] == ["x"]


def test_the_package_exports_only_its_api():
    import openai_batch
    import openai_batch.local.files

    assert dir(openai_batch) == ["ApiError", "BatchError", "BatchJob", "__version__"]
    assert sorted(openai_batch.__all__) == dir(openai_batch)


# --- reuse that surprises ------------------------------------------------------------------------


def _start_json(capsys, path) -> str:
    code, started = cli_json(capsys, "start-batch", path)
    assert code == 0, started
    return str(started[0]["id"])


def test_the_same_requests_in_another_folder_say_where_and_when(fake_api, capsys, tmp_path):
    lines = "".join(_request_line(f"id_{i}") + "\n" for i in range(3))
    wave1 = write(tmp_path / "wave1" / "req.jsonl", lines)
    wave2 = write(tmp_path / "wave2" / "req.jsonl", lines)
    first = _start_json(capsys, wave1)
    code, out, err = run_cli(capsys, "start-batch", wave2)
    assert code == 0, err
    assert f"Already started: {first}" in out
    assert f"started from {wave1} on 20" in out  # where, and when (a date)
    assert f"openai-batch start-batch {wave2} --force" in out
    code, out, _ = run_cli(capsys, "start-batch", wave1)  # the same file: no "elsewhere"
    assert "started from" not in out and "--force" in out
    assert len(fake_api.batches) == 1


def test_a_cancelled_batch_without_output_still_writes_the_table(
    fake_api, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # batch-responses.jsonl is written in the working folder
    data = write(tmp_path / "personas.csv", SLIDES_CSV)
    template = write(tmp_path / "t.json", PERSONA)
    requests = tmp_path / "r.jsonl"
    assert run_cli(capsys, "make-batch-file", template, data, "-o", requests, "-q")[0] == 0
    batch_id = _start_json(capsys, requests)
    assert run_cli(capsys, "cancel-batch", batch_id)[0] == 0
    table = tmp_path / "out.csv"
    code, out, err = run_cli(
        capsys, "get-batch-results", requests, "--wait", "--poll-interval", "0", "--csv", table
    )
    assert code == 4, err
    assert "(3 rows: 0 ok, 0 error, 3 missing)" in out
    rows = read_csv(table)
    assert [(r["ID"], r["status"]) for r in rows] == [
        ("1", "missing"),
        ("2", "missing"),
        ("3", "missing"),
    ]
    assert f"utils retry-failed {batch_id}" in err


def test_a_retry_batch_is_labelled_with_its_retry_file(fake_api, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "r.jsonl", "".join(_request_line(f"id_{i}") + "\n" for i in range(4)))
    answer = fake_api.responder
    fake_api.responder = lambda line: (
        (500, {"error": {"message": "boom", "type": "server_error"}})
        if line["custom_id"] == "id_2"
        else answer(line)
    )
    first = _start_json(capsys, "r.jsonl")
    wait = ("--wait", "--poll-interval", "0")
    assert run_cli(capsys, "get-batch-results", first, *wait)[0] == 4
    assert run_cli(capsys, "utils", "retry-failed", "r.jsonl", "-o", "retry.jsonl")[0] == 0
    fake_api.responder = answer
    second = _start_json(capsys, "retry.jsonl")
    code, out, err = run_cli(capsys, "get-batch-results", "r.jsonl", *wait)
    assert code == 0, err
    blocks = {block.split()[0]: block for block in out.split("\n\n") if block.startswith("batch_")}
    assert re.search(r"Input file: .*\(r\.jsonl\)", blocks[first])
    assert re.search(r"Input file: .*\(retry\.jsonl\)", blocks[second])


def test_readme_run_example_matches_what_the_tool_prints(fake_api, capsys, tmp_path, monkeypatch):
    from helpers import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ openai-batch run templates/persona_survey.json sample_data/personas.csv"
    block = readme.split(command, 1)[1].split("```", 1)[0].splitlines()
    args, expected = block[0].split(), [line for line in block[1:] if line.strip() != "..."]
    for folder, name in (("templates", "persona_survey.json"), ("sample_data", "personas.csv")):
        write(tmp_path / folder / name, (ROOT / folder / name).read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "run", *command.split()[3:], *args, "--poll-interval", "0")
    assert code == 0, err
    batch_id = re.search(r"batch_[0-9a-f]+", out)
    assert batch_id is not None
    for line in expected:
        line = re.sub(r"batch_[0-9a-f]+", batch_id.group(0), line)
        assert line in out.splitlines(), (line, out)


# --- done when --------------------------------------------------------------------------------


def _hint(err: str) -> str:
    return err.split("hint: ", 1)[1].strip()


def test_done_when_a_newcomer_with_the_slides_is_led_to_each_fix(
    fake_api, capsys, tmp_path, monkeypatch
):
    """README's quick start with the slides' personas file (", " between fields), a base URL
    typed without /v1, and the table given to upload-batch-file: each message's hint, followed
    literally, fixes the mistake, and the answers land on the right rows."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "personas.csv", SLIDES_CSV)
    write(tmp_path / "config.json", PERSONA)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_api.base_url.removesuffix("/v1"))

    # The table where the request file goes: the hint is the make-batch-file command.
    code, _, err = run_cli(capsys, "upload-batch-file", "personas.csv")
    assert_clean_error(code, err, "personas.csv is a data table")
    command = _hint(err).split(": ", 1)[1].split()
    assert command[:2] == ["openai-batch", "make-batch-file"]
    code, out, err = run_cli(
        capsys, *[a.replace("TEMPLATE.json", "config.json") for a in command[1:]]
    )
    assert code == 0, err
    assert "without the space after each delimiter" in out  # the slides' ", " is read as meant

    # The base URL without /v1: the hint gives the variable's right value.
    code, _, err = run_cli(capsys, "upload-batch-file", "batch-requests.jsonl")
    assert_clean_error(code, err, "POST /files", "base URL")
    variable, value = re.search(r"try (OPENAI_BASE_URL)=(\S+)", _hint(err)).groups()
    monkeypatch.setenv(variable, value)
    assert value == fake_api.base_url

    # Now the quick start goes through, and every answer is on its persona's row.
    code, _, err = run_cli(capsys, "upload-batch-file", "batch-requests.jsonl")
    assert code == 0, err
    code, _, err = run_cli(capsys, "start-batch", "batch-requests.jsonl")
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "get-batch-results", "batch-requests.jsonl", "--wait", "--poll-interval", "0",
        "--csv", "results.csv",
    )  # fmt: skip
    assert code == 0, err
    rows = read_csv(tmp_path / "results.csv")
    assert list(rows[0])[:4] == ["ID", "Age", "College", "Description"]
    assert [r["ID"] for r in rows] == ["1", "2", "3"]
    assert all(r["status"] == "ok" and r["Description"] in r["content"] for r in rows)
    assert rows[1]["Description"].startswith("David Carter")


@pytest.mark.parametrize("command", REQUEST_COMMANDS[:6], ids=lambda c: " ".join(c[:2]))
def test_a_results_file_where_a_request_file_goes(fake_api, capsys, tmp_path, command):
    response = {"status_code": 200, "request_id": "r", "body": {"choices": []}}
    line = {"id": "batch_req_1", "custom_id": "id_0", "response": response, "error": None}
    path = write(tmp_path / "batch-responses.jsonl", json.dumps(line) + "\n")
    code, _, err = run_cli(capsys, *command, path)
    assert_clean_error(code, err, f"{path} is a results file", "utils retry-failed")
    assert fake_api.requests == []


def test_template_and_data_the_other_way_round(capsys, tmp_path):
    data = write(tmp_path / "personas.csv", SLIDES_CSV)
    template = write(tmp_path / "config.json", PERSONA)
    code, _, err = run_cli(capsys, "make-batch-file", data, template)
    assert_clean_error(code, err, "the template comes first")
    assert f"make-batch-file {template} {data}" in err


def test_the_other_way_round_hint_is_a_command_a_shell_can_run(capsys, tmp_path):
    """Paths with spaces are quoted in the suggested command (ui/hints' one quoting rule)."""
    folder = tmp_path / "my study"
    folder.mkdir()
    data = write(folder / "personas.csv", SLIDES_CSV)
    template = write(folder / "config.json", PERSONA)
    code, _, err = run_cli(capsys, "make-batch-file", data, template)
    assert_clean_error(code, err, "the template comes first")
    assert f"openai-batch make-batch-file '{template}' '{data}'" in err, err


def test_a_spaced_header_in_a_mixed_file_is_named_not_copied(tmp_path, capsys):
    data = write(tmp_path / "d.csv", "ID, Text\n1, a\n2,b\n")
    template = write(tmp_path / "t.json", CHAT.replace("CONTENT", "<<Text>>"))
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "r.jsonl")
    assert_clean_error(code, err, "the header says ' Text', with spaces", "take them out")
    assert "did you mean << Text>>" not in err


def test_the_unreachable_url_is_named_without_its_password(fake_api, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://alice:s3cret-pw@127.0.0.1:{_closed_port()}")
    code, out, err = run_cli(capsys, "list-batches")
    assert_clean_error(code, err, "nothing answers at http://127.0.0.1:")
    assert "s3cret-pw" not in out + err
