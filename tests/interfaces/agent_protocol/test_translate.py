"""The translation alone (no database): messages both ways, statuses, and stream parts."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus
from interfaces.agent_protocol.translate import (
    InvalidMessage,
    StreamTranslator,
    from_langchain,
    messages_to_langchain,
    protocol_status,
)


def test_messages_both_ways():
    assert from_langchain("hi") == {"role": "user", "content": "hi"}
    assert from_langchain(["user", "hi"]) == {"role": "user", "content": "hi"}
    assert from_langchain({"type": "human", "content": [{"type": "text", "text": "a"}, "b"]}) == {
        "role": "user",
        "content": "ab",
    }
    ai = from_langchain({"type": "ai", "content": "", "tool_calls": [{"name": "calc", "args": {"x": 1}, "id": "c1"}]})
    assert ai == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "name": "calc", "arguments": {"x": 1}}],
    }
    assert from_langchain({"role": "tool", "tool_call_id": "c1", "content": "2"})["tool_call_id"] == "c1"
    for bad in (5, {"role": "robot"}, {"role": "tool", "content": "x"}, {"type": "ai", "tool_calls": [3]}):
        with pytest.raises(InvalidMessage):
            from_langchain(bad)
    shown = messages_to_langchain(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "calc", "arguments": {"x": 1}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "2", "is_error": True},
            {"role": "system", "content": "s"},
        ],
        "t",
    )
    assert [(m["type"], m["id"]) for m in shown] == [
        ("human", "t-0"),
        ("ai", "t-1"),
        ("tool", "t-2"),
        ("system", "t-3"),
    ]
    assert shown[1]["tool_calls"] == [{"name": "calc", "args": {"x": 1}, "id": "c1", "type": "tool_call"}]
    assert shown[2]["status"] == "error"


def test_statuses():
    assert protocol_status(RunStatus.QUEUED) == "pending"
    assert protocol_status(RunStatus.SUCCEEDED) == "success"
    assert protocol_status(RunStatus.FAILED, {"code": "run_timeout"}) == "timeout"
    assert protocol_status(RunStatus.FAILED, {"code": "provider_error"}) == "error"
    assert protocol_status(RunStatus.CANCELLED) == "interrupted"
    assert protocol_status(RunStatus.INTERRUPTED) == "interrupted"


def test_two_tool_calls_of_one_message_are_one_message():
    t = StreamTranslator(("updates", "values"), "r1", "agent", [])
    for event in (
        {"type": "TOOL_CALL_START", "toolCallId": "a", "toolCallName": "calc", "parentMessageId": "m1"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "a", "delta": '{"x": 1}'},
        {"type": "TOOL_CALL_END", "toolCallId": "a"},
        {"type": "TOOL_CALL_START", "toolCallId": "b", "toolCallName": "calc", "parentMessageId": "m1"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "b", "delta": "not json"},
        {"type": "TOOL_CALL_END", "toolCallId": "b"},
    ):
        t.translate(event)
    assert len(t.messages) == 1
    assert [(c["id"], c["args"]) for c in t.messages[0]["tool_calls"]] == [("a", {"x": 1}), ("b", {})]


def test_a_pause_an_error_and_custom_events():
    t = StreamTranslator(("updates", "values", "custom"), "r1", "agent", [])
    assert t.translate({"type": "CUSTOM", "name": "progress", "value": {"done": 1}}) == [("custom", {"done": 1})]
    pause = {
        "type": "CUSTOM",
        "name": "asteros.interrupt",
        "value": {"status": "pending", "interrupts": [{"id": "i1", "kind": "approval", "request": {"tool": "calc"}}]},
    }
    parts = t.translate(pause)
    assert t.ended and t.status == "interrupted"
    assert parts == [("updates", {"__interrupt__": [{"value": {"kind": "approval", "tool": "calc"}, "id": "i1"}]})]
    assert t.close()[-1][1]["__interrupt__"][0]["id"] == "i1"
    failed = StreamTranslator(("values",), "r2", "agent", [])
    failed.translate({"type": "RUN_ERROR", "code": "provider_error", "message": "down"})
    assert failed.close() == [("error", {"error": "provider_error", "message": "down"})]
