"""The stored events -> AG-UI 1.0 wire translation (no database, no server)."""

from __future__ import annotations

from interfaces.agui.translate import ABANDONED_SUBAGENT, AGUITranslator, conform


def run(events: list[dict], **options) -> tuple[AGUITranslator, list[dict]]:
    translator = AGUITranslator("thread-1", "client-run", **options)
    out: list[dict] = []
    for event in events:
        out += translator.translate(event)
    return translator, out


STARTED = {"type": "RUN_STARTED", "threadId": "thread-1", "runId": "internal-uuid"}


def test_the_boundaries_carry_the_clients_ids_and_the_state_opens_the_stream():
    _, out = run(
        [STARTED, {"type": "RUN_FINISHED", "threadId": "thread-1", "runId": "internal-uuid", "result": "ok"}],
        state={"theme": "dark"},
        parent_run_id="parent",
    )
    assert out == [
        {
            "type": "RUN_STARTED",
            "threadId": "thread-1",
            "runId": "client-run",
            "protocolVersion": "1.0",
            "parentRunId": "parent",
            "metadata": {"asteros": {"runId": "internal-uuid"}},
        },
        {"type": "STATE_SNAPSHOT", "snapshot": {"theme": "dark"}},
        {
            "type": "RUN_FINISHED",
            "threadId": "thread-1",
            "runId": "client-run",
            "outcome": {"type": "success"},
            "result": "ok",
        },
    ]


def test_a_frontend_tool_stop_is_a_success_naming_the_pending_calls():
    translator, out = run(
        [
            STARTED,
            {"type": "TOOL_CALL_START", "toolCallId": "server", "toolCallName": "calculator"},
            {"type": "TOOL_CALL_END", "toolCallId": "server"},
            {"type": "TOOL_CALL_RESULT", "messageId": "m", "toolCallId": "server", "content": "42", "role": "tool"},
            {"type": "TOOL_CALL_START", "toolCallId": "client", "toolCallName": "change_background"},
            {"type": "TOOL_CALL_ARGS", "toolCallId": "client", "delta": '{"color":'},
            {"type": "TOOL_CALL_ARGS", "toolCallId": "client", "delta": '"blue"}'},
            {"type": "TOOL_CALL_END", "toolCallId": "client"},
            {"type": "RUN_FINISHED", "threadId": "thread-1", "runId": "x", "result": "", "outcome": "interrupt"},
        ]
    )
    assert out[-1]["outcome"] == {"type": "success", "pendingToolCallIds": ["client"]}
    assert translator.pending_tool_call_ids == ["client"]
    assert "interrupt" not in str(out[-1])


def test_a_cancelled_run_closes_everything_it_opened_and_has_no_result():
    _, out = run(
        [
            STARTED,
            {"type": "STEP_STARTED", "stepName": "research"},
            {"type": "SUBAGENT_STARTED", "runId": "child", "parentRunId": "x", "member": "writer", "agentId": "a2"},
            {"type": "TEXT_MESSAGE_START", "messageId": "m1", "role": "assistant"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "Hel"},
            {"type": "TOOL_CALL_START", "toolCallId": "c1", "toolCallName": "lookup"},
            {"type": "RUN_FINISHED", "threadId": "t", "runId": "x", "outcome": "cancelled", "result": "partial"},
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "after the end"},
        ]
    )
    assert [e["type"] for e in out[-5:]] == [
        "TEXT_MESSAGE_END",
        "TOOL_CALL_END",
        "STEP_FINISHED",
        "SUBAGENT_ERROR",
        "RUN_FINISHED",
    ]
    assert out[-2] == {
        "type": "SUBAGENT_ERROR",
        "subagentRunId": "child",
        "message": ABANDONED_SUBAGENT,
        "code": "abandoned",
    }
    assert out[-1] == {
        "type": "RUN_FINISHED",
        "threadId": "thread-1",
        "runId": "client-run",
        "outcome": {"type": "cancelled"},
    }
    assert all(e.get("delta") != "after the end" for e in out), "nothing after the end"


def test_subagents_get_their_1_0_fields_and_extras_move_to_metadata():
    _, out = run(
        [
            STARTED,
            {
                "type": "SUBAGENT_STARTED",
                "runId": "c1",
                "parentRunId": "p",
                "member": "writer",
                "agentId": "a2",
                "role": "worker",
                "instruction": "write",
            },
            {"type": "SUBAGENT_FINISHED", "runId": "c1", "member": "writer", "output": "done"},
            {"type": "SUBAGENT_STARTED", "runId": "c2", "stepName": "check", "kind": "agent", "agentId": "a1"},
            {"type": "SUBAGENT_ERROR", "runId": "c2", "stepName": "check", "status": "failed", "message": "boom"},
            {"type": "SUBAGENT_ERROR", "runId": None, "member": "ghost", "message": "refused"},  # never started
        ]
    )
    started = out[2]
    assert started["type"] == "SUBAGENT_STARTED" and started["subagentRunId"] == "c1" and started["name"] == "writer"
    assert started["metadata"]["asteros"] == {
        "runId": "c1",
        "parentRunId": "p",
        "member": "writer",
        "agentId": "a2",
        "role": "worker",
        "instruction": "write",
    }
    assert out[3]["type"] == "SUBAGENT_FINISHED" and out[3]["result"] == "done" and out[3]["subagentRunId"] == "c1"
    assert out[4]["name"] == "check"
    assert out[5]["type"] == "SUBAGENT_ERROR" and out[5]["message"] == "boom"
    assert out[6]["type"] == "CUSTOM" and out[6]["name"] == "asteros.subagent_error"


def test_unknown_types_become_custom_and_nothing_null_reaches_the_wire():
    _, out = run(
        [STARTED, {"type": "THINKING_START", "x": 1}, {"type": "CUSTOM", "name": "star.message", "value": None}]
    )
    assert out[2] == {"type": "CUSTOM", "name": "asteros.thinking_start", "value": {"type": "THINKING_START", "x": 1}}
    assert out[3] == {"type": "CUSTOM", "name": "star.message", "value": {}}
    assert conform({"type": "TEXT_MESSAGE_END", "messageId": "m", "parentRunId": None}) == {
        "type": "TEXT_MESSAGE_END",
        "messageId": "m",
    }


def test_the_runs_own_state_events_are_followed():
    translator, out = run(
        [
            STARTED,
            {"type": "STATE_SNAPSHOT", "snapshot": {"steps": {"a": {"status": "pending"}}}},
            {"type": "STATE_DELTA", "delta": [{"op": "replace", "path": "/steps/a/status", "value": "succeeded"}]},
        ],
        state={"ignored": True},
    )
    assert translator.state_changed and translator.state == {"steps": {"a": {"status": "succeeded"}}}
    assert [e["type"] for e in out] == ["RUN_STARTED", "STATE_SNAPSHOT", "STATE_SNAPSHOT", "STATE_DELTA"]


def test_a_stream_always_opens_with_run_started_and_errors_end_it():
    _, out = run(
        [
            {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "x"},
            {"type": "RUN_ERROR", "message": "bad", "code": "c"},
        ]
    )
    assert [e["type"] for e in out] == [
        "RUN_STARTED",
        "STATE_SNAPSHOT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "RUN_ERROR",
    ]
    assert out[-1] == {"type": "RUN_ERROR", "message": "bad", "code": "c"}
