"""Fuzzing the door's request translation: any JSON a client may send is either translated into
run input or refused as bad input (``InvalidBody``, a 400), never another exception (a 500)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from interfaces.openai.translate import (
    CHAT_ROLES,
    InvalidBody,
    chat_messages,
    client_tools,
    flag,
    model_of,
    refuse_unsupported,
    response_messages,
)
from tests.support.fuzzing import JSON_VALUES, fuzz_settings, mostly

pytestmark = [pytest.mark.fuzz]

texts = st.text(max_size=12)
arguments = st.one_of(st.just('{"a": 1}'), st.just("[" * 3000), st.just('{"a": NaN}'), texts, JSON_VALUES)
calls = st.fixed_dictionaries(
    {"id": mostly(st.sampled_from(["c1", "c2"]))},
    optional={"function": mostly(st.fixed_dictionaries({"name": mostly(st.just("t")), "arguments": arguments}))},
)
content = mostly(texts, st.lists(mostly(st.fixed_dictionaries({"type": st.just("text"), "text": texts}))))
messages = st.lists(
    mostly(
        st.fixed_dictionaries(
            {"role": mostly(st.sampled_from(CHAT_ROLES))},
            optional={
                "content": content,
                "tool_calls": mostly(st.lists(calls, max_size=2)),
                "tool_call_id": mostly(st.sampled_from(["c1", "c2"])),
            },
        )
    ),
    max_size=5,
)
tools = st.lists(
    mostly(
        st.fixed_dictionaries(
            {"type": mostly(st.just("function"))},
            optional={
                "function": mostly(st.fixed_dictionaries({"name": mostly(st.just("t"), texts)})),
                "name": mostly(st.just("t"), texts),
                "parameters": JSON_VALUES,
            },
        )
    ),
    max_size=3,
)
items = st.lists(
    mostly(
        st.fixed_dictionaries(
            {"type": mostly(st.sampled_from(["message", "function_call", "function_call_output"]))},
            optional={
                "role": mostly(st.sampled_from(["user", "assistant", "system"])),
                "content": content,
                "call_id": mostly(st.sampled_from(["c1", "c2"])),
                "name": mostly(st.just("t")),
                "arguments": arguments,
                "output": JSON_VALUES,
            },
        )
    ),
    max_size=5,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": mostly(texts),
        "messages": mostly(messages),
        "input": mostly(texts | items),
        "instructions": mostly(texts),
        "tools": mostly(tools),
        "tool_choice": mostly(st.sampled_from(["auto", "none", "required"])),
        "stream": JSON_VALUES,
        "n": JSON_VALUES,
    },
)


def translate(body: dict) -> None:
    for step in (
        lambda: model_of(body),
        lambda: refuse_unsupported(body),
        lambda: flag(body, "stream"),
        lambda: chat_messages(body),
        lambda: client_tools(body, flat=False),
        lambda: client_tools(body, flat=True),
        lambda: response_messages(body),
    ):
        with contextlib.suppress(InvalidBody):  # bad input: a 400; anything else fails the test
            step()


@given(bodies)
@fuzz_settings(200)
@example(
    {
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "t", "arguments": "[" * 3000}}]}
        ]
    }
)
@example({"input": [{"type": "function_call", "call_id": "c", "name": "t", "arguments": '{"a": NaN}'}]})
def test_any_body_is_translated_or_refused_as_bad_input(body):
    translate(body)
    json.dumps(body)
