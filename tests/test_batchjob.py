"""BatchJob: the seed tutorials' Python API (request lines, strict schemas, parsing, end to end)."""

from __future__ import annotations

import enum
import json
import warnings
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, RootModel

from fake_openai import chat_completion_body
from helpers import need_seed, read_jsonl
from openai_batch import BatchError, BatchJob
from openai_batch.batchjob import response_format_for, strict_json_schema
from openai_batch.requestfile.limits import FileLimits

EMAILS = [
    "Hello there I'm a Nigerian prince and I want to give you money",
    "Meeting with Thomas has been set at Friday next week",
    "Here are some weekly product updates from our marketing team",
]


class Labels(str, enum.Enum):  # noqa: UP042 - as in the tutorial
    """Enumeration for single-label text classification."""

    SPAM = "spam"
    NOT_SPAM = "not_spam"


class SinglePrediction(BaseModel):
    """
    Class for a single class label prediction.
    """

    class_label: Labels


class QuestionAnswerPair(BaseModel):
    """A question generated from a text chunk, its answer, and the reasoning."""

    chain_of_thought: str = Field(description="The reasoning process leading to the answer.")
    question: str = Field(description="The generated question from the text chunk.")
    answer: str = Field(description="The answer to the generated question.")


def spam_messages() -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": f"Classify the following email {e}"}] for e in EMAILS]


def walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a JSON value."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def assert_strict(schema: dict[str, Any]) -> None:
    """The rules of OpenAI's strict mode that a converted schema must obey everywhere."""
    for node in walk(schema):
        assert "default" not in node
        assert "allOf" not in node and "oneOf" not in node
        if "$ref" in node:
            assert set(node) == {"$ref"}, node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False, node
            assert node["required"] == list(node.get("properties", {})), node


# --- create_from_messages ---------------------------------------------------------------------


def test_spam_tutorial_with_gpt_35_turbo_is_refused_with_the_fix(tmp_path, monkeypatch):
    # The tutorial's model has no structured outputs: every request would fail a day later.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BatchError, match="does not support structured outputs") as caught:
        BatchJob.create_from_messages(
            messages_batch=spam_messages(),
            model="gpt-3.5-turbo",
            response_model=SinglePrediction,
        )
    assert "gpt-4o-mini" in str(caught.value) and "json_object" in str(caught.value)


def test_spam_tutorial_writes_lines_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The tutorial's code, unchanged but for the import and a model with structured outputs.
    with open("./test.jsonl", "w") as f:
        for line in BatchJob.create_from_messages(
            messages_batch=spam_messages(),
            model="gpt-4o-mini",
            response_model=SinglePrediction,
        ):
            f.write(json.dumps(line) + "\n")

    lines = read_jsonl(tmp_path / "test.jsonl")
    assert [line["custom_id"] for line in lines] == ["id_0", "id_1", "id_2"]
    for email, line in zip(EMAILS, lines, strict=True):
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        body = line["body"]
        assert body["model"] == "gpt-4o-mini"
        assert body["messages"] == [
            {"role": "system", "content": f"Classify the following email {email}"}
        ]
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "SinglePrediction"
        assert fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
        assert_strict(schema)
        assert schema["required"] == ["class_label"]
        assert schema["$defs"]["Labels"]["enum"] == ["spam", "not_spam"]


