"""A deeply nested line is refused before the json module recurses near the interpreter's limit:
there, a finalizer run by the garbage collector fails with a RecursionError no one can catch
(pytest reports it as a failure of whichever test is running: test_batchjob's unreadable-lines
test failed so in about one full run in five)."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, chat_completion_body, chat_request_line, jsonl_bytes
from helpers import assert_clean_error, read_jsonl, run_cli
from openai_batch import jsondepth
from openai_batch.flow.chat_complete import run_requests
from openai_batch.jsondepth import MAX_DEPTH, too_deep, too_deep_at
from openai_batch.requestfile import read
from openai_batch.results import answers
from openai_batch.service.chat_runner import BODY_DEPTH


def _down(n: int) -> int:
    return 0 if n == 0 else _down(n - 1) + 1


class _Cycle:
    """Garbage only the collector frees; its finalizer needs a few frames of stack."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _down(50)


@pytest.fixture
def unraisable(monkeypatch):
    caught: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: caught.append(u.exc_type))
    return caught


def test_a_deep_line_runs_no_finalizer_near_the_recursion_limit(unraisable):
    """The collector is made to run deep inside the parse (its threshold just under the depths
    the json module reaches): without the depth check its finalizers fail unraisably."""
    old = gc.get_threshold()
    try:
        for threshold in range(800, 1000, 10):
            gc.collect()
            gc.set_threshold(threshold)
            for _ in range(5):
                _Cycle()
            with pytest.raises(answers.MalformedResult, match="nested too deeply"):
                answers.parse_line(b"[" * 100_000 + b"]" * 100_000)
            assert answers.json_object("{" + '"a":{' * 5000 + "}" * 5001) is None
            deep_request = b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            assert read.parse_line_general(deep_request, 2).problem == "nested too deeply to read"
    finally:
        gc.set_threshold(*old)
        gc.collect()
    assert unraisable == []


def test_a_line_orjson_refuses_for_another_reason_is_still_read():
    """NaN sends a line to the json module, which reads it (shallow) as before."""
    value = answers.parse_line(b'{"custom_id": "a", "x": NaN, "y": ' + b"[" * 40 + b"]" * 40 + b"}")
    assert value["custom_id"] == "a"


def test_the_depth_counts_nesting_not_brackets():
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep("{" + '"k":[' * MAX_DEPTH + "]" * MAX_DEPTH + "}")
    flat = "[" + ",".join(["[]"] * (3 * MAX_DEPTH)) + "]"  # many brackets, depth 2
    assert not too_deep(flat)
    in_strings = '["' + "[" * (3 * MAX_DEPTH) + '", "\\"' + "{" * (3 * MAX_DEPTH) + '"]'
    assert not too_deep(in_strings)
    assert too_deep(b"[" * (MAX_DEPTH + 1))
    assert not too_deep(in_strings.encode())


def test_the_limit_is_well_inside_the_interpreters():
    assert sys.getrecursionlimit() > jsondepth.MAX_DEPTH * 1.5


def test_an_unfinished_string_is_read_once_not_again_from_every_quote():
    """A line cut short inside a string (an interrupted copy; an answer cut at max_tokens)
    made the string pattern fail at the open quote and start again from every later escaped
    quote: 5.6 s for a 50 KB line, minutes for a megabyte. SIGALRM turns a hang into a failure
    (a bound a hundred times the time it takes, not a measurement)."""
    import signal

    def hang(*_):
        raise TimeoutError("too_deep scans an unfinished string again from every quote")

    text = "[" * 600 + '"' + '\\"' * 200_000
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        assert too_deep(text)
        assert not too_deep("[" * 300 + '"' + "[" * 600 + '\\"' * 200_000)
        assert too_deep(text.encode())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_too_deep_at_is_where_the_first_level_past_the_limit_opens() -> None:
    assert too_deep_at("[" * MAX_DEPTH + "]" * MAX_DEPTH) is None
    assert too_deep_at("[" * (MAX_DEPTH + 1)) == MAX_DEPTH
    text = ' {"a": "[[{", "b": ' + '{"k": [' * 300  # brackets in strings do not count
    assert too_deep_at(text) == text.index("[", text.index('{"k"') + 7 * 255)
    assert too_deep_at('"\\"[' + "[" * MAX_DEPTH) is None  # an escaped quote ends no string
    for sample in ("[]" * 2000, "[" * 600, '{"x": ' * 513, '"' + "[" * 900):
        assert (too_deep_at(sample) is not None) == too_deep(sample)


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<q>>"}]}


