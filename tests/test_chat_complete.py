"""utils chat-complete: request files through the synchronous API, Batch-format results."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from fake_openai import chat_completion_body, error_body
from helpers import ROOT, assert_clean_error, need_seed, read_jsonl, run_cli, write
from openai_batch import BatchError, BatchJob
from openai_batch.flow.chat_complete import (
    default_output_path,
    load_answered,
    output_lock,
    run_requests,
    scan_requests,
)


def request(i: int, content: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": f"id_{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": content or f"question {i}"}],
        },
        **extra,
    }


def write_requests(path: Path, lines: list[dict[str, Any]]) -> Path:
    return write(path, "".join(json.dumps(line) + "\n" for line in lines))


def result_line(custom_id: str, status: int = 200) -> str:
    body = {"choices": []} if status == 200 else {"error": {"message": "no"}}
    line = {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }
    return json.dumps(line) + "\n"


# --- offline: reading request and output files -----------------------------------------------


def test_default_output_sits_beside_the_request_file(tmp_path):
    assert default_output_path(tmp_path / "batch.jsonl") == tmp_path / "batch.responses.jsonl"
    assert default_output_path(Path("a/b.txt")) == Path("a/b.responses.jsonl")


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        ([request(0), request(0)], "custom_id 'id_0' repeats line 1"),
        (["{not json"], "r.jsonl:1: not valid JSON"),
        ([request(0, url="/v1/images")], "unsupported url"),
        ([request(0, method="GET")], "method must be POST"),
        ([{"method": "POST", "url": "/v1/embeddings", "body": {}}], "missing custom_id"),
        ([request(0, body="text")], "body must be a JSON object"),
        ([], "has no requests"),
    ],
)
def test_broken_request_files_are_refused_before_any_call(tmp_path, lines, needle):
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path = write(tmp_path / "r.jsonl", text)
    with pytest.raises(BatchError) as info:
        scan_requests(path)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("second", "needle"),
    [
        (b'{"custom_id": "caf\xe9"}', "r.jsonl:2: not UTF-8 text"),
        (json.dumps(request(1, "\ud800")).encode(), "r.jsonl:2: holds a lone UTF-16 surrogate"),
    ],
)
def test_request_lines_follow_the_one_reader_s_rules(tmp_path, second, needle):
    """The request-file reader's rules (`requestfile/read.py`): a line that is not UTF-8 used to
    stop chat-complete with a UnicodeDecodeError; a lone surrogate was sent to the API."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(json.dumps(request(0)).encode() + b"\n" + second + b"\n")
    with pytest.raises(BatchError) as info:
        scan_requests(path)
    assert needle in str(info.value)


def test_resume_keeps_successes_and_drops_failures_and_a_cut_line(tmp_path):
    out = write(
        tmp_path / "out.jsonl",
        result_line("id_0")
        + result_line("id_1", 500)
        + result_line("id_2")
        + result_line("id_2")  # a duplicate success is dropped too
        + '{"id": "batch_req_x", "custom_id": "id_3", "resp',  # cut short by a crash
    )
    done = load_answered(out, {"id_0", "id_1", "id_2", "id_3"})
    assert done == {"id_0", "id_2"}
    assert [line["custom_id"] for line in read_jsonl(out)] == ["id_0", "id_2"]


def test_resume_counts_as_answered_what_answers_calls_a_success(tmp_path):
    """A 200 whose body is not an answer (a server's odd reply) is asked again on resume, as
    `answers.is_success` says everywhere else (it used to count as answered)."""
    odd = json.loads(result_line("id_1"))
    odd["response"]["body"] = "upstream timeout"
    out = write(tmp_path / "out.jsonl", result_line("id_0") + json.dumps(odd) + "\n")
    assert load_answered(out, {"id_0", "id_1"}) == {"id_0"}


def test_resume_can_keep_failures(tmp_path):
    out = write(tmp_path / "out.jsonl", result_line("id_0") + result_line("id_1", 400))
    before = out.read_bytes()
    assert load_answered(out, {"id_0", "id_1"}, retry_failed=False) == {"id_0", "id_1"}
    assert out.read_bytes() == before  # nothing to drop: the file is not rewritten


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    out = write(tmp_path / "out.jsonl", result_line("id_0") + result_line("id_1").rstrip("\n"))
    assert load_answered(out, {"id_0", "id_1"}) == {"id_0", "id_1"}
    assert out.read_text().endswith("\n")