def test_qa_tutorial_writes_file_and_returns_count(tmp_path):
    passages = ["The Reserve Bank of Australia came into being on 14 January 1960.", "Paris."]

    def get_messages(rows):  # a generator, as in the tutorial
        for passage in rows:
            yield [
                {"role": "system", "content": "You generate search queries."},
                {"role": "user", "content": f"Here is the text chunk: {passage}"},
            ]

    out = tmp_path / "test.jsonl"
    count = BatchJob.create_from_messages(
        messages_batch=get_messages(passages),
        model="gpt-4o",
        file_path=str(out),
        response_model=QuestionAnswerPair,
        max_completion_tokens=300,
        temperature=0,
    )
    assert count == 2
    lines = read_jsonl(out)
    assert [line["custom_id"] for line in lines] == ["id_0", "id_1"]
    body = lines[1]["body"]
    assert body["messages"][1]["content"] == "Here is the text chunk: Paris."
    assert body["max_completion_tokens"] == 300 and body["temperature"] == 0
    schema = body["response_format"]["json_schema"]["schema"]
    assert_strict(schema)
    assert schema["required"] == ["chain_of_thought", "question", "answer"]
    assert schema["properties"]["answer"]["description"] == "The answer to the generated question."
    assert list(tmp_path.iterdir()) == [out]  # no temp file left beside it


def test_without_response_model_the_body_is_plain(tmp_path):
    lines = list(BatchJob.create_from_messages(spam_messages(), "gpt-4o-mini", seed=7))
    assert lines[0]["body"] == {
        "model": "gpt-4o-mini",
        "messages": spam_messages()[0],
        "seed": 7,
    }


def test_generator_lines_do_not_share_state():
    first, second = BatchJob.create_from_messages(
        spam_messages()[:2], "gpt-4o-mini", response_model=SinglePrediction
    )
    first["body"]["response_format"]["json_schema"]["name"] = "changed"
    assert second["body"]["response_format"]["json_schema"]["name"] == "SinglePrediction"


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        (["just a string"], "messages_batch[0] is not a list of messages"),
        ([[{"content": "no role"}]], "messages_batch[0][0] is not a message with a role"),
        ([[]], "messages_batch[0] is an empty list"),
        ("a string", "must be an iterable of message lists"),
    ],
)
def test_bad_messages_are_named(messages, needle, tmp_path):
    out = tmp_path / "x.jsonl"
    with pytest.raises(BatchError, match=None) as info:
        BatchJob.create_from_messages(messages, "gpt-4o", file_path=out)
    assert needle in str(info.value)
    assert not out.exists()


def test_argument_conflicts_are_refused():
    with pytest.raises(BatchError, match="either response_model or response_format"):
        BatchJob.create_from_messages(
            spam_messages(),
            "gpt-4o",
            response_model=SinglePrediction,
            response_format={"type": "json_object"},
        )
    with pytest.raises(BatchError, match="model must be a non-empty string"):
        BatchJob.create_from_messages(spam_messages(), "")
    with pytest.raises(BatchError, match="'messages' is set by create_from_messages"):
        BatchJob.create_from_messages(spam_messages(), "gpt-4o", messages=[])


def test_empty_batch_writes_no_file(tmp_path):
    out = tmp_path / "empty.jsonl"
    with pytest.raises(BatchError, match="empty"):
        BatchJob.create_from_messages([], "gpt-4o", file_path=out)
    assert list(tmp_path.iterdir()) == []


def test_a_file_over_the_request_limit_is_not_written(tmp_path):
    out = tmp_path / "big.jsonl"
    with pytest.raises(BatchError, match="over 2 requests and 200 MB, the Batch API's limit"):
        BatchJob.create_from_messages(
            spam_messages(), "gpt-4o", file_path=out, limits=FileLimits(requests=2)
        )
    assert list(tmp_path.iterdir()) == []


def test_the_byte_limit_is_decimal_as_the_api_counts(tmp_path):
    """Two 100 MB lines: 200,000,000+ bytes, under 200 MiB. The old check (MiB) wrote this
    file and upload then refused it; the limit is the one upload and validate use."""
    out = tmp_path / "big.jsonl"
    text = "x" * 100_000_000
    messages = [[{"role": "user", "content": text}]] * 2
    with pytest.raises(BatchError, match="200 MB") as caught:
        BatchJob.create_from_messages(messages, "gpt-4o", file_path=out)
    assert "--max-bytes" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- strict schema conversion -----------------------------------------------------------------


