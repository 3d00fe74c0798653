"""Events, errors, and the cheap agent build."""

from __future__ import annotations

import pickle

from cosmos.runtime import AgentSpec, build_agent, tool
from cosmos.runtime.errors import ModelError, RunFailed
from cosmos.runtime.events import TERMINAL_EVENT_TYPES, EventType, make_event


def test_event_vocabulary() -> None:
    expected = {
        "RUN_STARTED", "RUN_FINISHED", "RUN_ERROR", "STEP_STARTED", "STEP_FINISHED",
        "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
        "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT",
        "STATE_SNAPSHOT", "STATE_DELTA", "MESSAGES_SNAPSHOT", "RAW", "CUSTOM",
        "SUBAGENT_STARTED", "SUBAGENT_FINISHED", "SUBAGENT_ERROR",
    }  # fmt: skip
    assert expected <= {e.value for e in EventType}
    assert all(e.value == e.name for e in EventType)
    assert {"RUN_FINISHED", "RUN_ERROR"} == TERMINAL_EVENT_TYPES
    assert EventType.TEXT_MESSAGE_START == "TEXT_MESSAGE_START"


def test_make_event_drops_nulls_and_uses_plain_strings() -> None:
    event = make_event(EventType.RUN_ERROR, message="boom", code=None, runId="r1")
    assert event == {"type": "RUN_ERROR", "message": "boom", "runId": "r1"}
    assert type(event["type"]) is str
    assert make_event("CUSTOM", name="x", value=0, flag=False) == {
        "type": "CUSTOM",
        "name": "x",
        "value": 0,
        "flag": False,
    }


def test_run_failed() -> None:
    error = RunFailed("max_turns_exceeded", "too many turns (max_turns=2)")
    assert str(error) == "too many turns (max_turns=2)"
    assert (error.code, error.message) == ("max_turns_exceeded", "too many turns (max_turns=2)")
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.message) == (error.code, error.message)
    assert isinstance(ModelError("model_timeout", "slow"), RunFailed)


def test_build_agent_is_cached_and_never_raises(monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    spec = AgentSpec(id="a", name="A", provider="anthropic", model="claude-x", tools=("calculator", "current_time"))
    first, second = build_agent(spec), build_agent(spec)

    assert first.error is None  # a missing key is reported by the run, not the build
    assert first.provider is second.provider
    assert first.tool_schemas is second.tool_schemas  # nothing rebuilt per agent
    assert [t.name for t in first.tools] == ["calculator", "current_time"]
    assert set(first.tool_map) == {"calculator", "current_time"}
    assert not hasattr(first, "__dict__")  # __slots__


def test_extra_tools_are_added_per_build() -> None:
    @tool(register=False)
    def delegate(task: str) -> str:
        """Hand a task to a member."""
        return task

    spec = AgentSpec(id="a", name="A", tools=("calculator",))
    built = build_agent(spec, extra_tools=(delegate,))
    assert [s["name"] for s in built.tool_schemas] == ["calculator", "delegate"]
    assert built.tool_map["delegate"] is delegate
    assert [s["name"] for s in build_agent(spec).tool_schemas] == ["calculator"]  # the cache is untouched


def test_spec_defaults() -> None:
    spec = AgentSpec(id="a", name="A", api_key="secret-value")
    assert spec.provider == "scripted" and spec.max_turns == 10 and dict(spec.parameters) == {}
    assert "secret-value" not in repr(spec)


def test_bad_client_options_do_not_break_the_build() -> None:
    spec = AgentSpec(id="a", name="A", provider="openai", parameters={"timeout": "soon", "max_retries": None})
    built = build_agent(spec)
    assert built.error is None and built.provider is not None
