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