class Node(BaseModel):
    name: str = "x"
    kind: Labels = Field(Labels.SPAM, description="the kind")
    children: list[Node] = []
    note: str | None = None
    tag: Literal["a", "b"]


def test_recursive_model_with_defaults_becomes_strict():
    schema = strict_json_schema(Node)
    assert_strict(schema)
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "kind", "children", "note", "tag"]
    # a $ref with a description is inlined so the description survives
    assert schema["properties"]["kind"]["enum"] == ["spam", "not_spam"]
    assert schema["properties"]["kind"]["description"] == "the kind"
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert {"type": "null"} in schema["properties"]["note"]["anyOf"]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")


def test_discriminated_union_becomes_any_of():
    schema = strict_json_schema(Pet)
    assert_strict(schema)
    assert schema["properties"]["pet"]["anyOf"] == [
        {"$ref": "#/$defs/Cat"},
        {"$ref": "#/$defs/Dog"},
    ]
    assert "discriminator" not in json.dumps(schema)


class Constrained(BaseModel):
    code: str = Field(min_length=2, pattern="^[A-Z]+$")
    tags: set[str]
    score: int = Field(ge=0, le=10)


def test_unsupported_constraints_are_dropped_with_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = strict_json_schema(Constrained)
    assert len(caught) == 1
    assert "minLength" in str(caught[0].message) and "uniqueItems" in str(caught[0].message)
    code = schema["properties"]["code"]
    assert code == {"pattern": "^[A-Z]+$", "title": "Code", "type": "string"}
    assert schema["properties"]["score"]["minimum"] == 0
    assert "uniqueItems" not in schema["properties"]["tags"]


class WithDict(BaseModel):
    counts: dict[str, int]


class WithAny(BaseModel):
    anything: Any


class WithTuple(BaseModel):
    pair: tuple[int, int]


class Numbers(RootModel[list[int]]):
    pass


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        (WithDict, "WithDict.counts: dict fields"),
        (WithAny, "WithAny.anything: field has no type"),
        (WithTuple, "WithTuple.pair: tuples"),
        (Numbers, "is not an object model"),
    ],
)
def test_shapes_strict_mode_cannot_express_are_refused(model, needle):
    with pytest.raises(BatchError) as info:
        response_format_for(model)
    assert needle in str(info.value)
    assert info.value.hint


def test_response_model_must_be_a_model_class():
    with pytest.raises(BatchError, match="pydantic BaseModel subclass"):
        response_format_for(SinglePrediction(class_label=Labels.SPAM))  # type: ignore[arg-type]


def test_format_name_is_sanitized():
    class Generic_(BaseModel):
        x: int

    Generic_.__name__ = "Answer[int] v2"
    assert response_format_for(Generic_)["json_schema"]["name"] == "Answer_int__v2"


def test_a_plain_model_gets_exactly_the_sdks_strict_schema():
    """What `client.beta.chat.completions.parse` would send: the SDK's own conversion."""
    from openai.lib._pydantic import to_strict_json_schema

    class Inner(BaseModel):
        x: int = Field(description="x")

    class Outer(BaseModel):
        inner: Inner
        items: list[Inner]
        note: str | None

    assert strict_json_schema(Outer) == to_strict_json_schema(Outer)


# --- parse_from_file --------------------------------------------------------------------------


def chat_body(content: str | None, **message: Any) -> dict[str, Any]:
    finish = message.pop("finish_reason", "stop")
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, **message},
                "finish_reason": finish,
            }
        ],
    }


def ok_line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": "r", "body": body},
        "error": None,
    }


def label(value: str) -> str:
    return json.dumps({"class_label": value})


