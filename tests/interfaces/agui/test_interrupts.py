"""Interrupts over AG-UI: a run that stops for people ends its AG-UI run with the interrupt
outcome, and the next input's ``resume`` answers it and streams the same run's continuation.

In-process (Django's AsyncClient, the embedded worker) for the contract and every refusal; the
official ``@ag-ui/client`` against a live server at the end.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from cosmos.models import Interrupt, Run, RunStatus
from interfaces.agui.services import resumed_usage
from interfaces.agui.translate import AGUITranslator
from interfaces.keys.models import APIKey
from tests.interfaces.ws.test_consumers import TIMEOUT, communicator, until
from tests.support.interrupts import approval_agent, assert_gapless_log, question_agent
from tests.support.runs import wait_for_run

from .live import LiveServer
from .test_endpoint import SETTINGS_KEY, agui_body, assert_well_formed, events_of, post
from .test_live_client import run_client_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def resume_body(first: dict, *entries: dict, **fields: Any) -> dict:
    """The next input on ``first``'s thread: a new runId, the answers in ``resume``."""
    return agui_body(threadId=first["threadId"], messages=first["messages"], resume=list(entries), **fields)


def approve(interrupt_id: str, **payload: Any) -> dict:
    return {"interruptId": interrupt_id, "status": "resolved", "payload": {"decision": "approve", **payload}}


async def paused(agent, text: str = "what is 6*7?") -> tuple[dict, list[dict]]:
    """Start a run on a new thread; its AG-UI stream ends at the pause."""
    body = agui_body(text)
    response, frames = await post(f"/agui/agents/{agent.id}", body)
    assert response.status_code == 200
    return body, events_of(frames)


async def pending(body: dict) -> Interrupt:
    run = await sync_to_async(wait_for_run)(body["runId"], statuses=["interrupted"])
    return await sync_to_async(Interrupt.objects.get)(run_id=run.id, status="pending")


async def test_a_pause_ends_the_ag_ui_run_with_the_interrupt_and_resume_streams_the_same_run():
    agent = await sync_to_async(approval_agent)()
    first, events = await paused(agent)

    assert_well_formed(events)
    interrupt = await pending(first)
    relayed, finished = events[-2], events[-1]
    assert relayed["type"] == "CUSTOM" and relayed["name"] == "asteros.interrupt"
    assert relayed["value"]["status"] == "pending"
    assert finished["type"] == "RUN_FINISHED" and finished["runId"] == first["runId"]
    outcome = finished["outcome"]
    assert outcome["type"] == "interrupt" and "result" not in finished
    (wire,) = outcome["interrupts"]
    assert wire["id"] == str(interrupt.id) and wire["reason"] == "tool_approval"
    assert wire["toolCallId"] == interrupt.request["toolCallId"]
    assert wire["metadata"]["asteros"] == {"kind": "approval", "payload": interrupt.request}
    assert wire["responseSchema"]["properties"]["decision"]["enum"] == ["approve", "reject", "edit"]
    assert "calculator" in wire["message"]
    assert not any(e["type"] == "TOOL_CALL_RESULT" for e in events)
    # A translation in the door: the stored log has no RUN_FINISHED at the pause.
    stored = await sync_to_async(assert_gapless_log)(interrupt.run_id)
    assert not any(e["type"] == "RUN_FINISHED" for e in stored)

    second = resume_body(first, approve(str(interrupt.id)))
    response, frames = await post(f"/agui/agents/{agent.id}", second)

    assert response.status_code == 200 and response["X-Run-ID"] == str(interrupt.run_id)
    events = events_of(frames)
    assert_well_formed(events)
    assert events[0]["runId"] == second["runId"] and events[0]["threadId"] == first["threadId"]
    assert events[2]["type"] == "CUSTOM" and events[2]["value"]["status"] == "resumed"
    assert [e["content"] for e in events if e["type"] == "TOOL_CALL_RESULT"] == ["42"]
    finished = events[-1]
    assert finished["runId"] == second["runId"] and finished["outcome"] == {"type": "success"}
    assert finished["result"] == "The result is 42."
    total = await sync_to_async(Run.objects.get)(id=interrupt.run_id)
    # A resuming AG-UI run reports only what the run used after the pause (the core records a
    # run's tokens when it finishes, so all of them here).
    assert 0 < finished["usage"][0]["totalTokens"] <= total.input_tokens + total.output_tokens
    ids = [seq for seq, _ in frames if seq is not None]
    assert ids and min(ids) > len(stored), "only what follows the pause"

    run = await sync_to_async(Run.objects.get)(id=interrupt.run_id)
    assert run.status == RunStatus.SUCCEEDED and run.output == "The result is 42."
    assert await sync_to_async(Run.objects.count)() == 1, "the same run went on; no new run"
    stored = await sync_to_async(assert_gapless_log)(run.id)
    assert [e["type"] for e in stored].count("RUN_STARTED") == 1
    interrupt = await sync_to_async(Interrupt.objects.get)(id=interrupt.id)
    assert (interrupt.status, interrupt.decision) == ("approved", "approve")

    # The same resume again (a client that lost its stream) reads that continuation again.
    response, frames = await post(f"/agui/agents/{agent.id}", second)
    assert response.status_code == 200 and events_of(frames)[-1]["result"] == "The result is 42."
    # A new AG-UI run answering it again is a conflict.
    response, _ = await post(f"/agui/agents/{agent.id}", resume_body(first, approve(str(interrupt.id))))
    assert response.status_code == 409 and json.loads(response.content)["error"]["code"] == "already_resolved"


