"""RunAgentInput parsing and its translation into the runtime's messages (no database)."""

from __future__ import annotations

import pytest

from interfaces.agui.input import (
    UNANSWERED_TOOL_CALL,
    InvalidRunInput,
    parse_run_agent_input,
    to_internal_messages,
)


def body(**fields) -> dict:
    return {"threadId": "t", "runId": "r", "messages": [{"id": "1", "role": "user", "content": "hi"}], **fields}


def problems(raw) -> list[str]:
    with pytest.raises(InvalidRunInput) as caught:
        parsed = parse_run_agent_input(raw)
        to_internal_messages(parsed)
    assert caught.value.status == 400 and caught.value.code == "invalid_input"
    return [p["field"] for p in caught.value.details["problems"]] if caught.value.details else []


def call(call_id: str, name: str = "lookup", arguments: str = '{"q": 1}') -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_a_full_input_parses():
    parsed = parse_run_agent_input(
        body(
            state={"theme": "dark"},
            tools=[{"name": "change_theme", "description": "Change it.", "parameters": {"type": "object"}}],
            context=[{"description": "user's timezone", "value": "UTC"}],
            forwardedProps={"x": 1},
            parentRunId="p",
            protocolVersion="1.0",
        )
    )
    assert (parsed.thread_id, parsed.run_id, parsed.parent_run_id) == ("t", "r", "p")
    assert parsed.has_state and parsed.state == {"theme": "dark"}
    assert parsed.tools == [{"name": "change_theme", "description": "Change it.", "parameters": {"type": "object"}}]
    assert parsed.context == [{"description": "user's timezone", "value": "UTC"}]


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ({"runId": "r", "messages": []}, ["threadId"]),
        (body(threadId=""), ["threadId"]),
        (body(threadId="x" * 129), ["threadId"]),
        (body(runId=5), ["runId"]),
        ({"threadId": "t", "runId": "r"}, ["messages"]),
        (body(messages="hi"), ["messages"]),
        (body(messages=["hi"]), ["messages[0]"]),
        (body(messages=[{"role": "robot", "content": "x"}]), ["messages[0].role"]),
        (body(messages=[{"role": "user"}]), ["messages[0].content"]),
        (body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), ["messages[0].content[0]"]),
        (body(messages=[{"role": "tool", "content": "x"}]), ["messages[0].toolCallId"]),
        (
            body(messages=[{"role": "assistant", "toolCalls": [call("c1", arguments="{not json")]}]),
            ["messages[0].toolCalls[0].function.arguments"],
        ),
        (
            body(messages=[{"role": "assistant", "toolCalls": [call("c1", arguments="[1]")]}]),
            ["messages[0].toolCalls[0].function.arguments"],
        ),
        (body(tools=[{"name": "", "description": "d"}]), ["tools[0].name"]),
        (body(tools=[{"name": "a"}, {"name": "a"}]), ["tools[1].name"]),
        (body(context=[{"description": "d"}]), ["context[0]"]),
        ([], []),
    ],
)
def test_bad_input_is_refused_with_the_field_named(raw, fields):
    assert problems(raw) == fields


def test_a_tool_result_must_answer_the_call_just_before_it():
    messages = [
        {"id": "m1", "role": "user", "content": "go"},
        {"id": "m2", "role": "tool", "toolCallId": "nowhere", "content": "x"},
    ]
    assert problems(body(messages=messages)) == ["messages[1].toolCallId"]
    twice = [
        {"id": "m3", "role": "user", "content": "go"},
        {"id": "m4", "role": "assistant", "toolCalls": [call("c1")]},
        {"id": "m5", "role": "tool", "toolCallId": "c1", "content": "x"},
        {"id": "m6", "role": "tool", "toolCallId": "c1", "content": "y"},
    ]
    assert problems(body(messages=twice)) == ["messages[3].toolCallId"]
    assert problems(body(messages=[{"id": "m7", "role": "system", "content": "only a system message"}])) == ["messages"]


def test_messages_become_the_runtime_format():
    parsed = parse_run_agent_input(
        body(
            messages=[
                {"id": "s", "role": "developer", "content": "Be brief."},
                {
                    "id": "u",
                    "role": "user",
                    "content": [{"type": "text", "text": "what "}, {"type": "text", "text": "now?"}],
                },
                {"id": "a", "role": "assistant", "content": "", "toolCalls": [call("c1"), call("c2", "other", "")]},
                {"id": "t1", "role": "tool", "toolCallId": "c1", "content": "one"},
                {"id": "t2", "role": "tool", "toolCallId": "c2", "content": "", "error": "it broke"},
                {"id": "x", "role": "activity", "activityType": "progress", "content": {}},
                {"id": "img", "role": "user", "content": [{"type": "image", "source": {"type": "url", "value": "u"}}]},
            ],
            context=[{"description": "tz", "value": "UTC"}],
        )
    )
    out = to_internal_messages(parsed, {"theme": "dark"})
    assert out[0]["role"] == "system"
    assert "tz: UTC" in out[0]["content"] and '{"theme": "dark"}' in out[0]["content"]
    assert out[1:] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what now?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "lookup", "arguments": {"q": 1}},
                {"id": "c2", "name": "other", "arguments": {}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one", "is_error": False},
        {"role": "tool", "tool_call_id": "c2", "content": "it broke", "is_error": True},
    ]  # the image-only message is dropped (the models behind AsterOS take text), not refused


def test_an_unanswered_tool_call_gets_an_error_result_before_the_conversation_moves_on():
    parsed = parse_run_agent_input(
        body(
            messages=[
                {"id": "m8", "role": "user", "content": "go"},
                {"id": "m9", "role": "assistant", "toolCalls": [call("c1"), call("c2")]},
                {"id": "m10", "role": "tool", "toolCallId": "c2", "content": "two"},
                {"id": "m11", "role": "user", "content": "and?"},
            ]
        )
    )
    out = to_internal_messages(parsed)
    assert out[2:5] == [
        {"role": "tool", "tool_call_id": "c2", "content": "two", "is_error": False},
        {"role": "tool", "tool_call_id": "c1", "content": UNANSWERED_TOOL_CALL, "is_error": True},
        {"role": "user", "content": "and?"},
    ]