def write_lines(path: Path, lines: list[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def mixed_results(tmp_path: Path) -> Path:
    http_400 = {
        "id": "batch_req_e",
        "custom_id": "id_3",
        "response": {
            "status_code": 400,
            "request_id": "r",
            "body": {"error": {"message": "bad", "type": "invalid_request_error"}},
        },
        "error": None,
    }
    expired = {
        "id": "batch_req_x",
        "custom_id": "id_4",
        "response": None,
        "error": {"code": "batch_expired", "message": "This request could not be executed."},
    }
    return write_lines(
        tmp_path / "output.jsonl",
        [
            ok_line("id_2", chat_body(label("not_spam"))),
            ok_line("id_0", chat_body(label("spam"))),
            http_400,
            expired,
            ok_line("id_5", chat_body(None, refusal="I can't help with that")),
            ok_line("id_6", chat_body("not json at all")),
            ok_line("id_7", chat_body(label("ham"))),
            ok_line("id_8", chat_body('{"class_label": "sp', finish_reason="length")),
            "",
            "{truncated",
            ok_line("id_1", chat_body(label("spam"))),
        ],
    )


def test_parse_from_file_separates_answers_from_failures(tmp_path):
    path = mixed_results(tmp_path)
    parsed, unparsed = BatchJob.parse_from_file(
        file_path=str(path), response_model=SinglePrediction
    )
    assert [p.class_label for p in parsed] == [Labels.NOT_SPAM, Labels.SPAM, Labels.SPAM]
    assert all(isinstance(p, SinglePrediction) for p in parsed)
    assert [u.get("custom_id") for u in unparsed] == [
        "id_3",
        "id_4",
        "id_5",
        "id_6",
        "id_7",
        "id_8",
        None,
    ]
    assert unparsed[0]["response"]["status_code"] == 400  # the raw line, untouched
    assert unparsed[-1] == {"line": 10, "raw": "{truncated"}


def test_parse_lines_says_why(tmp_path):
    reasons = {
        item.custom_id: item.error
        for item in BatchJob.parse_lines(mixed_results(tmp_path), SinglePrediction)
        if not item.ok
    }
    assert reasons["id_3"] == "HTTP 400: bad"
    assert reasons["id_4"].startswith("batch_expired: ")
    assert reasons["id_5"] == "refused: I can't help with that"
    assert reasons["id_6"].startswith("the answer is not JSON")
    assert reasons["id_7"].startswith("does not match SinglePrediction")
    assert "finish_reason=length" in reasons["id_8"]
    assert reasons[None] == "the line is not JSON"


def test_parse_by_custom_id_prefers_success_and_later_lines(tmp_path):
    path = write_lines(
        tmp_path / "merged.jsonl",
        [
            ok_line("id_0", chat_body("oops")),
            ok_line("id_0", chat_body(label("spam"))),
            ok_line("id_1", chat_body(label("spam"))),
            ok_line("id_1", chat_body(label("not_spam"))),
            ok_line("id_2", chat_body(label("spam"))),
            ok_line("id_2", chat_body("late failure")),
            ok_line("id_3", chat_body("never worked")),
        ],
    )
    parsed, failed = BatchJob.parse_by_custom_id(path, SinglePrediction)
    assert {k: v.class_label.value for k, v in parsed.items()} == {
        "id_0": "spam",
        "id_1": "not_spam",
        "id_2": "spam",
    }
    assert list(failed) == ["id_3"]


def test_responses_api_bodies_and_tool_calls_are_understood(tmp_path):
    responses_body = {
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": label("spam"), "annotations": []}],
            },
        ],
    }
    tool_call = chat_body(
        None,
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "SinglePrediction", "arguments": label("not_spam")},
            }
        ],
    )
    path = write_lines(
        tmp_path / "o.jsonl", [ok_line("id_0", responses_body), ok_line("id_1", tool_call)]
    )
    parsed, unparsed = BatchJob.parse_from_file(path, SinglePrediction)
    assert [p.class_label for p in parsed] == [Labels.SPAM, Labels.NOT_SPAM]
    assert unparsed == []