def test_an_output_file_of_another_request_file_is_refused(tmp_path):
    out = write(tmp_path / "out.jsonl", result_line("id_0") + result_line("other_7"))
    before = out.read_bytes()
    with pytest.raises(BatchError, match="'other_7', which is not in the request file"):
        load_answered(out, {"id_0"})
    assert out.read_bytes() == before
    junk = write(tmp_path / "junk.jsonl", "hello\n" + result_line("id_0"))
    with pytest.raises(BatchError, match=r"junk\.jsonl:1 is not a results line"):
        load_answered(junk, {"id_0"})


def test_cli_refuses_a_broken_file_cleanly(tmp_path, capsys):
    path = write_requests(tmp_path / "r.jsonl", [request(0), request(0)])
    code, _, err = run_cli(capsys, "utils", "chat-complete", path, "--base-url", "http://x/v1")
    assert_clean_error(code, err, "repeats line 1")
    assert not default_output_path(path).exists()


def test_cli_refuses_writing_over_the_request_file(tmp_path, capsys):
    path = write_requests(tmp_path / "r.jsonl", [request(0)])
    code, _, err = run_cli(capsys, "utils", "chat-complete", path, "-o", path)
    assert_clean_error(code, err, "is the request file this command reads")


# --- against the fake server ------------------------------------------------------------------

CHAT_PATH = r"/v1/chat/completions$"


def chat_calls(fake: Any) -> list[int]:
    """Statuses the fake answered on the chat endpoint, in order (0 = dropped connection)."""
    return [status for method, path, status in fake.log if path == "/v1/chat/completions"]


def by_id(path: Path) -> dict[str, dict[str, Any]]:
    lines = read_jsonl(path)
    ids = [line["custom_id"] for line in lines]
    assert len(ids) == len(set(ids)), "a custom_id appears twice"
    return {line["custom_id"]: line for line in lines}


def test_answers_are_written_in_the_batch_output_format(fake_api, tmp_path, capsys):
    path = write_requests(tmp_path / "batch.jsonl", [request(i) for i in range(5)])
    code, out, _ = run_cli(capsys, "utils", "chat-complete", path, "-q")
    assert code == 0
    result = tmp_path / "batch.responses.jsonl"
    assert f"Answers written to: {result}" in out
    assert "5 of 5 requests answered" in out
    lines = by_id(result)
    assert sorted(lines) == [f"id_{i}" for i in range(5)]
    for i in range(5):
        line = lines[f"id_{i}"]
        assert list(line) == ["id", "custom_id", "response", "error"]
        assert line["id"].startswith("batch_req_") and len(line["id"]) == len("batch_req_") + 32
        assert line["error"] is None
        response = line["response"]
        assert list(response) == ["status_code", "request_id", "body"]
        assert response["status_code"] == 200
        assert response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == f"Fake answer: question {i}"


def test_the_line_layout_matches_the_real_batch_output(fake_api, tmp_path, capsys):
    seed = need_seed()
    real = json.loads((seed / "batch-responses.openai.jsonl").read_text().splitlines()[0])
    path = write_requests(tmp_path / "r.jsonl", [request(0)])
    assert run_cli(capsys, "utils", "chat-complete", path, "-q")[0] == 0
    ours = read_jsonl(default_output_path(path))[0]
    assert list(ours) == list(real)
    assert list(ours["response"]) == list(real["response"])
    assert type(ours["response"]["request_id"]) is type(real["response"]["request_id"])


def test_embeddings_and_responses_requests(fake_api, tmp_path):
    lines = [
        {
            "custom_id": "e1",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "hello", "dimensions": 8},
        },
        {
            "custom_id": "r1",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-4o-mini", "input": "Say hi"},
        },
    ]
    path = write_requests(tmp_path / "mixed.jsonl", lines)
    summary = run_requests(path, progress=False)
    assert (summary.succeeded, summary.failed, summary.complete) == (2, 0, True)
    lines_by_id = by_id(summary.output)
    embedding = lines_by_id["e1"]["response"]["body"]
    assert embedding["object"] == "list" and len(embedding["data"][0]["embedding"]) == 8
    assert lines_by_id["r1"]["response"]["body"]["object"] == "response"


def test_rate_limits_are_retried_honouring_retry_after(fake_api, tmp_path):
    fake_api.inject("POST", CHAT_PATH, 429, times=3, retry_after_ms=5)
    fake_api.inject("POST", CHAT_PATH, 503, times=1, retry_after="0")
    fake_api.inject("POST", CHAT_PATH, 502, times=1, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    fake_api.inject("POST", CHAT_PATH, 500, times=1, retry_after="soon")
    fake_api.inject_disconnect("POST", CHAT_PATH, times=1)
    path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(4)])
    summary = run_requests(path, concurrency=2, backoff_base=0.001, progress=False)
    assert (summary.succeeded, summary.failed) == (4, 0)
    statuses = chat_calls(fake_api)
    assert sorted(statuses) == [0, 200, 200, 200, 200, 429, 429, 429, 500, 502, 503]
    assert all(line["response"]["status_code"] == 200 for line in by_id(summary.output).values())