def _template(path: Path, deep: str, lines_before: int = 0) -> Path:
    """A template whose "tools" parameters hold `deep` (raw JSON), on its own line."""
    head = json.dumps(CHAT)[:-1] + "," + "\n" * lines_before
    tool = '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
    path.write_text(head + "\n" + tool + '{"type": "object", "x": ' + deep + "}}}]}", "utf-8")
    return path


@pytest.mark.parametrize("levels", [MAX_DEPTH - 4, 100_000], ids=["513 in all", "100,000"])
def test_make_batch_file_names_the_place_a_template_nests_too_deeply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, levels: int
) -> None:
    """body, tools, a tool, function, parameters and `levels` lists: past MAX_DEPTH. It was the
    CLI's generic "the input is nested too deeply" (a RecursionError), naming nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("q\nhi\n", encoding="utf-8")
    _template(tmp_path / "t.json", "[" * levels + "]" * levels, lines_before=2)
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv")
    column = len('"tools": [{"type": "function", "function": {"name": "f", "parameters": ')
    column += len('{"type": "object", "x": ') + (MAX_DEPTH - 5) + 1
    assert_clean_error(code, err, f"t.json is nested too deeply at line 4, column {column}: ")
    assert f"more than {MAX_DEPTH} lists or objects" in err
    assert not (tmp_path / "batch-requests.jsonl").exists()


def test_a_template_as_deep_as_the_limit_makes_its_requests(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_DEPTH levels are read, compiled and rendered (the compiler walked a list in two
    frames a level: about 480 lists deep ran out of stack)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("q\nhi\nho\n", encoding="utf-8")
    levels = MAX_DEPTH - 5
    _template(tmp_path / "t.json", "[" * levels + "]" * levels)
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "r.jsonl")
    assert code == 0 and "Traceback" not in err, err
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and "[" * levels + "]" * levels in lines[1]
    code, out, err = run_cli(capsys, "utils", "validate", "r.jsonl")
    assert code == 0, out + err


def test_a_request_file_nested_thousands_deep_on_its_first_line_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What kind of file it is was read with the json module unguarded: the first line's
    RecursionError became the CLI's generic "the input is nested too deeply", naming no line."""
    monkeypatch.chdir(tmp_path)
    request = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "r.jsonl").write_text(json.dumps(request)[:-1] + f', "x": {deep}}}\n', "utf-8")
    code, out, err = run_cli(capsys, "utils", "validate", "r.jsonl")
    assert code == 1 and "Traceback" not in err
    assert "line 1: nested too deeply to read" in out