def test_lines_are_read_as_the_csv_join_reads_them(tmp_path):
    """BatchJob reads a line with `answers.extract`: content parts are text, an odd shape from
    a server is that line's reason (it used to stop the whole parse with an AttributeError)."""
    parts = chat_body(None)
    parts["choices"][0]["message"]["content"] = [{"type": "text", "text": label("spam")}]
    odd = chat_body(label("spam"))
    odd["choices"] = ["not a choice"]
    path = write_lines(tmp_path / "o.jsonl", [ok_line("id_0", parts), ok_line("id_1", odd)])
    items = {i.custom_id: i for i in BatchJob.parse_lines(path, SinglePrediction)}
    assert items["id_0"].value == SinglePrediction(class_label=Labels.SPAM)
    assert items["id_1"].error is not None and items["id_1"].error.startswith("malformed_result")


def test_unreadable_result_lines_are_reasons_not_crashes(tmp_path):
    """A line nested too deeply or not UTF-8 (a damaged download) used to stop parse_lines with
    a RecursionError or UnicodeDecodeError; now each is that line's reason, as in the join."""
    path = tmp_path / "o.jsonl"
    good = json.dumps(ok_line("id_0", chat_body(label("spam"))))
    path.write_bytes(
        good.encode() + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b'\n{"custom_id": "\xe9"}\n'
    )
    items = list(BatchJob.parse_lines(path, SinglePrediction))
    assert [i.ok for i in items] == [True, False, False]
    assert "nested too deeply" in (items[1].error or "")
    assert items[2].error == "the line is not JSON"
    assert items[2].raw["line"] == 3


def test_an_answer_nested_thousands_deep_is_its_lines_reason(tmp_path):
    """The line is shallow (the answer is a string) but the answer is JSON nested 100,000 deep:
    after pydantic refused it, the json module's look at it raised a RecursionError out of
    parse_lines."""
    deep = "[" * 100_000 + "]" * 100_000
    good = ok_line("id_0", chat_body(label("spam")))
    path = write_lines(tmp_path / "o.jsonl", [good, ok_line("id_1", chat_body(deep))])
    items = list(BatchJob.parse_lines(path, SinglePrediction))
    assert [i.ok for i in items] == [True, False]
    assert "recursion limit" in (items[1].error or "")


def test_qa_tutorial_parse_of_an_empty_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("./output.jsonl", "w") as f:
        f.write("")
    parsed, unparsed = BatchJob.parse_from_file(
        file_path="./output.jsonl", response_model=QuestionAnswerPair
    )
    assert (len(parsed), len(unparsed)) == (0, 0)


def test_missing_results_file_is_a_clear_error(tmp_path):
    with pytest.raises(BatchError, match="no such results file"):
        BatchJob.parse_from_file(tmp_path / "nope.jsonl", SinglePrediction)


def test_real_batch_output_is_read_line_by_line():
    """The seed's real output holds prose answers: each is read, none fits a JSON model."""
    seed = need_seed()
    items = list(BatchJob.parse_lines(seed / "batch-responses.openai.jsonl", SinglePrediction))
    assert sorted(int(i.custom_id.split("_")[1]) for i in items) == list(range(100))
    assert all(not i.ok and i.error.startswith("the answer is not JSON") for i in items)


# --- the tutorials end to end, through the fake Batch API with the real openai client ---------