def test_the_translator_closes_what_is_open_and_ends_the_ag_ui_run_at_a_pause():
    translator = AGUITranslator("t", "r1")
    translator.open("internal")
    translator.translate({"type": "TOOL_CALL_START", "toolCallId": "c1", "toolCallName": "calculator"})
    pause = {
        "type": "CUSTOM",
        "name": "asteros.interrupt",
        "value": {
            "status": "pending",
            "interrupts": [
                {
                    "id": "i1",
                    "kind": "question",
                    "request": {"toolCallId": "c1", "question": "Which city?"},
                    "status": "pending",
                    "expiresAt": None,
                }
            ],
        },
    }

    wire = translator.translate(pause)

    assert [e["type"] for e in wire] == ["CUSTOM", "TOOL_CALL_END", "RUN_FINISHED"]
    assert wire[0]["value"]["interrupts"][0]["id"] == "i1" and "expiresAt" not in wire[0]["value"]["interrupts"][0]
    assert wire[-1]["runId"] == "r1" and wire[-1]["outcome"]["type"] == "interrupt"
    (interrupt,) = wire[-1]["outcome"]["interrupts"]
    assert interrupt == {
        "id": "i1",
        "reason": "question",
        "message": "Which city?",
        "toolCallId": "c1",
        "responseSchema": {
            "type": "object",
            "properties": {"decision": {"enum": ["answer", "reject"]}, "message": {"type": "string"}, "answer": {}},
        },
        "metadata": {"asteros": {"kind": "question", "payload": {"toolCallId": "c1", "question": "Which city?"}}},
    }
    assert (
        translator.closed
        and translator.translate({"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "x"}) == []
    )
    # A resumed pause is not a pause: it passes as the CUSTOM event it is.
    resumed = AGUITranslator("t", "r2")
    resumed.open()
    assert [e["type"] for e in resumed.translate({**pause, "value": {"status": "resumed", "interrupts": []}})] == [
        "CUSTOM"
    ]


def test_a_resumed_ag_ui_run_counts_only_the_tokens_used_since_the_pause():
    total = [{"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}]
    assert resumed_usage(total, [{"inputTokens": 4, "outputTokens": 1, "totalTokens": 5}]) == [
        {"inputTokens": 6, "outputTokens": 4, "totalTokens": 10}
    ]
    assert resumed_usage(total, None) == total and resumed_usage(total, total) == []


async def test_the_original_run_id_reads_its_stream_again_up_to_the_pause():
    agent = await sync_to_async(approval_agent)()
    first, events = await paused(agent)

    response, frames = await post(f"/agui/agents/{agent.id}", first)

    assert response.status_code == 200
    assert events_of(frames) == events


async def test_edit_and_cancelled_and_a_question_answer():
    agent = await sync_to_async(approval_agent)()
    first, _ = await paused(agent)
    interrupt = await pending(first)
    _, frames = await post(
        f"/agui/agents/{agent.id}",
        resume_body(first, approve(str(interrupt.id), decision="edit", arguments={"expression": "2*3"})),
    )
    assert [e["content"] for e in events_of(frames) if e["type"] == "TOOL_CALL_RESULT"] == ["6"]

    first, _ = await paused(agent)
    interrupt = await pending(first)
    cancelled = {"interruptId": str(interrupt.id), "status": "cancelled", "payload": {"message": "not now"}}
    _, frames = await post(f"/agui/agents/{agent.id}", resume_body(first, cancelled))
    (refused,) = [e["content"] for e in events_of(frames) if e["type"] == "TOOL_CALL_RESULT"]
    assert "refused" in refused and "not now" in refused
    assert (await sync_to_async(Interrupt.objects.get)(id=interrupt.id)).status == "rejected"

    asking = await sync_to_async(question_agent)("Which city?", schema={"type": "string"})
    first, events = await paused(asking, "plan my trip")
    (wire,) = events[-1]["outcome"]["interrupts"]
    assert wire["reason"] == "question" and wire["message"] == "Which city?"
    assert wire["responseSchema"]["properties"]["answer"] == {"type": "string"}
    answer = {"interruptId": wire["id"], "status": "resolved", "payload": {"answer": "Paris"}}
    _, frames = await post(f"/agui/agents/{asking.id}", resume_body(first, answer))
    events = events_of(frames)
    assert [e["content"] for e in events if e["type"] == "TOOL_CALL_RESULT"] == ["Paris"]
    assert events[-1]["outcome"] == {"type": "success"} and "Paris" in events[-1]["result"]


def _bad_entries(interrupt_id: str) -> list[tuple[Any, int, str]]:
    """(resume, status, code) of inputs refused before anything is resolved."""
    return [
        (
            [{"interruptId": str(uuid.uuid4()), "status": "resolved", "payload": {"decision": "approve"}}],
            404,
            "not_found",
        ),
        ([{"interruptId": "not-an-id", "status": "resolved", "payload": {"decision": "approve"}}], 404, "not_found"),
        (
            [{"interruptId": interrupt_id, "status": "resolved", "payload": {"decision": "answer", "answer": 1}}],
            400,
            "invalid_decision",
        ),
        (
            [{"interruptId": interrupt_id, "status": "resolved", "payload": {"decision": "edit"}}],
            400,
            "invalid_decision",
        ),
        ([{"interruptId": interrupt_id, "status": "resolved", "payload": {"decision": 7}}], 400, "invalid_decision"),
        ([{"interruptId": interrupt_id, "status": "resolved"}], 400, "invalid_decision"),
        ([{"interruptId": interrupt_id, "status": "maybe"}], 400, "invalid_input"),
        ([{"status": "resolved"}], 400, "invalid_input"),
        ([{"interruptId": interrupt_id, "status": "resolved", "payload": True}] * 2, 400, "invalid_input"),
        ("not a list", 400, "invalid_input"),
    ]


async def test_bad_resume_entries_are_refused_before_the_stream_and_resolve_nothing():
    agent = await sync_to_async(approval_agent)()
    first, _ = await paused(agent)
    interrupt = await pending(first)

    for resume, status, code in _bad_entries(str(interrupt.id)):
        body = resume_body(first)
        body["resume"] = resume
        response, frames = await post(f"/agui/agents/{agent.id}", body)
        assert (response.status_code, not frames) == (status, True), (resume, response.content)
        error = json.loads(response.content)["error"]
        assert error["code"] == code and error["message"], (resume, error)

    # Without resume, the waiting thread takes nothing else: no run is started behind it.
    response, _ = await post(f"/agui/agents/{agent.id}", agui_body("and now?", threadId=first["threadId"]))
    assert response.status_code == 409
    error = json.loads(response.content)["error"]
    assert error["code"] == "interrupt_pending" and error["details"]["interruptIds"] == [str(interrupt.id)]

    assert await sync_to_async(Run.objects.count)() == 1
    assert (await sync_to_async(Interrupt.objects.get)(id=interrupt.id)).status == "pending"
    assert (await sync_to_async(Run.objects.get)(id=interrupt.run_id)).status == RunStatus.INTERRUPTED


async def test_an_interrupt_of_another_thread_or_agent_is_not_found_here():
    agent = await sync_to_async(approval_agent)()
    other_agent = await sync_to_async(approval_agent)()
    first, _ = await paused(agent)
    interrupt = await pending(first)
    elsewhere, _ = await paused(agent, "what is 6*7 again?")

    response, _ = await post(f"/agui/agents/{agent.id}", resume_body(elsewhere, approve(str(interrupt.id))))
    assert response.status_code == 404
    body = resume_body(first, approve(str(interrupt.id)))
    response, _ = await post(f"/agui/agents/{other_agent.id}", body)
    assert response.status_code == 404
    assert (await sync_to_async(Interrupt.objects.get)(id=interrupt.id)).status == "pending"


async def test_every_waiting_interrupt_must_be_answered():
    agent = await sync_to_async(approval_agent)(
        parameters={
            "rules": [
                {"when": ".", "call": "calculator", "arguments": {"expression": "6*7"}},
                {"when": ".", "call": "calculator", "arguments": {"expression": "1+1"}},
            ]
        }
    )
    first, events = await paused(agent)
    waiting = events[-1]["outcome"]["interrupts"]
    if len(waiting) < 2:
        pytest.skip("the scripted model made one call per turn")
    response, _ = await post(f"/agui/agents/{agent.id}", resume_body(first, approve(waiting[0]["id"])))
    assert response.status_code == 400
    error = json.loads(response.content)["error"]
    assert error["code"] == "invalid_resume" and error["details"]["missing"] == [waiting[1]["id"]]


async def test_resuming_needs_run_on_that_agent(settings_options):
    agent = await sync_to_async(approval_agent)()
    first, _ = await paused(agent)
    interrupt = await pending(first)
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    _, reader = await sync_to_async(APIKey.generate)("reader", ["read"])
    _, elsewhere = await sync_to_async(APIKey.generate)("elsewhere", ["run"], ["agents:other-agent"])
    _, runner = await sync_to_async(APIKey.generate)("runner", ["run"], [f"agents:{agent.id}"])
    path = f"/agui/agents/{agent.id}"
    body = resume_body(first, approve(str(interrupt.id)))

    assert (await post(path, body))[0].status_code == 401
    assert (await post(path, body, Authorization=f"Bearer {reader}"))[0].status_code == 403
    assert (await post(path, body, **{"X-API-Key": elsewhere}))[0].status_code == 403
    assert (await sync_to_async(Interrupt.objects.get)(id=interrupt.id)).status == "pending"

    response, frames = await post(path, body, Authorization=f"Bearer {runner}")
    assert response.status_code == 200 and events_of(frames)[-1]["outcome"] == {"type": "success"}


async def test_the_websocket_door_pauses_and_resumes_the_same_way():
    agent = await sync_to_async(approval_agent)()
    comm = communicator(f"/ws/agui/agents/{agent.id}/")
    assert (await comm.connect(timeout=TIMEOUT))[0]
    first = agui_body("what is 6*7?")
    await comm.send_json_to(first)
    events = await until(comm, lambda e: e["type"] in ("RUN_FINISHED", "RUN_ERROR"))
    (wire,) = events[-1]["outcome"]["interrupts"]

    await comm.send_json_to(resume_body(first, {"interruptId": wire["id"], "status": "resolved", "payload": {}}))
    refused = await comm.receive_json_from(timeout=TIMEOUT)
    assert refused["type"] == "RUN_ERROR" and refused["code"] == "invalid_decision"

    await comm.send_json_to(resume_body(first, approve(wire["id"])))
    events = await until(comm, lambda e: e["type"] in ("RUN_FINISHED", "RUN_ERROR"))
    assert [e["content"] for e in events if e["type"] == "TOOL_CALL_RESULT"] == ["42"]
    assert events[-1]["outcome"] == {"type": "success"} and events[-1]["result"] == "The result is 42."
    await comm.disconnect()


@pytest.mark.slow
def test_the_official_ag_ui_client_pauses_and_resumes(asteros_server: LiveServer):
    report = run_client_script("agui_interrupts.mjs", asteros_server)
    paused_run, resumed = report["paused"], report["resumed"]
    assert paused_run["finished"]["outcome"] == "interrupt"
    (interrupt,) = paused_run["finished"]["interrupts"]
    assert interrupt["reason"] == "tool_approval" and interrupt["id"]
    assert paused_run["pendingInterrupts"] == [interrupt["id"]]
    assert resumed["types"][0] == "RUN_STARTED" and resumed["types"][-1] == "RUN_FINISHED"
    assert resumed["toolResults"] == ["42"]
    assert resumed["finished"]["outcome"] == "success"
    assert resumed["lastText"] == "The result is 42."
    assert resumed["pendingInterrupts"] == []