def test_a_request_still_failing_is_written_like_the_error_file(fake_api, tmp_path, capsys):
    fake_api.inject("POST", CHAT_PATH, 500, times=None)
    path = write_requests(tmp_path / "r.jsonl", [request(0), request(1)])
    summary = run_requests(path, max_retries=2, backoff_base=0.001, progress=False)
    assert (summary.succeeded, summary.failed, summary.complete) == (0, 2, False)
    assert chat_calls(fake_api) == [500] * 6  # 1 try + 2 retries each
    for line in by_id(summary.output).values():
        assert line["error"] is None
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    assert summary.failures["id_0"].startswith("HTTP 500")

    # Re-running retries only the failures, and each custom_id ends up on one line.
    fake_api.clear_faults()
    code, out, err = run_cli(capsys, "utils", "chat-complete", path, "-q", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["succeeded"] == 2 and report["already_done"] == 0 and report["complete"]
    lines = by_id(summary.output)
    assert [lines[k]["response"]["status_code"] for k in ("id_0", "id_1")] == [200, 200]


def test_client_errors_are_not_retried(fake_api, tmp_path, capsys):
    def picky(line: dict[str, Any]) -> tuple[int, Any]:
        if "forbidden" in line["body"]["messages"][0]["content"]:
            return 400, error_body(400, "Invalid value for 'messages'.", param="messages")
        return fake_api.default_responder(line)

    fake_api.responder = picky
    path = write_requests(tmp_path / "r.jsonl", [request(0), request(1, "forbidden"), request(2)])
    code, out, err = run_cli(capsys, "utils", "chat-complete", path)
    assert code == 4
    assert "2 of 3 requests answered" in out and "1 failed" in out
    assert "'id_1': HTTP 400: \"Invalid value for 'messages'.\"" in err
    assert sorted(chat_calls(fake_api)) == [200, 200, 400]
    line = by_id(default_output_path(path))["id_1"]
    assert line["response"]["status_code"] == 400
    assert line["response"]["body"]["error"]["param"] == "messages"


def test_a_rejected_key_stops_the_run(fake_api, tmp_path, capsys):
    fake_api.inject("POST", CHAT_PATH, 401, times=None)
    path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(20)])
    code, out, err = run_cli(capsys, "utils", "chat-complete", path, "-q", "-c", "2")
    assert code == 3
    assert_clean_error(code, err, "OPENAI_API_KEY was rejected (401)")
    assert fake_api.api_key not in out + err
    assert len(chat_calls(fake_api)) < 20  # stopped early, not one 401 per request
    assert not default_output_path(path).exists()


def test_exhausted_quota_stops_the_run(fake_api, tmp_path, capsys):
    quota = error_body(429, "You exceeded your current quota.", code="insufficient_quota")
    fake_api.inject("POST", CHAT_PATH, 429, times=None, body=quota)
    path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(10)])
    code, _, err = run_cli(capsys, "utils", "chat-complete", path, "-q", "-c", "1")
    assert_clean_error(code, err, "insufficient quota")
    assert chat_calls(fake_api) == [429]


def test_an_unreachable_server_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = write_requests(tmp_path / "r.jsonl", [request(0)])
    code, _, err = run_cli(
        capsys,
        "utils",
        "chat-complete",
        path,
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--max-retries",
        "0",
    )
    assert_clean_error(code, err, "nothing answers at", f"127.0.0.1:{port}")
    assert not default_output_path(path).exists()


def test_resume_after_a_crash_calls_only_what_is_missing(fake_api, tmp_path):
    path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(6)])
    out = tmp_path / "answers.jsonl"
    assert run_requests(path, out, progress=False).succeeded == 6
    lines = out.read_text().splitlines(keepends=True)
    # As if the process died while writing: 3 whole lines and half of the fourth.
    out.write_text("".join(lines[:3]) + lines[3][:40])
    calls_before = len(chat_calls(fake_api))

    summary = run_requests(path, out, progress=False)
    assert (summary.already_done, summary.succeeded) == (3, 3)
    assert len(chat_calls(fake_api)) - calls_before == 3
    assert sorted(by_id(out)) == [f"id_{i}" for i in range(6)]
    # a complete run has nothing left to do and changes nothing
    before = out.read_bytes()
    assert run_requests(path, out, progress=False).already_done == 6
    assert out.read_bytes() == before
    assert len(chat_calls(fake_api)) - calls_before == 3


