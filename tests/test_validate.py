"""`utils validate`: what the Batch API would reject, found before upload, with line and path."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from helpers import assert_clean_error, need_seed, run_cli
from openai_batch.requestfile import limits as requestfile_limits
from openai_batch.validate import check as validate
from openai_batch.validate.check import Limits, Problem, check_line, validate_file

CHAT = "/v1/chat/completions"


def good_line(custom_id: str = "id_0", model: str = "gpt-4o") -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {
            "model": model,
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "You are a persona."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Which image do you like?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
            ],
            "max_tokens": 100,
            "temperature": 1,
            "response_format": {"type": "text"},
        },
    }


def write_lines(path: Path, objs: list) -> Path:
    path.write_text(
        "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs),
        encoding="utf-8",
    )
    return path


def good_file(path: Path, n: int = 5) -> Path:
    return write_lines(path, [good_line(f"id_{i}") for i in range(n)])


def problems_of(obj: dict) -> list[tuple[str, str, str]]:
    return [(p.path, p.severity, p.message) for p in check_line(obj, 1)]


# -- whole files through the CLI ------------------------------------------------------------------


def test_seed_request_file_is_valid(capsys):
    seed = need_seed()
    code, out, err = run_cli(capsys, "utils", "validate", seed / "batch-requests.jsonl")
    assert code == 0, out + err
    assert "100 requests" in out and "gpt-4o" in out and "ok" in out


def test_a_good_file_passes_and_json_says_so(capsys, tmp_path):
    path = good_file(tmp_path / "good.jsonl")
    code, out, _ = run_cli(capsys, "utils", "validate", path, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["ok"] is True and result["errors"] == 0
    file = result["files"][0]
    assert file["requests"] == 5 and file["model"] == "gpt-4o" and file["url"] == CHAT


def test_repeated_errors_are_grouped_with_line_numbers_and_field_path(capsys, tmp_path):
    lines = [good_line(f"id_{i}") for i in range(50)]
    bad_rows = [3, 7, 9, 12, 20, 30]
    for i in bad_rows:
        part = lines[i]["body"]["messages"][1]["content"][1]
        part["image_url"] = part["image_url"]["url"]  # a plain string: the API rejects it
    path = write_lines(tmp_path / "r.jsonl", lines)
    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 1
    expected = "lines 4, 8, 10 and 3 more: body.messages[1].content[1].image_url:"
    grouped = [row for row in out.splitlines() if expected in row]
    assert len(grouped) == 1, out
    assert '"url"' in grouped[0] and grouped[0].strip().startswith("error")

    code, out, _ = run_cli(capsys, "utils", "validate", path, "--json")
    result = json.loads(out)
    assert result["ok"] is False and result["errors"] == len(bad_rows)
    (group,) = result["files"][0]["problems"]
    assert group["lines"] == [i + 1 for i in bad_rows]
    assert group["path"] == "body.messages[1].content[1].image_url"


def test_file_level_rules(capsys, tmp_path):
    lines: list = [good_line(f"id_{i}") for i in range(6)]
    lines[2]["custom_id"] = "id_0"  # duplicate
    lines[3]["body"]["model"] = "gpt-4o-mini"  # a second model
    lines[4]["url"] = "/v1/embeddings"  # a second url (and a body that does not fit it)
    lines.insert(5, "{not json")
    path = write_lines(tmp_path / "r.jsonl", lines)
    report = validate_file(path)
    found = {(p.line, p.path) for p in report.problems if p.severity == "error"}
    assert (3, "custom_id") in found
    assert (4, "body.model") in found
    assert (5, "url") in found
    assert (6, "") in found  # not JSON
    assert report.model == "gpt-4o" and report.url == CHAT
    messages = " ".join(p.message for p in report.problems)
    for needle in ("first on line 1", "one model", "not valid JSON"):
        assert needle in messages

    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 1 and "duplicate custom_id 'id_0'" in out


def test_request_and_size_limits(tmp_path):
    path = good_file(tmp_path / "r.jsonl", n=6)
    report = validate_file(path, Limits(requests=5))
    (problem,) = report.problems
    assert problem.line == 6 and "at most 5" in problem.message

    report = validate_file(path, Limits(file_bytes=1000))
    assert any("MB" in p.message and "at most" in p.message for p in report.problems)

    assert validate_file(path).errors == 0
    assert Limits() == requestfile_limits.OPENAI


def test_embedding_inputs_are_limited_per_batch(tmp_path):
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": ["a", "b", "c"]},
        }
        for i in range(4)
    ]
    path = write_lines(tmp_path / "e.jsonl", lines)
    assert validate_file(path).embedding_inputs == 12
    report = validate_file(path, Limits(embedding_inputs=10))
    assert any("12 embedding inputs" in p.message for p in report.problems)


def test_warnings_alone_exit_zero(capsys, tmp_path):
    line = good_line()
    line["body"]["messages"][1]["content"][1]["image_url"]["detial"] = "low"  # typo, nested
    path = write_lines(tmp_path / "r.jsonl", [line])
    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 0
    assert "warning: line 1: body.messages[1].content[1].image_url.detial: unknown field" in out


def test_several_files_get_a_total(capsys, tmp_path):
    good = good_file(tmp_path / "a.jsonl")
    bad = write_lines(tmp_path / "b.jsonl", [good_line() | {"method": "GET"}])
    code, out, _ = run_cli(capsys, "utils", "validate", good, bad)
    assert code == 1
    assert "2 files: 1 error" in out


def test_encoding_problems(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(good_line()).encode() + b"\n")
    assert any("byte-order mark" in p.message for p in validate_file(path).problems)

    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(good_line()).encode() + b'\n{"custom_id": "caf\xe9"}\n')
    report = validate_file(path)
    assert any(p.line == 2 and "UTF-8" in p.message for p in report.problems)


def test_a_line_that_is_json_null_is_an_error(tmp_path):
    """`null` is JSON but not a request: it used to be skipped without a word (and uncounted)."""
    path = tmp_path / "null.jsonl"
    path.write_text(json.dumps(good_line()) + "\nnull\n")
    report = validate_file(path)
    assert report.requests == 2
    assert any(p.line == 2 and p.severity == "error" for p in report.problems)


def test_empty_file_is_an_error(capsys, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 1 and "no requests" in out


def test_missing_file_is_a_clean_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "utils", "validate", tmp_path / "nope.jsonl")
    assert_clean_error(code, err, "not found")


# -- one line: the fields and the body against the SDK's request types ---------------------------


def test_check_line_accepts_a_good_line():
    assert check_line(good_line(), 1) == []


def test_the_four_fields():
    assert ("body", "error", "required field missing") in problems_of(
        {"custom_id": "a", "method": "POST", "url": CHAT}
    )
    assert any(p == "method" for p, _, _ in problems_of(good_line() | {"method": "GET"}))
    assert any(
        p == "url" and "not a Batch API endpoint" in m
        for p, _, m in problems_of(good_line() | {"url": "/v1/chat"})
    )
    assert any(p == "custom_id" for p, _, _ in problems_of(good_line() | {"custom_id": 7}))
    assert any(p == "body" for p, _, _ in problems_of(good_line() | {"body": "text"}))
    expected = [Problem(9, "", "a request line must be a JSON object, not an array")]
    assert check_line([1, 2], 9) == expected


def body_problems(mutate) -> list[tuple[str, str, str]]:
    line = copy.deepcopy(good_line())
    mutate(line["body"])
    return problems_of(line)


def test_unknown_top_level_body_field_is_an_error():
    found = body_problems(lambda b: b.update(max_tokenz=5))
    assert found == [("body.max_tokenz", "error", found[0][2])]
    assert "unknown field" in found[0][2]


def test_message_role_must_be_known():
    (found,) = body_problems(lambda b: b["messages"][1].update(role="bot"))
    assert found[0] == "body.messages[1].role"
    assert "'bot'" in found[2] and "'user'" in found[2]


def test_content_part_type_must_be_known():
    def mutate(b):
        b["messages"][1]["content"][0]["type"] = "txt"

    (found,) = body_problems(mutate)
    assert found[0] == "body.messages[1].content[0].type" and "'image_url'" in found[2]


def test_text_part_needs_text():
    (found,) = body_problems(lambda b: b["messages"][1]["content"][0].pop("text"))
    assert found == ("body.messages[1].content[0].text", "error", "required field missing")


def test_response_format_is_checked():
    (found,) = body_problems(lambda b: b.update(response_format={"type": "json"}))
    assert found[0] == "body.response_format.type"
    (found,) = body_problems(lambda b: b.update(response_format={"type": "json_schema"}))
    assert found == ("body.response_format.json_schema", "error", "required field missing")


def test_types_are_strict():
    (found,) = body_problems(lambda b: b.update(temperature="1"))
    assert found[0] == "body.temperature" and "number" in found[2]
    (found,) = body_problems(lambda b: b.update(stream=True))
    assert found[0] == "body.stream" and "stream" in found[2]


def test_messages_must_not_be_empty():
    assert ("body.messages", "error", "at least 1 message, got 0") in body_problems(
        lambda b: b.update(messages=[])
    )


def test_image_urls_must_be_reachable_by_the_api():
    def local(b):
        b["messages"][1]["content"][1]["image_url"]["url"] = "pictures/a.png"

    (found,) = body_problems(local)
    assert found[0] == "body.messages[1].content[1].image_url.url" and "data:" in found[2]

    def not_image(b):
        b["messages"][1]["content"][1]["image_url"]["url"] = "data:text/plain;base64,aGk="

    (found,) = body_problems(not_image)
    assert "PNG, JPEG, GIF or WebP" in found[2]

    def embedded(b):
        b["messages"][1]["content"][1]["image_url"]["url"] = "data:image/png;base64,iVBORw0KGgo="

    assert body_problems(embedded) == []


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": 5}, "body.input"),
        ("/v1/embeddings", {"model": "text-embedding-3-3", "input": ["a", ""]}, "body.input[1]"),
        ("/v1/embeddings", {"input": "a"}, "body.model"),
        ("/v1/completions", {"model": "davinci-002", "prompt": "x", "stream": True}, "body.stream"),
        ("/v1/moderations", {"input": "x", "foo": 1}, "body.foo"),
        (
            "/v1/responses",
            {"model": "gpt-4.1", "input": [{"role": "usr", "content": "hi"}]},
            "body.input[0].role",
        ),
        (
            "/v1/responses",
            {"model": "gpt-4.1", "input": "hi", "text": {"format": {"type": "json_schema"}}},
            "body.text.format.name",
        ),
    ],
)
def test_other_endpoints_are_checked_against_their_types(url, body, path):
    obj = {"custom_id": "a", "method": "POST", "url": url, "body": body}
    paths = [p for p, severity, _ in problems_of(obj) if severity == "error"]
    assert path in paths


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [[1, 2], [3]]}),
        ("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "x", "max_tokens": 5}),
        ("/v1/moderations", {"model": "omni-moderation-latest", "input": "x"}),
        (
            "/v1/responses",
            {
                "model": "gpt-4.1",
                "instructions": "Be brief.",
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}],
                "max_output_tokens": 50,
                "text": {"format": {"type": "json_schema", "name": "a", "schema": {}}},
            },
        ),
        (
            CHAT,
            {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True},
                },
            },
        ),
    ],
)
def test_valid_bodies_of_every_endpoint_pass(url, body):
    assert problems_of({"custom_id": "a", "method": "POST", "url": url, "body": body}) == []


def test_describe_lines():
    assert validate.describe_lines([4]) == "line 4"
    assert validate.describe_lines([4, 8]) == "lines 4 and 8"
    assert validate.describe_lines([3, 7, 9, 11, 12]) == "lines 3, 7, 9 and 2 more"
    assert validate.describe_lines([0]) == "file"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("max_tokens", -5, "at least 1"),
        ("temperature", 5, "from 0 to 2"),
        ("top_p", 1.5, "from 0 to 1"),
        ("n", 0, "from 1 to 128"),
        ("frequency_penalty", -3, "from -2 to 2"),
    ],
)
def test_values_out_of_the_apis_ranges_are_errors(field, value, needle):
    obj = good_line()
    obj["body"][field] = value
    problems = [p for p in check_line(obj, 1) if p.severity == validate.ERROR]
    assert [(p.path, needle in p.message) for p in problems] == [(f"body.{field}", True)]


def test_values_inside_the_ranges_pass():
    obj = good_line()
    obj["body"].update(temperature=0, top_p=1, n=1, max_tokens=1, logit_bias={"50256": -100})
    assert [p for p in check_line(obj, 1) if p.severity == validate.ERROR] == []