def test_a_jsonl_data_table_nested_thousands_deep_names_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(json.dumps(CHAT), encoding="utf-8")
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "d.jsonl").write_text(f'{{"q": "a"}}\n{{"q": {deep}}}\n', encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.jsonl")
    assert_clean_error(code, err, "d.jsonl, line 2: nested too deeply to read")
    assert not (tmp_path / "batch-requests.jsonl").exists()


# --- the results' order: a request file's custom_ids (results/requestids) ---------------------

WAIT = ("--wait", "--poll-interval", "0")


def _with_x(line: dict[str, Any], deep: str) -> str:
    """`line` as JSON with an "x" of `deep` (raw JSON) put before its custom_id, so that only a
    whole reading of the line finds the id."""
    rest = {k: v for k, v in line.items() if k != "custom_id"}
    return json.dumps(rest)[:-1] + f', "x": {deep}, "custom_id": "{line["custom_id"]}"}}'


@pytest.mark.parametrize(
    "levels", [MAX_DEPTH - 1, MAX_DEPTH, 100_000], ids=["512 in all", "513", "100,000"]
)
def test_get_batch_results_names_a_request_line_too_deep_to_find_its_custom_id(
    fake_api: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    levels: int,
) -> None:
    """--requests orders the results. A line whose custom_id follows its body was read whole
    for it by the json module unguarded: a RecursionError, the CLI's generic message. Not in
    natural order, so a line left out would show (its answer would go last)."""
    monkeypatch.chdir(tmp_path)
    lines = [chat_request_line(custom_id) for custom_id in ("c", "b", "a")]
    client = fake_api.client()
    upload = client.files.create(file=("r.jsonl", jsonl_bytes(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake_api.finish(batch.id)
    deep = _with_x(lines[1], "[" * levels + "]" * levels)
    Path("r.jsonl").write_text("\n".join([json.dumps(lines[0]), deep, json.dumps(lines[2])]) + "\n")
    code, _out, err = run_cli(capsys, "get-batch-results", batch.id, "--requests", "r.jsonl", *WAIT)
    if levels < MAX_DEPTH:  # the line and MAX_DEPTH - 1 lists: read
        assert code == 0, err
        assert [r["custom_id"] for r in read_jsonl(Path("batch-responses.jsonl"))] == [
            "c",
            "b",
            "a",
        ]
        return
    assert_clean_error(
        code, err, f"r.jsonl, line 2: nested too deeply to read (more than {MAX_DEPTH} lists",
        "so its custom_id cannot be found", "hint: `openai-batch utils validate r.jsonl`",
    )  # fmt: skip
    assert not Path("batch-responses.jsonl").exists()


# --- utils chat-complete: a server's reply, and its own output read back on resume ---------------

CHAT_LINE = "/v1/chat/completions"
CHAT_REQUEST = chat_request_line("id_0")


def _chat_requests(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(chat_request_line(f"id_{i}")) + "\n" for i in range(n)))
    return path


def _reply(levels: int) -> bytes:
    """A chat answer with an "x" nested `levels` deep in all (the body is one), and a NaN: the
    json module, not orjson, reads the line it is written into (answers.parse_line)."""
    body = json.dumps(chat_completion_body("gpt-4o-mini", "hi"))[:-1]
    return f'{body}, "nan": NaN, "x": {"[" * (levels - 1)}{"]" * (levels - 1)}}}'.encode()


@pytest.mark.parametrize("levels", [BODY_DEPTH, BODY_DEPTH + 1, 100_000])
def test_chat_complete_writes_a_reply_too_deep_to_read_as_its_failure(
    fake_api: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    levels: int,
) -> None:
    """A server's answer was read by the json module unguarded: 100,000 levels stopped the run
    with a RecursionError. A body is written two levels down in its result line, so one
    BODY_DEPTH deep makes a line MAX_DEPTH deep, which the resume reads back (with the json
    module: the NaN); one level more is that request's failure, asked again on resume."""
    monkeypatch.chdir(tmp_path)
    ok_reply = fake_api.default_responder

    def deep_second(line: dict[str, Any]) -> tuple[int, Any]:
        if line["body"]["messages"][0]["content"] == "question":
            return 200, _reply(levels)
        return ok_reply(line)

    fake_api.responder = deep_second
    path = tmp_path / "r.jsonl"
    lines = [chat_request_line("id_0"), chat_request_line("id_1", "question")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, _out, err = run_cli(capsys, "utils", "chat-complete", path, "-q", "-o", "out.jsonl")
    assert "Traceback" not in err
    written = {line["custom_id"]: line for line in read_jsonl(Path("out.jsonl"))}
    if levels <= BODY_DEPTH:
        assert code == 0, err
        assert written["id_1"]["response"]["body"]["choices"][0]["message"]["content"] == "hi"
        assert not too_deep(Path("out.jsonl").read_text().splitlines()[1])
    else:
        assert code == 4, err
        assert written["id_1"]["response"] is None
        assert written["id_1"]["error"] == {
            "code": "invalid_response",
            "message": "the server's answer is nested too deeply to read (more than "
            f"{BODY_DEPTH} lists or objects inside each other)",
        }
    fake_api.responder = ok_reply
    calls = len(fake_api.log)
    code, out, err = run_cli(capsys, "utils", "chat-complete", path, "-o", "out.jsonl", "--json")
    assert code == 0, err
    asked = [p for _m, p, _s in fake_api.log[calls:] if p == CHAT_LINE]
    assert (json.loads(out)["already_done"], len(asked)) == (
        (2, 0) if levels <= BODY_DEPTH else (1, 1)
    )


def test_chat_complete_names_a_deep_error_reply_in_its_failure(
    fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 400 whose body is nested 100,000 deep: the request's failure says so."""
    monkeypatch.chdir(tmp_path)
    fake_api.responder = lambda line: (400, b"[" * 100_000 + b"]" * 100_000)
    path = _chat_requests(tmp_path / "r.jsonl", 1)
    summary = run_requests(path, "out.jsonl", progress=False)
    assert summary.failed == 1
    (line,) = read_jsonl(Path("out.jsonl"))
    assert line["response"]["status_code"] == 400
    assert "nested too deeply to read" in line["response"]["body"]["error"]["message"]
    assert "nested too deeply to read" in summary.failures["id_0"]


def _result(custom_id: str, extra: str = "") -> str:
    body = json.dumps(chat_completion_body("gpt-4o-mini", "hi"))[:-1] + extra + "}"
    return (
        f'{{"id": "batch_req_1", "custom_id": "{custom_id}", "response": {{"status_code": 200, '
        f'"request_id": "r", "body": {body}}}, "error": null}}\n'
    )


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "last line, no newline"])
def test_chat_complete_names_an_output_line_too_deep_to_read_on_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: bool
) -> None:
    """Resuming reads the output file back: its lines were read by the json module unguarded
    (a RecursionError, the CLI's generic message). A deep line is none chat-complete writes
    (BODY_DEPTH), so it is refused by its line, even as the last one without its newline
    (where a line cut short by a crash is dropped)."""
    monkeypatch.chdir(tmp_path)
    path = _chat_requests(tmp_path / "r.jsonl", 2)
    deep = "[" * 100_000 + "]" * 100_000
    text = _result("id_0") + _result("id_1", f', "x": {deep}')
    Path("out.jsonl").write_text(text[:-1] if cut else text, encoding="utf-8")
    before = Path("out.jsonl").read_bytes()
    code, _out, err = run_cli(
        capsys, "utils", "chat-complete", path, "-o", "out.jsonl", "--base-url", "http://x/v1"
    )
    assert_clean_error(
        code, err, "out.jsonl:2 is not a results line (the line is nested too deeply to read)"
    )
    assert Path("out.jsonl").read_bytes() == before


def test_chat_complete_resumes_from_a_line_as_deep_as_the_limit(
    fake_api: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A line MAX_DEPTH deep that orjson refuses (NaN) is read by the json module: answered."""
    monkeypatch.chdir(tmp_path)
    path = _chat_requests(tmp_path / "r.jsonl", 2)
    x = "[" * (MAX_DEPTH - 4) + "]" * (MAX_DEPTH - 4)  # in the body, in response, in the line
    Path("out.jsonl").write_text(_result("id_0") + _result("id_1", f', "n": NaN, "x": {x}'))
    assert not too_deep(Path("out.jsonl").read_text())
    code, out, err = run_cli(capsys, "utils", "chat-complete", path, "-o", "out.jsonl", "--json")
    assert code == 0, err
    assert json.loads(out)["already_done"] == 2
    assert not [p for _m, p, _s in fake_api.log if p == CHAT_LINE]


# --- the API's replies to the SDK (service/reach.FailFastClient) ---------------------------------


@pytest.mark.parametrize("status", [200, 500])
def test_a_server_reply_nested_too_deeply_is_named_not_read(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """The SDK read every reply with the json module unguarded: a reply 100,000 deep was the
    CLI's generic "the input is nested too deeply" (a template or request line, said its hint);
    a 500 so deep was read by the SDK near the recursion limit for its error message."""
    deep = b"[" * 100_000 + b"]" * 100_000
    fake_api.inject("GET", r"/v1/batches$", status, body=deep, times=None)
    code, _out, err = run_cli(capsys, "list-batches")
    assert_clean_error(
        code, err, "answered GET /v1/batches with JSON nested too deeply to read while listing "
        f"batches (more than {MAX_DEPTH} lists", "OpenAI-compatible server",
    )  # fmt: skip
    assert len([p for _m, p, _s in fake_api.log if p == "/v1/batches"]) == 1  # not retried


def test_a_server_reply_as_deep_as_the_limit_is_read(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    client = fake_api.client()
    upload = client.files.create(file=("r.jsonl", jsonl_bytes([CHAT_REQUEST])), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    listed = json.loads(client.batches.with_raw_response.list().text)
    listed["data"][0]["x"] = None  # the list, its data, a batch, and x: MAX_DEPTH in all
    x = "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3)
    text = json.dumps(listed).replace('"x": null', f'"x": {x}')
    assert not too_deep(text) and too_deep(text, MAX_DEPTH - 1)
    fake_api.inject("GET", r"/v1/batches$", 200, body=text.encode(), times=None)
    code, out, err = run_cli(capsys, "list-batches")
    assert code == 0, err
    assert batch.id in out