def test_interrupting_keeps_whole_lines_and_resumes(fake_api, tmp_path):
    path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(12)])
    seen: list[str] = []

    def stop_after_three(custom_id: str, ok: bool) -> None:
        seen.append(custom_id)
        if len(seen) == 3:
            raise KeyboardInterrupt

    summary = run_requests(path, concurrency=2, progress=False, on_result=stop_after_three)
    assert summary.interrupted and not summary.complete
    assert 3 <= summary.succeeded < 12
    assert summary.not_run == 12 - summary.succeeded
    written = by_id(summary.output)  # whole lines only, each custom_id once
    assert len(written) == summary.succeeded

    summary = run_requests(path, concurrency=2, progress=False)
    assert summary.complete and summary.succeeded == 12 - len(written)
    assert sorted(by_id(summary.output)) == sorted(f"id_{i}" for i in range(12))


class LocalServer:
    """A minimal OpenAI-compatible server without auth, like a local vLLM or Ollama.

    It answers chat completions in parallel threads, and the first `gate` requests wait for
    each other at a barrier: that proves they really were in flight at the same time.
    """

    def __init__(self, gate: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.barrier = threading.Barrier(gate, timeout=20)
        self.lock = threading.Lock()
        self.now = self.max = 0
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.auth.append(self.headers.get("Authorization"))
                    server.now += 1
                    server.max = max(server.max, server.now)
                try:
                    server.barrier.wait()
                except threading.BrokenBarrierError:
                    pass
                finally:
                    with server.lock:
                        server.now -= 1
                text = body["messages"][-1]["content"]
                data = json.dumps(chat_completion_body(body["model"], f"local: {text}")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_local_server_without_key_and_concurrency(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    server = LocalServer(gate=3)
    try:
        path = write_requests(tmp_path / "r.jsonl", [request(i) for i in range(9)])
        code, out, err = run_cli(
            capsys, "utils", "chat-complete", path, "--base-url", server.base_url, "-c", "3", "-q"
        )
        first_max, first_broken = server.max, server.barrier.broken
        # The same server named by OPENAI_BASE_URL instead of --base-url: no key needed either.
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        again = run_cli(capsys, "utils", "chat-complete", path, "-o", tmp_path / "2.jsonl", "-q")
    finally:
        server.close()
    assert again[0] == 0, again[2]
    assert len(read_jsonl(tmp_path / "2.jsonl")) == 9
    assert code == 0, err
    assert "9 of 9 requests answered" in out
    assert first_max == 3 and not first_broken  # 3 at once, never more
    assert len(server.auth) == 18
    lines = by_id(default_output_path(path))
    assert lines["id_4"]["response"]["body"]["choices"][0]["message"]["content"] == (
        "local: question 4"
    )
    assert lines["id_4"]["response"]["request_id"] is None  # this server sends no x-request-id


def test_model_override_and_another_key_variable(fake_api, tmp_path, capsys, monkeypatch):
    models: list[str] = []

    def record(line: dict[str, Any]) -> tuple[int, Any]:
        models.append(line["body"]["model"])
        return fake_api.default_responder(line)

    fake_api.responder = record
    monkeypatch.setenv("LOCAL_LLM_KEY", fake_api.api_key)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    path = write_requests(tmp_path / "r.jsonl", [request(0), request(1)])
    args = ["utils", "chat-complete", path, "-q", "--base-url", fake_api.base_url]
    code, _, err = run_cli(capsys, *args, "--api-key-env", "LOCAL_LLM_KEY", "--model", "llama3")
    assert code == 0, err
    assert models == ["llama3", "llama3"]
    assert {
        line["response"]["body"]["model"] for line in read_jsonl(default_output_path(path))
    } == {"llama3"}

    code, _, err = run_cli(
        capsys, *args, "--api-key-env", "NOT_SET_ANYWHERE", "-o", tmp_path / "x.jsonl"
    )
    assert_clean_error(code, err, "no API key: NOT_SET_ANYWHERE is not set")


def test_spam_template_from_the_cli_parses_with_the_python_api(fake_api, tmp_path, capsys):
    """make-batch-file on the bundled spam template, chat-complete, then BatchJob parses."""
    requests_file = tmp_path / "spam.jsonl"
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        ROOT / "templates" / "spam_classifier.json",
        ROOT / "sample_data" / "emails.csv",
        "-o",
        requests_file,
        "-q",
    )
    assert code == 0, err
    rows = len(read_jsonl(requests_file))
    code, _, err = run_cli(capsys, "utils", "chat-complete", requests_file, "-q")
    assert code == 0, err

    class SinglePrediction(BaseModel):
        class_label: Literal["spam", "not_spam"]

    parsed, failed = BatchJob.parse_by_custom_id(
        default_output_path(requests_file), SinglePrediction
    )
    assert failed == {}
    assert sorted(parsed) == sorted(line["custom_id"] for line in read_jsonl(requests_file))
    assert len(parsed) == rows


def test_seed_workflow_joins_answers_to_their_rows(fake_api, tmp_path, capsys):
    """make-batch-file on the slides' fixtures, chat-complete --csv: each answer on its row."""
    seed = need_seed()

    def persona_echo(line: dict[str, Any]) -> tuple[int, Any]:
        system = line["body"]["messages"][0]["content"][0]["text"]
        return 200, chat_completion_body(line["body"]["model"], f"I am: {system}")

    fake_api.responder = persona_echo
    requests_file = tmp_path / "batch-requests.jsonl"
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        seed / "config.json",
        seed / "simulated_survey_personas.csv",
        "-o",
        requests_file,
        "-q",
    )
    assert code == 0, err
    fake_api.inject("POST", CHAT_PATH, 429, times=5, retry_after_ms=1)
    table = tmp_path / "results.csv"
    code, out, err = run_cli(
        capsys, "utils", "chat-complete", requests_file, "--csv", table, "-c", "8", "-q"
    )
    assert code == 0, err
    assert f"Table written to: {table} (100 rows: 100 ok, 0 error, 0 missing)" in out

    import csv

    with open(seed / "simulated_survey_personas.csv", newline="", encoding="utf-8") as fh:
        personas = list(csv.DictReader(fh))
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(personas) == 100
    for i, (row, persona) in enumerate(zip(rows, personas, strict=True)):
        assert row["custom_id"] == f"id_{i}"
        assert row["status"] == "ok"
        description = next(v for k, v in persona.items() if k.strip() == "Description").strip()
        assert description in row["content"], (i, row["content"])


def test_requests_from_the_python_api_join_a_given_table(fake_api, tmp_path, capsys):
    class Verdict(BaseModel):
        class_label: Literal["spam", "not_spam"]
        reason: str

    data = write(tmp_path / "emails.csv", "subject,body\nWin,Money now\nLunch,At noon?\n")
    messages = [[{"role": "user", "content": "Money now"}], [{"role": "user", "content": "Noon?"}]]
    requests_file = tmp_path / "r.jsonl"
    BatchJob.create_from_messages(messages, "gpt-4o-mini", Verdict, file_path=requests_file)
    table = tmp_path / "out.csv"
    code, out, err = run_cli(
        capsys, "utils", "chat-complete", requests_file, "--csv", table, "--data", data, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["csv"]["rows"] == 2 and report["csv"]["ok"] == 2
    import csv

    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["subject"], r["custom_id"]) for r in rows] == [("Win", "id_0"), ("Lunch", "id_1")]
    assert all(r["class_label"] in ("spam", "not_spam") and r["reason"] for r in rows)


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(fake_api, tmp_path, capsys):
    path = write_requests(tmp_path / "batch.jsonl", [request(i) for i in range(3)])
    with output_lock(tmp_path / "batch.responses.jsonl"):  # another run holds the output
        code, _, err = run_cli(capsys, "utils", "chat-complete", path, "-q")
        assert_clean_error(code, err, "another chat-complete is writing")
        assert fake_api.log == []
    code, _, _ = run_cli(capsys, "utils", "chat-complete", path, "-q")
    assert code == 0
    assert len(by_id(tmp_path / "batch.responses.jsonl")) == 3


def test_no_lock_file_is_left_beside_the_output(fake_api, tmp_path, capsys, monkeypatch):
    """Locks live under $OPENAI_BATCH_HOME: the run's folder holds only the user's files."""
    monkeypatch.chdir(tmp_path)
    write_requests(tmp_path / "batch.jsonl", [request(i) for i in range(2)])
    code, _, err = run_cli(capsys, "utils", "chat-complete", "batch.jsonl", "-q")
    assert code == 0, err
    # refused before any call (no key in that variable): still nothing written here
    args = ["utils", "chat-complete", "batch.jsonl", "-o", "x.jsonl", "--api-key-env", "NO_KEY"]
    assert_clean_error(*run_cli(capsys, *args)[::2], "no API key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.jsonl", "batch.responses.jsonl"]
