"""The fast check of request bodies says exactly what the full check says.

`sdk_types.check` first validates a body against the SDK's request types with plain tagged
unions (pydantic-core alone) and only when they refuse it against the types whose unions call
`_ShapePicker`, which words the errors. That is sound only if the fast types accept nothing
the picker's types refuse; these tests compare the two on generated bodies, near-valid ones
included, and check that the picker's remembered choices are the choices it would make.
"""

from __future__ import annotations

import typing
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import ValidationError

from openai_batch.requestfile.endpoints import CHAT, RESPONSES
from openai_batch.validate import sdk_types

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_check(body: dict[str, Any], url: str) -> list[sdk_types.Found]:
    """The check as it was before the fast types: the picker's types alone."""
    try:
        sdk_types._validator(url).validate_python(body, strict=True)
    except ValidationError as exc:
        return sdk_types._from_pydantic(exc.errors(include_url=False), body)
    return []


def fast_accepts(body: dict[str, Any], url: str) -> bool:
    try:
        sdk_types._fast_validator(url).validate_python(body, strict=True)
    except ValidationError:
        return False
    return True


TEXTS = st.sampled_from(["hi", "", "x" * 3])
CHAT_ROLES = st.sampled_from(["system", "user", "assistant", "tool", "developer", "function", "x"])
PART_TYPES = st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "y"])


@st.composite
def chat_part(draw: Any) -> Any:
    kind = draw(PART_TYPES)
    part: dict[str, Any] = {"type": kind}
    if kind == "text" or draw(st.booleans()):
        part["text"] = draw(TEXTS)
    if kind == "image_url" or draw(st.integers(0, 4)) == 0:
        part["image_url"] = draw(
            st.sampled_from([{"url": "https://a/b.png"}, {"url": "https://a", "detail": "low"}])
        )
    if draw(st.integers(0, 5)) == 0:
        del part["type"]
    if draw(st.integers(0, 5)) == 0:
        part["role"] = draw(CHAT_ROLES)
    return part


@st.composite
def chat_message(draw: Any) -> Any:
    role = draw(CHAT_ROLES)
    message: dict[str, Any] = {"role": role}
    message["content"] = draw(st.one_of(TEXTS, st.lists(chat_part(), max_size=3)))
    if role == "tool" or draw(st.integers(0, 5)) == 0:
        message["tool_call_id"] = "call_1"
    if draw(st.integers(0, 5)) == 0:
        message["name"] = "n"
    if draw(st.integers(0, 6)) == 0:
        message["type"] = draw(st.sampled_from(["message", "text"]))
    if draw(st.integers(0, 6)) == 0:
        del message["role"]
    return message


@st.composite
def responses_item(draw: Any) -> Any:
    item: dict[str, Any] = {}
    if draw(st.booleans()):
        item["type"] = draw(st.sampled_from(["message", "function_call_output", "input_text"]))
    if draw(st.integers(0, 3)) > 0:
        item["role"] = draw(st.sampled_from(["user", "assistant", "system", "developer", "z"]))
    if draw(st.integers(0, 3)) > 0:
        parts = st.fixed_dictionaries(
            {"type": st.sampled_from(["input_text", "output_text", "input_image"])},
            optional={"text": TEXTS, "image_url": st.just("https://a/b.png")},
        )
        item["content"] = draw(st.one_of(TEXTS, st.lists(parts, max_size=2)))
    if draw(st.integers(0, 4)) == 0:
        item.update(call_id="c", output="o")
    return item


@SETTINGS
@given(messages=st.lists(chat_message(), min_size=1, max_size=3))
def test_fast_check_of_chat_bodies_is_the_full_check(messages: list[Any]) -> None:
    body = {"model": "gpt-4o", "messages": messages}
    assert sdk_types.check(body, CHAT) == full_check(body, CHAT)
    if fast_accepts(body, CHAT):
        assert full_check(body, CHAT) == []


@SETTINGS
@given(items=st.lists(responses_item(), min_size=1, max_size=3))
def test_fast_check_of_responses_bodies_is_the_full_check(items: list[Any]) -> None:
    body = {"model": "gpt-4o", "input": items}
    assert sdk_types.check(body, RESPONSES) == full_check(body, RESPONSES)
    if fast_accepts(body, RESPONSES):
        assert full_check(body, RESPONSES) == []


def test_a_chat_message_with_a_tag_its_shape_lacks_is_still_refused() -> None:
    """The role alone names the member, whose keys then refuse the extra `type` (the fast
    types); the full check refuses it as matching no shape, and that error is what is said."""
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", "type": "x"}]}
    assert not fast_accepts(body, CHAT)
    found = sdk_types.check(body, CHAT)
    assert found and found == full_check(body, CHAT)


def test_chat_messages_and_parts_are_told_apart_by_their_tags_alone() -> None:
    """The fast types call no Python for chat messages and content parts (their roles and
    types are disjoint literals), which is where the check's time went; the Responses API's
    input items share roles, so the picker still chooses among them."""
    from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
    from openai.types.responses import ResponseInputItemParam

    def converted(union: Any) -> list[Any]:
        strict = sdk_types._Strict({})
        return [strict.convert(m) for m in get_args(union)]

    assert sdk_types._plain_tag(converted(ChatCompletionMessageParam)) == "role"
    assert sdk_types._plain_tag(converted(ChatCompletionContentPartParam)) == "type"
    assert sdk_types._plain_tag(converted(ResponseInputItemParam)) is None


@SETTINGS
@given(
    values=st.lists(
        st.dictionaries(
            st.sampled_from(["role", "content", "type", "name", "tool_call_id", "refusal"]),
            st.one_of(CHAT_ROLES, PART_TYPES, st.none(), st.integers(0, 1), st.lists(TEXTS)),
            max_size=4,
        ),
        max_size=8,
    )
)
def test_the_pickers_remembered_choices_are_its_choices(values: list[dict[str, Any]]) -> None:
    from openai.types.chat import ChatCompletionMessageParam

    strict = sdk_types._Strict({})
    members = [strict.convert(m) for m in typing.get_args(ChatCompletionMessageParam)]
    picker = sdk_types._ShapePicker([sdk_types._Shape(m, m.__name__) for m in members])
    for value in values * 2:  # the second time from memory
        assert picker(value) == picker.choose(value)