def run_through_batch_api(fake: Any, request_file: Path, out_dir: Path) -> tuple[Path, Path | None]:
    """Upload, start, finish and download a batch the way the tutorials' CLI steps do."""
    client = fake.client()
    with open(request_file, "rb") as fh:
        uploaded = client.files.create(file=fh, purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    fake.finish(batch.id)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    output = out_dir / "output.jsonl"
    client.files.content(batch.output_file_id).write_to_file(output)
    errors = None
    if batch.error_file_id:
        errors = out_dir / "errors.jsonl"
        client.files.content(batch.error_file_id).write_to_file(errors)
    return output, errors


def test_spam_tutorial_end_to_end(fake_api, tmp_path, monkeypatch):
    seen_formats: list[Any] = []

    def classify(line: dict[str, Any]) -> tuple[int, Any]:
        """A model that reads the email and answers in the requested JSON shape."""
        body = line["body"]
        seen_formats.append(body["response_format"])
        text = body["messages"][0]["content"]
        verdict = "spam" if "prince" in text else "not_spam"
        return 200, chat_completion_body(body["model"], json.dumps({"class_label": verdict}))

    fake_api.responder = classify
    fake_api.plan(fail_custom_ids={"id_1"}, error_status=500)
    monkeypatch.chdir(tmp_path)
    with open("./test.jsonl", "w") as f:
        for line in BatchJob.create_from_messages(
            messages_batch=spam_messages(),
            model="gpt-4o-mini",
            response_model=SinglePrediction,
        ):
            f.write(json.dumps(line) + "\n")

    output, errors = run_through_batch_api(fake_api, tmp_path / "test.jsonl", tmp_path)
    assert seen_formats and all(f == response_format_for(SinglePrediction) for f in seen_formats)

    parsed, unparsed = BatchJob.parse_from_file(
        file_path="./output.jsonl", response_model=SinglePrediction
    )
    assert sorted(p.class_label.value for p in parsed) == ["not_spam", "spam"]
    assert unparsed == []
    by_id, failed = BatchJob.parse_by_custom_id(output, SinglePrediction)
    assert {k: v.class_label for k, v in by_id.items()} == {
        "id_0": Labels.SPAM,
        "id_2": Labels.NOT_SPAM,
    }
    assert failed == {}
    assert errors is not None
    parsed_err, unparsed_err = BatchJob.parse_from_file(errors, SinglePrediction)
    assert parsed_err == []
    assert [u["custom_id"] for u in unparsed_err] == ["id_1"]
    assert unparsed_err[0]["response"]["status_code"] == 500

    # The tutorial's parsing snippet names the field `label`, not `class_label` as the model it
    # sent: with that model nothing validates, and every line comes back in `unparsed`.
    class TutorialParsePrediction(BaseModel):
        label: Labels

    with pytest.warns(UserWarning, match="line 1: .* field 'label': Field required"):
        parsed, unparsed = BatchJob.parse_from_file(
            file_path="./output.jsonl", response_model=TutorialParsePrediction
        )
    assert (len(parsed), len(unparsed)) == (0, 2)


def test_synthetic_qa_tutorial_end_to_end(fake_api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # `load_dataset("ms_marco", ...)` stands in as a few rows of the same shape.
    dataset = [
        {"passages": {"passage_text": ["The RBA came into being on 14 January 1960.", "Gold."]}},
        {"passages": {"passage_text": ["Kilimanjaro is the highest mountain in Africa."]}},
    ]

    def get_messages(dataset):
        for row in dataset:
            for passage in row["passages"]["passage_text"]:
                yield [
                    {"role": "system", "content": "You generate hypothetical search queries."},
                    {"role": "user", "content": f"Here is the text chunk: {passage}"},
                ]

    BatchJob.create_from_messages(
        messages_batch=get_messages(dataset),
        model="gpt-4o",
        file_path="./test.jsonl",
        response_model=QuestionAnswerPair,
    )
    run_through_batch_api(fake_api, tmp_path / "test.jsonl", tmp_path)

    parsed, unparsed = BatchJob.parse_from_file(
        file_path="./output.jsonl", response_model=QuestionAnswerPair
    )
    assert len(parsed) == 3 and len(unparsed) == 0
    by_id, _ = BatchJob.parse_by_custom_id("./output.jsonl", QuestionAnswerPair)
    # the fake fills each schema string with "<custom_id> <property>"
    assert by_id["id_2"] == QuestionAnswerPair(
        chain_of_thought="id_2 chain_of_thought", question="id_2 question", answer="id_2 answer"
    )
    assert sorted(by_id) == ["id_0", "id_1", "id_2"]
