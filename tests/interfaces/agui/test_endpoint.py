"""The AG-UI endpoint in-process (Django's AsyncClient), runs executed by the embedded worker.

The official client against a live server is in test_live_client.py; here the same contract is
checked on the wire format itself, plus what a client cannot see (sessions, runs, auth).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from cosmos.models import Agent, Run, Session
from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_star, make_workflow, workflow_definition

SETTINGS_KEY = "agui-settings-key-0123456789abcdef"


def parse_sse(raw: bytes) -> list[tuple[int | None, dict]]:
    """(id or None, event) of each frame: LF only, one ``data:`` line per event, no nulls."""
    assert b"\r" not in raw
    text = raw.decode()
    assert text.endswith("\n\n")
    frames: list[tuple[int | None, dict]] = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            continue
        data = [line[6:] for line in lines if line.startswith("data: ")]
        ids = [int(line[4:]) for line in lines if line.startswith("id: ")]
        assert len(data) == 1 and len(lines) == len(data) + len(ids), lines
        assert "null" not in data[0].replace('"null"', ""), data[0]
        frames.append((ids[0] if ids else None, json.loads(data[0])))
    return frames


def agui_body(text: str = "hello", **fields: Any) -> dict:
    return {
        "threadId": fields.pop("threadId", f"thread-{uuid.uuid4().hex[:10]}"),
        "runId": fields.pop("runId", str(uuid.uuid4())),
        "messages": fields.pop("messages", [{"id": "u1", "role": "user", "content": text}]),
        **fields,
    }


async def post(path: str, body: Any, **headers: str) -> tuple[Any, list[tuple[int | None, dict]]]:
    client = AsyncClient()
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    response = await client.post(path, data, content_type="application/json", headers=headers)
    if not response.streaming:
        return response, []
    return response, parse_sse(b"".join([chunk async for chunk in response.streaming_content]))


def events_of(frames: list[tuple[int | None, dict]]) -> list[dict]:
    return [event for _, event in frames]


def assert_well_formed(events: list[dict]) -> None:
    types = [e["type"] for e in events]
    assert types[0] == "RUN_STARTED" and types[-1] in ("RUN_FINISHED", "RUN_ERROR"), types
    assert sum(t in ("RUN_FINISHED", "RUN_ERROR") for t in types) == 1, types
    for start, end, key in (
        ("TEXT_MESSAGE_START", "TEXT_MESSAGE_END", "messageId"),
        ("TOOL_CALL_START", "TOOL_CALL_END", "toolCallId"),
        ("STEP_STARTED", "STEP_FINISHED", "stepName"),
    ):
        opened = [e[key] for e in events if e["type"] == start]
        closed = [e[key] for e in events if e["type"] == end]
        assert sorted(opened) == sorted(closed), (start, opened, closed)
    for call_id in {e["toolCallId"] for e in events if e["type"] == "TOOL_CALL_START"}:
        args = "".join(e["delta"] for e in events if e["type"] == "TOOL_CALL_ARGS" and e["toolCallId"] == call_id)
        assert not args or isinstance(json.loads(args), dict), args


@pytest.mark.django_db(transaction=True)
async def test_a_run_streams_as_ag_ui_and_its_thread_is_a_session(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply": "Hi there, {input}!"})
    body = agui_body("Ada", state={"theme": "dark"}, forwardedProps={"ui": "test"})
    response, frames = await post(f"/agui/agents/{agent.id}", body)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    events = events_of(frames)
    assert_well_formed(events)
    assert events[0]["threadId"] == body["threadId"] and events[0]["runId"] == body["runId"]
    assert events[1] == {"type": "STATE_SNAPSHOT", "snapshot": {"theme": "dark"}}
    assert "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT") == "Hi there, Ada!"
    finished = events[-1]
    assert finished["type"] == "RUN_FINISHED" and finished["runId"] == body["runId"]
    assert finished["outcome"] == {"type": "success"} and finished["result"] == "Hi there, Ada!"
    assert finished["usage"][0]["totalTokens"] > 0
    ids = [seq for seq, _ in frames if seq is not None]
    assert ids == sorted(ids) and frames[-1][0] == ids[-1], "the last frame of each stored event carries its seq"

    run = await sync_to_async(Run.objects.get)(id=response["X-Run-ID"])
    assert str(run.id) == body["runId"] and run.origin == "agui" and run.session_id == body["threadId"]
    assert run.metadata["agui"]["forwardedProps"] == {"ui": "test"}
    session = await sync_to_async(Session.objects.get)(id=body["threadId"])
    assert session.state == {"theme": "dark"}

    # The next run on the thread without "state" opens with the thread's saved state.
    follow_up = agui_body("again", threadId=body["threadId"], runId="not-a-uuid-run-2")
    response, frames = await post(f"/agui/agents/{agent.id}", follow_up)
    events = events_of(frames)
    assert events[0]["runId"] == "not-a-uuid-run-2" and events[-1]["runId"] == "not-a-uuid-run-2"
    assert events[1] == {"type": "STATE_SNAPSHOT", "snapshot": {"theme": "dark"}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("", 400, "malformed_request"),
        ("{not json", 400, "malformed_request"),
        ({"runId": "r", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_input"),
        ({"threadId": "t", "runId": "r", "messages": [{"role": "wizard"}]}, 400, "invalid_input"),
        (
            {"threadId": "t", "runId": "r", "messages": [{"role": "tool", "toolCallId": "x", "content": "y"}]},
            400,
            "invalid_input",
        ),
    ],
)
async def test_bad_bodies_are_4xx_before_any_stream(body, status, code):
    agent = await sync_to_async(make_agent)()
    response, frames = await post(f"/agui/agents/{agent.id}", body)
    assert response.status_code == status and not response.streaming and not frames
    error = json.loads(response.content)["error"]
    assert error["code"] == code and error["message"]
    assert await sync_to_async(Run.objects.count)() == 0


@pytest.mark.django_db(transaction=True)
async def test_unknown_disabled_and_wrong_method_are_refused_and_get_describes():
    agent = await sync_to_async(make_agent)()
    response, _ = await post("/agui/agents/no-such-agent", agui_body())
    assert response.status_code == 404 and json.loads(response.content)["error"]["code"] == "not_found"
    await sync_to_async(Agent.objects.filter(pk=agent.pk).update)(enabled=False)
    response, _ = await post(f"/agui/agents/{agent.id}", agui_body())
    assert response.status_code == 422
    client = AsyncClient()
    response = await client.put(f"/agui/agents/{agent.id}", "{}", content_type="application/json")
    assert response.status_code == 405 and "POST" in response["Allow"]
    response = await client.get(f"/agui/agents/{agent.id}")
    assert response.status_code == 200 and response.json()["endpoint"] == f"/agui/agents/{agent.id}"
    response = await client.get("/agui/")
    assert response.status_code == 200 and response.json()["protocolVersion"] == "1.0"


@pytest.mark.django_db(transaction=True)
async def test_auth_is_checked_before_the_stream(settings_options, embedded_worker):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    agent = await sync_to_async(make_agent)()
    _, reader = await sync_to_async(APIKey.generate)("reader", ["read"])
    _, elsewhere = await sync_to_async(APIKey.generate)("elsewhere", ["run"], ["agents:other-agent"])
    _, runner = await sync_to_async(APIKey.generate)("runner", ["run"], [f"agents:{agent.id}"])
    path = f"/agui/agents/{agent.id}"
    assert (await post(path, agui_body()))[0].status_code == 401
    assert (await post(path, agui_body(), Authorization="Bearer wrong"))[0].status_code == 401
    assert (await post(path, agui_body(), Authorization=f"Bearer {reader}"))[0].status_code == 403
    assert (await post(path, agui_body(), **{"X-API-Key": elsewhere}))[0].status_code == 403
    response, frames = await post(path, agui_body(), Authorization=f"Bearer {runner}")
    assert response.status_code == 200 and events_of(frames)[-1]["type"] == "RUN_FINISHED"


@pytest.mark.django_db(transaction=True)
async def test_a_frontend_tool_round_trip(embedded_worker):
    agent = await sync_to_async(make_agent)(
        tools=["calculator"],
        parameters={"rules": [{"when": r"background to (\w+)", "call": "change_background", "arguments": {"c": "$1"}}]},
    )
    tool = {"name": "change_background", "description": "Set the page background.", "parameters": {"type": "object"}}
    first = agui_body("set the background to teal", tools=[tool])
    _, frames = await post(f"/agui/agents/{agent.id}", first)
    events = events_of(frames)
    assert_well_formed(events)
    call = next(e for e in events if e["type"] == "TOOL_CALL_START")
    assert call["toolCallName"] == "change_background"
    assert not any(e["type"] == "TOOL_CALL_RESULT" for e in events), "a frontend tool is the client's to answer"
    assert events[-1]["outcome"] == {"type": "success", "pendingToolCallIds": [call["toolCallId"]]}
    arguments = "".join(e["delta"] for e in events if e["type"] == "TOOL_CALL_ARGS")
    assert json.loads(arguments) == {"c": "teal"}

    second = agui_body(
        threadId=first["threadId"],
        tools=[tool],
        messages=[
            *first["messages"],
            {
                "id": "a1",
                "role": "assistant",
                "toolCalls": [
                    {
                        "id": call["toolCallId"],
                        "type": "function",
                        "function": {"name": "change_background", "arguments": arguments},
                    }
                ],
            },
            {"id": "t1", "role": "tool", "toolCallId": call["toolCallId"], "content": "background is teal"},
        ],
    )
    _, frames = await post(f"/agui/agents/{agent.id}", second)
    events = events_of(frames)
    assert_well_formed(events)
    text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == "The result is background is teal."
    assert events[-1]["outcome"] == {"type": "success"}


@pytest.mark.django_db(transaction=True)
async def test_the_same_run_id_reattaches_and_last_event_id_resumes(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply_tokens": 12, "tokens_per_second": 100})
    body = agui_body()
    _, first = await post(f"/agui/agents/{agent.id}", body)
    _, again = await post(f"/agui/agents/{agent.id}", body)
    assert events_of(again) == events_of(first)
    assert await sync_to_async(Run.objects.count)() == 1
    ids = [seq for seq, _ in first if seq is not None]
    assert len(ids) > 4, ids
    middle = ids[len(ids) // 2]
    _, resumed = await post(f"/agui/agents/{agent.id}", body, **{"Last-Event-ID": str(middle)})
    # A frame without an id belongs to the stored event of the next frame that has one.
    groups, pending = [], 0
    for seq, _ in reversed(first):
        pending = seq if seq is not None else pending
        groups.append(pending)
    groups.reverse()
    assert resumed == [frame for frame, group in zip(first, groups, strict=True) if group > middle]
    other_thread = dict(body, threadId="another-thread")
    response, _ = await post(f"/agui/agents/{agent.id}", other_thread)
    assert response.status_code == 409
    other_agent = await sync_to_async(make_agent)()
    response, _ = await post(f"/agui/agents/{other_agent.id}", body)
    assert response.status_code == 409 and json.loads(response.content)["error"]["code"] == "run_id_in_use"


@pytest.mark.django_db(transaction=True)
async def test_a_failure_after_the_stream_opens_is_run_error(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"fail": "the model is down", "error_code": "model_down"})
    response, frames = await post(f"/agui/agents/{agent.id}", agui_body())
    events = events_of(frames)
    assert response.status_code == 200
    assert_well_formed(events)
    assert events[-1] == {"type": "RUN_ERROR", "message": "the model is down", "code": "model_down"}


@pytest.mark.django_db(transaction=True)
async def test_a_workflow_streams_state_and_the_thread_keeps_it(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply": "noted: {input}"})
    workflow = await sync_to_async(make_workflow)(definition=workflow_definition(agent.id))
    body = agui_body("plan", state={"budget": 3})
    _, frames = await post(f"/agui/workflows/{workflow.id}", body)
    events = events_of(frames)
    assert_well_formed(events)
    assert [e["type"] for e in events].count("STATE_DELTA") >= 1
    assert any(e["type"] == "SUBAGENT_STARTED" and e["name"] == "step-1" for e in events)
    session = await sync_to_async(Session.objects.get)(id=body["threadId"])
    assert session.state["state"]["budget"] == 3 and session.state["steps"]["step-1"]["status"] == "succeeded"
    # What the client sends back (the document the workflow published) seeds the next run's state.
    again = agui_body("again", threadId=body["threadId"], state=session.state)
    _, frames = await post(f"/agui/workflows/{workflow.id}", again)
    snapshots = [e["snapshot"] for e in events_of(frames) if e["type"] == "STATE_SNAPSHOT"]
    assert snapshots[-1]["state"] == {"budget": 3}


@pytest.mark.django_db(transaction=True)
async def test_a_star_streams_its_members_as_subagents(embedded_worker):
    leader = await sync_to_async(make_agent)(parameters={"reply": "summary"})
    worker = await sync_to_async(make_agent)(parameters={"reply": "worked"})
    star = await sync_to_async(make_star)(leader=leader, workers=[worker], mode="broadcast")
    _, frames = await post(f"/agui/stars/{star.id}", agui_body("team up"))
    events = events_of(frames)
    assert_well_formed(events)
    started = [e for e in events if e["type"] == "SUBAGENT_STARTED"]
    ended = [e for e in events if e["type"] in ("SUBAGENT_FINISHED", "SUBAGENT_ERROR")]
    assert started and {e["subagentRunId"] for e in started} == {e["subagentRunId"] for e in ended}
    assert all(e["name"] for e in started)
    assert events[-1]["type"] == "RUN_FINISHED"
