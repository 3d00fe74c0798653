"""The agent loop, driven by the offline scripted model."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

import pytest

from cosmos.runtime import AgentSpec, RunFailed, RuntimeAgent, Tool, ToolContext, build_agent, run_agent, tool
from cosmos.runtime.errors import ModelError
from cosmos.runtime.events import EventType
from cosmos.runtime.providers import ModelRequest, TextDelta, ToolCallArgsDelta, ToolCallStart
from tests.cosmos.runtime.helpers import Recorder, assert_well_formed


def agent(tools: tuple[str, ...] = (), extra: tuple[Tool, ...] = (), **parameters) -> RuntimeAgent:
    max_turns = parameters.pop("max_turns", 10)
    spec = AgentSpec(id="t", name="T", tools=tools, parameters=parameters, max_turns=max_turns)
    return build_agent(spec, extra_tools=extra)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def local_tool(fn, **options) -> Tool:
    return tool(register=False, **options)(fn)


async def test_text_only(recorder: Recorder) -> None:
    outcome = await run_agent(agent(), user("hello there"), recorder)

    assert outcome.text == "(offline scripted model) You said: hello there"
    assert outcome.stop_reason == "completed" and outcome.pending_tool_calls == []
    assert outcome.new_messages == [{"role": "assistant", "content": outcome.text}]
    assert outcome.input_tokens > 0 and outcome.output_tokens == len(recorder.of("TEXT_MESSAGE_CONTENT"))
    assert recorder.types()[0] == "TEXT_MESSAGE_START" and recorder.types()[-1] == "TEXT_MESSAGE_END"
    assert "".join(e["delta"] for e in recorder.of("TEXT_MESSAGE_CONTENT")) == outcome.text
    assert_well_formed(recorder.events)


async def test_reply_template_and_exact_token_count(recorder: Recorder) -> None:
    outcome = await run_agent(agent(reply="Echo <{input}>"), user("ping"), recorder)
    assert outcome.text == "Echo <ping>"

    counted = Recorder()
    outcome = await run_agent(agent(reply_tokens=37), user("x"), counted)
    assert len(counted.of("TEXT_MESSAGE_CONTENT")) == 37 == outcome.output_tokens


async def test_one_tool_round_trip(recorder: Recorder) -> None:
    outcome = await run_agent(agent(("calculator",)), user("What is 6 * 7?"), recorder)

    assert outcome.text == "The result is 42."
    call_message, tool_message, answer = outcome.new_messages
    (call,) = call_message["tool_calls"]
    assert call["name"] == "calculator" and call["arguments"] == {"expression": "6 * 7"}
    assert tool_message == {"role": "tool", "tool_call_id": call["id"], "content": "42", "is_error": False}
    assert answer == {"role": "assistant", "content": "The result is 42."}
    start = recorder.of("TOOL_CALL_START")[0]
    assert start["toolCallName"] == "calculator" and start["toolCallId"] == call["id"]
    args = "".join(e["delta"] for e in recorder.of("TOOL_CALL_ARGS"))
    assert json.loads(args) == {"expression": "6 * 7"}
    (result,) = recorder.of("TOOL_CALL_RESULT")
    assert result["content"] == "42" and result["toolCallId"] == call["id"]
    assert recorder.types().index("TOOL_CALL_RESULT") > recorder.types().index("TOOL_CALL_END")
    assert_well_formed(recorder.events)


async def test_parallel_async_tools_overlap(recorder: Recorder) -> None:
    log: list[str] = []
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def tool_a() -> str:
        log.append("a start")
        a_started.set()
        await b_started.wait()  # only returns if b runs while a is still running
        log.append("a end")
        return "A"

    async def tool_b() -> str:
        log.append("b start")
        b_started.set()
        await a_started.wait()
        log.append("b end")
        return "B"

    rules = [{"when": "both", "call": "tool_a"}, {"when": "both", "call": "tool_b"}]
    extra = (local_tool(tool_a, timeout=5), local_tool(tool_b, timeout=5))
    outcome = await run_agent(agent(extra=extra, rules=rules), user("run both"), recorder)

    assert set(log[:2]) == {"a start", "b start"}, log  # both started before either finished
    tool_messages = [m for m in outcome.new_messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["A", "B"]  # in call order, whatever finished first
    assert not any(m["is_error"] for m in tool_messages)
    assert outcome.text == "The results are: A; B."
    types = recorder.types()
    assert types.count("TOOL_CALL_RESULT") == 2
    last_end = max(i for i, t in enumerate(types) if t == "TOOL_CALL_END")
    assert all(i > last_end for i, t in enumerate(types) if t == "TOOL_CALL_RESULT")
    assert_well_formed(recorder.events)


async def test_parallel_sync_tools_run_in_threads(recorder: Recorder) -> None:
    barrier = threading.Barrier(2, timeout=5)  # breaks (an error result) unless both threads wait together

    def left() -> str:
        barrier.wait()
        return "left"

    def right() -> str:
        barrier.wait()
        return "right"

    rules = [{"when": ".", "call": "left"}, {"when": ".", "call": "right"}]
    outcome = await run_agent(agent(extra=(local_tool(left), local_tool(right)), rules=rules), user("go"), recorder)

    results = [m for m in outcome.new_messages if m["role"] == "tool"]
    assert [(m["content"], m["is_error"]) for m in results] == [("left", False), ("right", False)]


async def test_tool_exception_becomes_error_result(recorder: Recorder) -> None:
    def broken(x: int) -> int:
        raise ValueError(f"cannot handle {x}")

    rules = [{"when": "break", "call": "broken", "arguments": {"x": 3}}]
    outcome = await run_agent(agent(extra=(local_tool(broken),), rules=rules), user("break it"), recorder)

    tool_message = outcome.new_messages[1]
    assert tool_message["is_error"] is True
    assert "ValueError" in tool_message["content"] and "cannot handle 3" in tool_message["content"]
    assert outcome.text.startswith("The tool failed:")  # the loop went on and the model saw the error
    assert_well_formed(recorder.events)


async def test_unknown_tool(recorder: Recorder) -> None:
    rules = [{"when": ".", "call": "does_not_exist"}]
    outcome = await run_agent(agent(("calculator",), rules=rules), user("hi"), recorder)

    tool_message = outcome.new_messages[1]
    assert tool_message["is_error"] is True
    assert "Unknown tool 'does_not_exist'" in tool_message["content"] and "calculator" in tool_message["content"]
    assert outcome.stop_reason == "completed"
    assert_well_formed(recorder.events)


async def test_invalid_json_arguments(recorder: Recorder) -> None:
    calls: list[str] = []

    def echo(text: str) -> str:
        calls.append(text)
        return text

    rules = [{"when": ".", "call": "echo", "raw_arguments": '{"text": "unterminated'}]
    outcome = await run_agent(agent(extra=(local_tool(echo),), rules=rules), user("hi"), recorder)

    assert calls == []  # never called with garbage
    tool_message = outcome.new_messages[1]
    assert tool_message["is_error"] is True and "Invalid JSON arguments" in tool_message["content"]
    assert outcome.new_messages[0]["tool_calls"][0]["arguments"] == {}
    assert_well_formed(recorder.events)


async def test_arguments_that_are_not_an_object(recorder: Recorder) -> None:
    rules = [{"when": ".", "call": "calculator", "raw_arguments": "[1, 2]"}]
    outcome = await run_agent(agent(("calculator",), rules=rules), user("hi"), recorder)
    assert "must be a JSON object" in outcome.new_messages[1]["content"]


async def test_tool_timeouts_async_and_sync(recorder: Recorder) -> None:
    release = threading.Event()

    async def slow_async() -> str:
        await asyncio.sleep(30)
        return "never"

    def slow_sync() -> str:
        release.wait(5)
        return "late"

    extra = (local_tool(slow_async, timeout=0.05), local_tool(slow_sync, timeout=0.05))
    rules = [{"when": ".", "call": "slow_async"}, {"when": ".", "call": "slow_sync"}]
    try:
        outcome = await run_agent(agent(extra=extra, rules=rules), user("go"), recorder)
    finally:
        release.set()  # let the abandoned thread finish

    results = [m for m in outcome.new_messages if m["role"] == "tool"]
    assert all(m["is_error"] for m in results)
    assert "'slow_async' timed out after 0.05s" in results[0]["content"]
    assert "'slow_sync' timed out after 0.05s" in results[1]["content"]
    assert_well_formed(recorder.events)


async def test_turn_limit(recorder: Recorder) -> None:
    rules = [{"when": ".", "call": "calculator", "arguments": {"expression": "1+1"}, "after_tool": True}]

    with pytest.raises(RunFailed) as caught:
        await run_agent(agent(("calculator",), rules=rules, max_turns=3), user("loop forever"), recorder)

    assert caught.value.code == "max_turns_exceeded"
    assert "max_turns=3" in caught.value.message and str(caught.value) == caught.value.message
    assert len(recorder.of("TOOL_CALL_START")) == 3  # three model turns
    assert len(recorder.of("TOOL_CALL_RESULT")) == 2  # the last turn's call is not run
    assert_well_formed(recorder.events)


async def test_client_tool_stops_the_run(recorder: Recorder) -> None:
    client_tools = [
        {
            "name": "confirm",
            "description": "Ask the user to confirm",
            "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
        }
    ]
    rules = [
        {"when": r"delete (\w+)", "call": "confirm", "arguments": {"question": "Delete $1?"}},
        {"when": "delete", "call": "calculator", "arguments": {"expression": "2*21"}},
    ]
    bot = agent(("calculator",), rules=rules)
    outcome = await run_agent(bot, user("please delete report"), recorder, client_tools=client_tools)

    assert outcome.stop_reason == "client_tool"
    (pending,) = outcome.pending_tool_calls
    assert pending["name"] == "confirm" and pending["arguments"] == {"question": "Delete report?"}
    # The server tool of the same turn ran; the client tool was streamed but not run.
    results = recorder.of("TOOL_CALL_RESULT")
    assert len(results) == 1 and results[0]["content"] == "42"
    assert {e["toolCallName"] for e in recorder.of("TOOL_CALL_START")} == {"confirm", "calculator"}
    assert_well_formed(recorder.events)

    # The client answers; the next run picks up from there.
    history = [
        *user("please delete report"),
        *outcome.new_messages,
        {"role": "tool", "tool_call_id": pending["id"], "content": "yes", "is_error": False},
    ]
    resumed = await run_agent(bot, history, Recorder(), client_tools=client_tools)
    assert resumed.stop_reason == "completed" and resumed.text == "The results are: 42; yes."


async def test_client_tool_offered_to_the_model() -> None:
    seen: list[ModelRequest] = []

    class Spy:
        name = "spy"

        async def stream(self, request: ModelRequest) -> AsyncIterator:
            seen.append(request)
            yield TextDelta("ok")

    base = agent(("calculator",))
    spied = RuntimeAgent(base.spec, Spy(), base.tools, base.tool_schemas, base.tool_map)
    client_tools = [{"name": "pick_color", "description": "Pick"}, {"name": "calculator", "description": "clash"}]
    await run_agent(spied, user("hi"), Recorder(), client_tools=client_tools)

    names = [t["name"] for t in seen[0].tools]
    assert names == ["calculator", "pick_color"]  # the server tool wins a name clash
    assert seen[0].tools[1]["parameters"] == {"type": "object", "properties": {}}


async def test_cancellation_closes_the_open_message(recorder: Recorder) -> None:
    first_token = asyncio.Event()

    async def emit(event: dict) -> None:
        await recorder(event)
        if event["type"] == "TEXT_MESSAGE_CONTENT":
            first_token.set()

    slow = agent(reply_tokens=1000, tokens_per_second=50)
    task = asyncio.create_task(run_agent(slow, user("talk"), emit))
    await first_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert recorder.types()[-1] == "TEXT_MESSAGE_END"
    assert recorder.events[-1]["messageId"] == recorder.events[0]["messageId"]
    assert len(recorder.of("TEXT_MESSAGE_CONTENT")) < 1000
    assert_well_formed(recorder.events)


async def test_cancellation_closes_an_open_tool_call(recorder: Recorder) -> None:
    class Hanging:
        name = "hanging"

        async def stream(self, request: ModelRequest) -> AsyncIterator:
            yield ToolCallStart("call_1", "calculator")
            yield ToolCallArgsDelta("call_1", '{"expr')
            await asyncio.sleep(30)

    base = agent(("calculator",))
    hanging = RuntimeAgent(base.spec, Hanging(), base.tools, base.tool_schemas, base.tool_map)
    task = asyncio.create_task(run_agent(hanging, user("x"), recorder))
    while "TOOL_CALL_ARGS" not in recorder.types():
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.types() == ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"]


async def test_model_error_mid_stream_closes_the_message(recorder: Recorder) -> None:
    class Flaky:
        name = "flaky"

        async def stream(self, request: ModelRequest) -> AsyncIterator:
            yield TextDelta("partial ")
            raise ModelError("model_unavailable", "connection dropped")

    base = agent()
    flaky = RuntimeAgent(base.spec, Flaky(), (), (), {})
    with pytest.raises(RunFailed) as caught:
        await run_agent(flaky, user("x"), recorder)
    assert caught.value.code == "model_unavailable"
    assert recorder.types() == ["TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END"]


async def test_scripted_failure_knob(recorder: Recorder) -> None:
    with pytest.raises(RunFailed) as caught:
        await run_agent(agent(fail="boom", error_code="model_rate_limited"), user("x"), recorder)
    assert (caught.value.code, caught.value.message) == ("model_rate_limited", "boom")
    assert recorder.events == []


async def test_tool_context_and_structured_results(recorder: Recorder) -> None:
    seen: dict = {}

    async def delegate(task: str, context: ToolContext) -> dict:
        seen.update(run_id=context.run_id, call=context.tool_call_id, metadata=dict(context.metadata))
        await context.emit({"type": EventType.SUBAGENT_STARTED, "task": task})
        return {"answer": task.upper(), "ok": True}

    rules = [{"when": "ask (.+)", "call": "delegate", "arguments": {"task": "$1"}}]
    delegate_tool = local_tool(delegate)
    assert "context" not in delegate_tool.parameters["properties"]
    outcome = await run_agent(
        agent(extra=(delegate_tool,), rules=rules),
        user("ask bob"),
        recorder,
        run_id="run-1",
        context_metadata={"star": "team"},
    )

    assert seen["run_id"] == "run-1" and seen["metadata"] == {"star": "team"}
    assert seen["call"] == outcome.new_messages[0]["tool_calls"][0]["id"]
    assert json.loads(outcome.new_messages[1]["content"]) == {"answer": "BOB", "ok": True}
    types = recorder.types()
    assert types.index("SUBAGENT_STARTED") < types.index("TOOL_CALL_RESULT")


async def test_build_problems_fail_the_run_not_the_build(recorder: Recorder) -> None:
    unknown_tool = build_agent(AgentSpec(id="x", name="X", tools=("nope",)))
    assert unknown_tool.error is not None
    with pytest.raises(RunFailed) as caught:
        await run_agent(unknown_tool, user("hi"), recorder)
    assert caught.value.code == "unknown_tool" and "nope" in caught.value.message

    unknown_provider = build_agent(AgentSpec(id="x", name="X", provider="gemini"))
    with pytest.raises(RunFailed) as caught:
        await run_agent(unknown_provider, user("hi"), recorder)
    assert caught.value.code == "unknown_provider"
    assert recorder.events == []


async def test_history_is_not_mutated(recorder: Recorder) -> None:
    history = user("What is 1 + 2?")
    snapshot = json.loads(json.dumps(history))
    outcome = await run_agent(agent(("calculator",)), history, recorder)
    assert history == snapshot
    assert outcome.text == "The result is 3."


async def test_emit_is_never_called_concurrently() -> None:
    active = peak = 0
    events: list[dict] = []

    async def slow_emit(event: dict) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0)  # give other tasks the chance to enter
        events.append(event)
        active -= 1

    async def fan_out(context: ToolContext) -> str:
        await asyncio.gather(*(context.emit({"type": "CUSTOM", "name": f"part-{i}"}) for i in range(5)))
        return "done"

    rules = [{"when": ".", "call": "fan_out"}, {"when": ".", "call": "calculator", "arguments": {"expression": "1+1"}}]
    bot = agent(("calculator",), extra=(local_tool(fan_out),), rules=rules)
    await run_agent(bot, user("go"), slow_emit)

    assert peak == 1
    assert sum(1 for e in events if e["type"] == "CUSTOM") == 5
    assert_well_formed(events)
