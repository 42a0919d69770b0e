"""`utils validate` against OpenAI's published API: each disagreement issue 11 found, and what
each model can do (the capability table beside the prices)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel

from helpers import assert_clean_error, cli_json, read_jsonl, run_cli, write
from openai_batch import BatchJob
from openai_batch.errors import BatchError
from openai_batch.estimate import prices
from openai_batch.validate import capabilities
from openai_batch.validate import check as validate

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


def errors(body: dict, url: str = CHAT) -> list[tuple[str, str]]:
    line = {"custom_id": "a", "method": "POST", "url": url, "body": body}
    return [
        (p.path, p.message) for p in validate.check_line(line, 1) if p.severity == validate.ERROR
    ]


def warnings_of(body: dict, url: str = CHAT) -> list[tuple[str, str]]:
    line = {"custom_id": "a", "method": "POST", "url": url, "body": body}
    return [
        (p.path, p.message) for p in validate.check_line(line, 1) if p.severity == validate.WARNING
    ]


def chat(**fields) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}


def responses(**fields) -> dict:
    return {"model": "gpt-4o-mini", "input": "hi", **fields}


def image_chat(url: str) -> dict:
    part = {"type": "image_url", "image_url": {"url": url}}
    return chat(messages=[{"role": "user", "content": [{"type": "text", "text": "?"}, part]}])


def image_responses(url: str, **part) -> dict:
    content = [
        {"type": "input_text", "text": "?"},
        {"type": "input_image", "image_url": url, **part},
    ]
    return responses(input=[{"role": "user", "content": content}])


# -- refused, though the API accepts them ---------------------------------------------------------


def test_an_upper_case_url_scheme_is_a_url():
    assert errors(image_chat("HTTPS://example.com/a.png")) == []
    assert errors(image_responses("HTTPS://example.com/a.png", detail="auto"), RESPONSES) == []
    assert errors(image_chat("Data:image/png;base64,iVBORw0KGgo=")) == []


def test_make_batch_file_passes_an_upper_case_url_through_and_it_validates(capsys, tmp_path):
    template = write(tmp_path / "t.json", json.dumps(image_chat("<<Image>>")))
    data = write(tmp_path / "d.csv", "Image\nHTTPS://example.com/a.png\n")
    out = tmp_path / "r.jsonl"
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", out)
    assert code == 0, err
    part = read_jsonl(out)[0]["body"]["messages"][0]["content"][1]
    assert part["image_url"]["url"] == "HTTPS://example.com/a.png"
    assert run_cli(capsys, "utils", "validate", out)[0] == 0


def test_completions_max_tokens_zero_is_the_specs_minimum():
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "a b", "max_tokens": 0, "echo": True}
    assert errors({**body, "logprobs": 0}, "/v1/completions") == []
    assert errors({**body, "max_tokens": -1}, "/v1/completions") == [
        ("body.max_tokens", "must be at least 0, got -1")
    ]


def test_an_input_image_without_detail_passes():
    assert errors(image_responses("https://example.com/a.png"), RESPONSES) == []


def test_a_function_tool_without_strict_passes():
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    assert errors(responses(tools=[tool]), RESPONSES) == []


# -- accepted, though the API refuses them ------------------------------------------------------


def emb(**fields) -> dict:
    return {"model": "text-embedding-3-small", "input": "a", **fields}


def comp(**fields) -> dict:
    return {"model": "gpt-3.5-turbo-instruct", "prompt": "a", **fields}


AT_LEAST = "must be at least"
MAX_CHARS = "at most 64 characters, got 65"


@pytest.mark.parametrize(
    ("url", "body", "path", "message"),
    [
        (RESPONSES, responses(max_output_tokens=15), "max_output_tokens", f"{AT_LEAST} 16, got 15"),
        (CHAT, chat(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4 sequences, got 5"),
        (RESPONSES, responses(safety_identifier="u" * 65), "safety_identifier", MAX_CHARS),
        (CHAT, chat(safety_identifier="u" * 65), "safety_identifier", MAX_CHARS),
        ("/v1/embeddings", emb(dimensions=0), "dimensions", f"{AT_LEAST} 1, got 0"),
        ("/v1/embeddings", emb(dimensions=-3), "dimensions", f"{AT_LEAST} 1, got -3"),
        ("/v1/completions", comp(logprobs=6), "logprobs", "must be from 0 to 5, got 6"),
        ("/v1/completions", comp(best_of=21), "best_of", "must be from 0 to 20, got 21"),
        (CHAT, chat(model=""), "model", "cannot be empty: name a model"),
        (RESPONSES, responses(model=" "), "model", "cannot be empty: name a model"),
        (CHAT, chat(n=0), "n", "must be from 1 to 128, got 0"),
        (CHAT, chat(temperature=2.5), "temperature", "must be from 0 to 2, got 2.5"),
    ],
)
def test_what_the_spec_refuses_is_an_error_naming_path_and_range(url, body, path, message):
    assert (f"body.{path}", message) in errors(body, url)


@pytest.mark.parametrize("role", ["user", "developer", "system"])
def test_an_empty_responses_message_content_is_an_error(role):
    body = responses(input=[{"role": role, "content": []}])
    assert errors(body, RESPONSES) == [
        ("body.input[0].content", "cannot be empty: give at least one part")
    ]


def test_an_empty_chat_message_content_is_an_error():
    assert errors(chat(messages=[{"role": "user", "content": []}])) == [
        ("body.messages[0].content", "at least 1 part, got 0")
    ]


def test_an_unknown_enum_value_names_the_allowed_ones():
    body = image_chat("https://example.com/a.png")
    body["messages"][0]["content"][1]["image_url"]["detail"] = "huge"
    [(path, message)] = errors(body)
    assert path == "body.messages[0].content[1].image_url.detail"
    assert "'low'" in message and "'high'" in message


def test_chat_image_detail_original_passes_as_the_sdk_and_responses_take_it():
    body = image_chat("https://example.com/a.png")
    body["messages"][0]["content"][1]["image_url"]["detail"] = "original"
    assert errors(body) == []
    assert errors(image_responses("https://example.com/a.png", detail="original"), RESPONSES) == []


def test_the_command_says_it_with_line_and_path(capsys, tmp_path):
    line = {"custom_id": "a", "method": "POST", "url": CHAT, "body": chat(stop=list("abcde"))}
    path = write(tmp_path / "r.jsonl", json.dumps(line) + "\n")
    code, out, _ = run_cli(capsys, "utils", "validate", path)
    assert code == 1
    assert "error: line 1: body.stop: at most 4 sequences, got 5" in out


# -- issue 12: a list-form image_url gets the same words from validate and make-batch-file ------


def test_a_list_form_image_url_is_called_a_list_by_both(capsys, tmp_path):
    listed = {"type": "image_url", "image_url": [{"url": "https://example.com/a.png"}]}
    body = chat(messages=[{"role": "user", "content": [listed]}])
    [(path, message)] = errors(body)
    assert path == "body.messages[0].content[0].image_url"
    assert message.startswith("is a list, which the API rejects; it must be an object with a url")
    template = write(tmp_path / "t.json", json.dumps(body))
    data = write(tmp_path / "d.csv", "x\n1\n")
    code, _, err = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "o.jsonl")
    assert_clean_error(
        code, err, "image_url is a list, which the API rejects; it must be an object"
    )
    string_form = {"type": "image_url", "image_url": "https://example.com/a.png"}
    [(_, message)] = errors(chat(messages=[{"role": "user", "content": [string_form]}]))
    assert message.startswith("is a string, which the API rejects")


# -- what each model can do ---------------------------------------------------------------------

STRICT_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "Label",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
            "additionalProperties": False,
        },
    },
}


def test_structured_outputs_on_a_model_without_them_is_an_error_with_the_fix():
    [(path, message)] = errors(chat(model="gpt-3.5-turbo", response_format=STRICT_SCHEMA))
    assert path == "body.response_format.type"
    assert "gpt-3.5-turbo does not support structured outputs" in message
    assert "gpt-4o-mini" in message and "json_object" in message
    assert errors(chat(model="gpt-3.5-turbo", response_format={"type": "json_object"})) == []
    assert errors(chat(model="gpt-4o-2024-08-06", response_format=STRICT_SCHEMA)) == []
    assert errors(chat(model="gpt-4o-2024-05-13", response_format=STRICT_SCHEMA)) != []
    fmt = {"format": {"type": "json_schema", **STRICT_SCHEMA["json_schema"]}}
    [(path, _)] = errors(responses(model="gpt-4-turbo", text=fmt), RESPONSES)
    assert path == "body.text.format.type"


def test_json_mode_on_a_model_without_it():
    [(_, message)] = errors(chat(model="gpt-4-0613", response_format={"type": "json_object"}))
    assert "does not support JSON mode" in message


def test_an_unknown_model_is_a_warning_not_an_error(capsys, tmp_path):
    body = chat(model="gpt-99-ultra")
    assert errors(body) == []
    [(path, message)] = warnings_of(body)
    assert path == "body.model" and "unknown model 'gpt-99-ultra'" in message
    assert capabilities.CAPABILITIES_AS_OF in message
    line = {"custom_id": "a", "method": "POST", "url": CHAT, "body": body}
    code, report = cli_json(
        capsys, "utils", "validate", write(tmp_path / "r.jsonl", json.dumps(line) + "\n")
    )
    assert code == 0 and report["warnings"] == 1


def test_image_input_on_a_text_only_model():
    body = image_chat("https://example.com/a.png")
    assert errors(body) == []
    [(path, message)] = errors({**body, "model": "gpt-3.5-turbo"})
    assert path == "body.messages[0].content[1]"
    assert "does not accept image input" in message
    assert errors(image_responses("https://example.com/a.png") | {"model": "o3-mini"}, RESPONSES)


def test_a_model_on_an_endpoint_it_does_not_serve():
    [(path, message)] = errors(chat(model="text-embedding-3-small"))
    assert path == "body.model" and "does not serve /v1/chat/completions" in message
    [(_, message)] = errors({"model": "gpt-4o-mini", "input": "a"}, "/v1/embeddings")
    assert "text-embedding-3-small" in message
    [(_, message)] = errors(chat(model="gpt-realtime"))
    assert "not available in the Batch API" in message


def test_output_token_limits_and_reasoning_parameters():
    [(path, message)] = errors(chat(max_completion_tokens=20_000))
    assert path == "body.max_completion_tokens"
    assert message == "gpt-4o-mini writes at most 16,384 output tokens, got 20,000"
    assert errors(chat(max_completion_tokens=16_384)) == []
    [(path, message)] = errors(chat(reasoning_effort="low"))
    assert path == "body.reasoning_effort" and "not a reasoning model" in message
    assert errors(chat(model="o4-mini", reasoning_effort="low", max_completion_tokens=500)) == []
    [(path, message)] = errors(chat(model="o4-mini", max_tokens=500))
    assert path == "body.max_tokens" and "use max_completion_tokens" in message
    [(path, _)] = errors(chat(model="o3-mini", temperature=0.2))
    assert path == "body.temperature"
    assert errors(responses(reasoning={"effort": "low"}), RESPONSES)[0][0] == "body.reasoning"
    [(path, _)] = errors(
        {"model": "text-embedding-ada-002", "input": "a", "dimensions": 256}, "/v1/embeddings"
    )
    assert path == "body.dimensions"


def test_on_another_service_what_the_table_says_is_a_warning(capsys, tmp_path):
    # Azure's model is a deployment name: "gpt-35-turbo" may run any model the user deployed.
    body = chat(model="gpt-3.5-turbo", response_format=STRICT_SCHEMA)
    line = {"custom_id": "a", "method": "POST", "url": CHAT, "body": body}
    path = write(tmp_path / "r.jsonl", json.dumps(line) + "\n")
    assert run_cli(capsys, "utils", "validate", path)[0] == 1
    code, report = cli_json(capsys, "utils", "validate", path, "--service", "azure")
    assert code == 0 and report["warnings"] == 1
    [problem] = report["files"][0]["problems"]
    assert "does not support structured outputs" in problem["message"]
    assert "on Azure OpenAI" in problem["message"]


def test_output_ceilings_moved_beside_the_capabilities_but_estimates_keep_them():
    assert prices.max_output_tokens("gpt-4o-mini-2024-07-18") == 16_384
    assert prices.max_output_tokens("ft:gpt-4.1-mini:org::x") == 32_768
    assert prices.max_output_tokens("nobody-knows") is None


class Label(BaseModel):
    label: str


def test_batchjob_says_the_same_at_create_from_messages(tmp_path: Path):
    out = tmp_path / "r.jsonl"
    with pytest.raises(BatchError, match=r"gpt-3\.5-turbo does not support structured outputs"):
        BatchJob.create_from_messages(
            [[{"role": "user", "content": "hi"}]], "gpt-3.5-turbo", Label, file_path=out
        )
    assert not out.exists()
    with pytest.warns(UserWarning, match="unknown model 'my-model'"):
        BatchJob.create_from_messages(
            [[{"role": "user", "content": "hi"}]], "my-model", file_path=out
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            BatchJob.create_from_messages(
                [[{"role": "user", "content": "hi"}]], "gpt-4o-mini", Label, file_path=out
            )
            == 1
        )
