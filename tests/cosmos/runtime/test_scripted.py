"""The offline scripted provider on its own."""

from __future__ import annotations

import asyncio

import pytest

from cosmos.runtime.providers import (
    Finish,
    ModelRequest,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    Usage,
    get_provider,
)


async def collect(request: ModelRequest) -> list:
    return [event async for event in get_provider("scripted").stream(request)]


def request(text: str, tools: tuple[str, ...] = (), **params) -> ModelRequest:
    schemas = [{"name": n, "description": "", "parameters": {"type": "object"}} for n in tools]
    return ModelRequest("", "", [{"role": "user", "content": text}], schemas, params)


async def test_default_calculator_rule_needs_the_tool_offered() -> None:
    events = await collect(request("compute 12.5 * (3 - 1) please", ("calculator",)))
    assert isinstance(events[0], ToolCallStart) and events[0].name == "calculator"
    assert isinstance(events[1], ToolCallArgsDelta) and events[1].delta == '{"expression": "12.5 * (3 - 1)"}'
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"

    no_tool = await collect(request("compute 12.5 * (3 - 1) please"))
    assert all(not isinstance(e, ToolCallStart) for e in no_tool)
    no_math = await collect(request("version 2 of 3", ("calculator",)))
    assert all(not isinstance(e, ToolCallStart) for e in no_math)


async def test_deterministic_output_and_usage() -> None:
    first = await collect(request("same input", reply_tokens=5))
    second = await collect(request("same input", reply_tokens=5))
    assert first == second
    texts = [e.text for e in first if isinstance(e, TextDelta)]
    assert len(texts) == 5 and all(texts)
    usage = next(e for e in first if isinstance(e, Usage))
    assert usage.output_tokens == 5 and usage.input_tokens == 2


async def test_cancellation_stops_it_mid_sleep() -> None:
    stream = get_provider("scripted").stream(request("hi", ttft_ms=60_000))
    task = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_bad_rules_are_a_model_error() -> None:
    from cosmos.runtime.errors import ModelError

    with pytest.raises(ModelError, match="bad regex"):
        await collect(request("hi", rules=[{"when": "(", "call": "x"}]))
    with pytest.raises(ModelError, match="must be a list"):
        await collect(request("hi", rules=[{"when": "."}]))
    with pytest.raises(ModelError, match="must be a list"):
        await collect(request("hi", rules=[{"when": ".", "reply": ["not", "text"]}]))


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events: list) -> list[str]:
    return [e.name for e in events if isinstance(e, ToolCallStart)]


async def test_a_reply_rule_answers_with_its_template_and_the_match() -> None:
    rules = [
        {"when": r"weather in (\w+)", "call": "forecast", "arguments": {"city": "$1"}},
        {"when": r"notes on (\w+)", "reply": "Notes on $1:\n- first\n- second"},
        {"when": r"notes", "reply": "never: the first matching reply wins"},
    ]
    events = await collect(request("please write notes on octopuses", rules=rules))
    assert text_of(events) == "Notes on octopuses:\n- first\n- second"
    assert calls_of(events) == [] and events[-1].reason == "stop"

    no_match = await collect(request("hello", rules=rules))
    assert text_of(no_match) == "(offline scripted model) You said: hello", "the default reply, as without rules"

    call = await collect(request("weather in Oslo and notes on it", rules=rules))
    assert calls_of(call) == ["forecast"] and text_of(call) == "", "a call rule goes before any reply"


async def test_an_if_offered_rule_fires_only_when_its_tool_is_offered() -> None:
    rules = [
        {"when": r"(.+)", "call": "delegate", "if_offered": True, "arguments": {"instruction": "$1"}},
        {"when": r"(.+)", "reply": "alone: $1"},
    ]
    offered = await collect(request("write it", ("delegate",), rules=rules))
    assert calls_of(offered) == ["delegate"]
    alone = await collect(request("write it", rules=rules))
    assert calls_of(alone) == [] and text_of(alone) == "alone: write it"
    # Without if_offered a rule calls its tool whatever is offered (tests of unknown tools rely on it).
    plain = await collect(request("write it", rules=[{"when": ".", "call": "delegate"}]))
    assert calls_of(plain) == ["delegate"]


async def test_results_reply_wraps_the_tool_results() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "delegate", "arguments": "{}"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "the worker's paragraph"},
    ]
    params = {"rules": [{"when": ".", "call": "delegate"}], "results_reply": "Team answer:\n{results}"}
    events = await collect(ModelRequest("", "", messages, [], params))
    assert text_of(events) == "Team answer:\nthe worker's paragraph"
    plain = await collect(ModelRequest("", "", messages, [], {}))
    assert text_of(plain) == "The result is the worker's paragraph."
