"""People in the loop over A2A, with the official a2a-sdk client against a live AsterOS.

A run that waits for a person is an input-required task whose status message asks (a text part)
and carries the interrupts (a data part); a message to that task resolves them and the same task
goes on to its end.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError
from google.protobuf import json_format, struct_pb2

from interfaces.a2a.errors import InvalidParamsError as ServerInvalidParams
from interfaces.a2a.protocol import IncomingMessage
from interfaces.a2a.replies import Pending, Reply, read_reply
from interfaces.a2a.translate import TaskProjection

from .conftest import AUTH_KEY
from .helpers import (
    BINDINGS,
    artifact_texts,
    base,
    collect,
    final_state,
    fold_artifacts,
    message,
    sdk_client,
    state_name,
)
from .seed import READ_KEY, RUN_KEY

slow = pytest.mark.slow  # the tests against the live server

INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
COMPLETED = "TASK_STATE_COMPLETED"
VERSION = {"A2A-Version": "1.0", "Content-Type": "application/json"}


def data_message(data: dict[str, Any], *, task_id: str, message_id: str = "") -> pb.Message:
    value = json_format.ParseDict(data, struct_pb2.Value())
    return pb.Message(
        message_id=message_id or str(uuid.uuid4()), role=pb.ROLE_USER, parts=[pb.Part(data=value)], task_id=task_id
    )


def asked(status: pb.TaskStatus) -> tuple[str, list[dict[str, Any]]]:
    """The status message's text, and the interrupts of its data part."""
    parts = status.message.parts
    text = "".join(p.text for p in parts if p.WhichOneof("content") == "text")
    data = [json_format.MessageToDict(p.data) for p in parts if p.WhichOneof("content") == "data"]
    return text, data[0]["interrupts"] if data else []


def last_task_id(events: list[pb.StreamResponse]) -> str:
    return events[0].task.id


async def send(client, msg: pb.Message) -> list[pb.StreamResponse]:
    return await collect(client.send_message(pb.SendMessageRequest(message=msg)))


def rpc_send(params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": params}


def raw_reply(task_id: str, part: dict[str, Any]) -> dict[str, Any]:
    return {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [part], "taskId": task_id}}


@slow
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "streaming"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_approval_is_asked_then_a_data_part_approves_it(a2a_server, binding, streaming):
    async with sdk_client(base(a2a_server.url, object_id="approver"), binding, streaming=streaming) as client:
        events = await send(client, message("what is 6*7?"))
        task_id = last_task_id(events)
        assert final_state(events) == INPUT_REQUIRED
        if streaming:
            assert events[-1].HasField("status_update"), "the input-required status update ends the stream"
        paused = await client.get_task(pb.GetTaskRequest(id=task_id))
        assert state_name(paused.status.state) == INPUT_REQUIRED
        text, (interrupt,) = asked(paused.status)
        assert text.startswith('Approve calling calculator with {"expression": "6*7"}?')
        assert interrupt["kind"] == "approval" and interrupt["status"] == "pending"
        assert interrupt["request"]["tool"] == "calculator"
        assert interrupt["request"]["arguments"] == {"expression": "6*7"}
        assert interrupt["decisions"] == ["approve", "reject", "edit"] and interrupt["taskId"] == task_id
        if streaming:
            assert asked(events[-1].status_update.status) == asked(paused.status), "the stream and GetTask agree"

        reply = data_message({"decision": "approve", "interruptId": interrupt["id"]}, task_id=task_id)
        resumed = await send(client, reply)

        assert final_state(resumed) == COMPLETED
        assert resumed[0].task.id == task_id, "the same task goes on"
        done = await client.get_task(pb.GetTaskRequest(id=task_id))
    assert state_name(done.status.state) == COMPLETED
    assert "The result is 42." in artifact_texts(done).values()
    roles = [(m.role, m.message_id) for m in done.history]
    assert roles[0][0] == pb.ROLE_USER and (pb.ROLE_USER, reply.message_id) in roles, "the reply joins the history"
    assert roles[-1][0] == pb.ROLE_AGENT and "42" in done.history[-1].parts[0].text
    if streaming:
        # The resumed stream starts with the task as it is (working) and folds to the same answer.
        assert state_name(resumed[0].task.status.state) in ("TASK_STATE_WORKING", COMPLETED)
        states = [state_name(e.status_update.status.state) for e in resumed if e.HasField("status_update")]
        assert INPUT_REQUIRED not in states
        assert fold_artifacts(resumed) == artifact_texts(done)


@slow
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_question_is_answered_by_text(a2a_server, binding):
    async with sdk_client(base(a2a_server.url, object_id="asker"), binding, streaming=True) as client:
        events = await send(client, message("plan my trip"))
        task_id = last_task_id(events)
        assert final_state(events) == INPUT_REQUIRED
        text, (interrupt,) = asked(events[-1].status_update.status)
        assert text == "Which city?" and interrupt["kind"] == "question"
        assert interrupt["decisions"] == ["answer", "reject"]

        resumed = await send(client, message("Paris", task_id=task_id))
        done = await client.get_task(pb.GetTaskRequest(id=task_id))

    assert final_state(resumed) == COMPLETED
    assert any("Paris" in text for text in artifact_texts(done).values())


@slow
async def test_an_answer_against_the_schema_is_read_as_json_and_checked(a2a_server):
    async with sdk_client(base(a2a_server.url, object_id="counter"), "JSONRPC") as client:
        task_id = last_task_id(await send(client, message("count")))
        with pytest.raises(InvalidParamsError, match="schema"):
            await send(client, message("many", task_id=task_id))
        done = await send(client, message("3", task_id=task_id))
    assert final_state(done) == COMPLETED and any("3" in t for t in artifact_texts(done[0].task).values())


@slow
async def test_no_in_text_rejects_and_the_model_reads_why(a2a_server):
    async with sdk_client(base(a2a_server.url, object_id="approver"), "HTTP+JSON", streaming=True) as client:
        task_id = last_task_id(await send(client, message("what is 6*7?")))
        resumed = await send(client, message("No, not today", task_id=task_id))
        done = await client.get_task(pb.GetTaskRequest(id=task_id))
    assert final_state(resumed) == COMPLETED
    (answer,) = artifact_texts(done).values()
    assert "refused" in answer and "The reviewer said: not today" in answer


@slow
@pytest.mark.parametrize("binding", BINDINGS)
async def test_bad_decisions_are_refused_and_a_second_reply_too(a2a_server, binding):
    async with sdk_client(base(a2a_server.url, object_id="approver"), binding) as client:
        task_id = last_task_id(await send(client, message("what is 6*7?")))
        for bad in (
            data_message({"decision": "maybe"}, task_id=task_id),
            data_message({"decision": "answer", "answer": "x"}, task_id=task_id),
            data_message({"decision": "edit"}, task_id=task_id),  # edit needs arguments
            data_message({"decision": "approve", "interruptId": str(uuid.uuid4())}, task_id=task_id),
            data_message({"amount": 3}, task_id=task_id),
            message("perhaps", task_id=task_id),
        ):
            with pytest.raises(InvalidParamsError):
                await send(client, bad)
        still = await client.get_task(pb.GetTaskRequest(id=task_id))
        assert state_name(still.status.state) == INPUT_REQUIRED, "a refused reply changes nothing"

        approve = data_message({"decision": "edit", "arguments": {"expression": "2*3"}}, task_id=task_id)
        done = await send(client, approve)
        assert final_state(done) == COMPLETED and "The result is 6." in artifact_texts(done[0].task).values()
        again = await send(client, approve)  # the same message again: applied once, the task as it is
        assert again[0].task.id == task_id and final_state(again) == COMPLETED
        with pytest.raises(UnsupportedOperationError):
            await send(client, data_message({"decision": "approve"}, task_id=task_id))


@slow
def test_the_bindings_error_shapes_for_a_bad_decision(a2a_server):
    url = base(a2a_server.url, object_id="approver")
    with httpx.Client(timeout=30, headers=VERSION) as http:
        started = http.post(f"{url}/message:send", json={"message": message_json("what is 6*7?")}).json()
        task_id = started["task"]["id"]
        assert started["task"]["status"]["state"] == INPUT_REQUIRED

        rest = http.post(f"{url}/message:send", json=raw_reply(task_id, {"data": {"decision": "maybe"}}))
        rpc = http.post(url, json=rpc_send(raw_reply(task_id, {"data": {"decision": "edit", "arguments": [1]}})))
        blank = http.post(f"{url}/message:send", json=raw_reply(task_id, {"text": "  "}))

    assert rest.status_code == 400
    error = rest.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "approve, reject, edit" in error["message"]
    violations = next(d for d in error["details"] if d["@type"].endswith("BadRequest"))["fieldViolations"]
    assert violations[0]["field"] == "message.parts[0].data.decision"
    assert rpc.status_code == 200 and rpc.json()["id"] == 7
    assert rpc.json()["error"]["code"] == -32602  # resolve's own check: edit takes an object
    assert blank.status_code == 400 and blank.json()["error"]["status"] == "INVALID_ARGUMENT"


def message_json(text: str) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}


@slow
@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_list_and_cancel_an_input_required_task(a2a_server, binding):
    url = base(a2a_server.url, object_id="approver")
    async with sdk_client(url, binding, streaming=True) as client:
        task_id = last_task_id(await send(client, message("what is 6*7?")))
        events = await collect(client.subscribe(pb.SubscribeToTaskRequest(id=task_id)))
        assert len(events) == 1 and state_name(events[0].task.status.state) == INPUT_REQUIRED
        assert asked(events[0].task.status)[1][0]["kind"] == "approval"
        listed = await client.list_tasks(pb.ListTasksRequest(status=pb.TASK_STATE_INPUT_REQUIRED, page_size=100))
        assert task_id in {t.id for t in listed.tasks}
        assert all(state_name(t.status.state) == INPUT_REQUIRED for t in listed.tasks)
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=task_id))
        assert state_name(cancelled.status.state) == "TASK_STATE_CANCELED"
        with pytest.raises(UnsupportedOperationError):
            await send(client, data_message({"decision": "approve"}, task_id=task_id))


@slow
async def test_resolving_needs_the_run_scope_and_the_task_of_the_caller(a2a_auth_server):
    url = base(a2a_auth_server.url, object_id="approver")
    admin = {"Authorization": f"Bearer {AUTH_KEY}"}
    async with sdk_client(url, "JSONRPC", headers=admin) as client:
        task_id = last_task_id(await send(client, message("what is 6*7?")))
    reply = raw_reply(task_id, {"data": {"decision": "approve"}})

    with httpx.Client(timeout=30, headers=VERSION) as http:
        anonymous = http.post(f"{url}/message:send", json=reply)
        reader = {"Authorization": f"Bearer {READ_KEY}"}
        rpc_denied = http.post(url, json=rpc_send(reply), headers=reader)
        rest_denied = http.post(f"{url}/message:send", json=reply, headers=reader)

    assert anonymous.status_code == 401 and anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    assert rpc_denied.status_code == 403 and rpc_denied.json()["error"]["data"][0]["reason"] == "PERMISSION_DENIED"
    assert rest_denied.status_code == 403 and rest_denied.json()["error"]["status"] == "PERMISSION_DENIED"
    async with sdk_client(url, "HTTP+JSON", headers={"Authorization": f"Bearer {RUN_KEY}"}) as other:
        with pytest.raises(TaskNotFoundError):  # a key that may run, but not someone else's task
            await send(other, data_message({"decision": "approve"}, task_id=task_id))
    async with sdk_client(url, "HTTP+JSON", headers=admin) as client:
        assert state_name((await client.get_task(pb.GetTaskRequest(id=task_id))).status.state) == INPUT_REQUIRED
        done = await send(client, data_message({"decision": "approve"}, task_id=task_id))
    assert final_state(done) == COMPLETED


# --- reading a reply, and the projection of a pause (no server)

APPROVAL = Pending("i-1", "approval", {"toolCallId": "c1", "tool": "calculator", "arguments": {"expression": "6*7"}})
QUESTION = Pending("i-2", "question", {"toolCallId": "c2", "question": "How many?", "schema": {"type": "integer"}})


def reply_of(*parts: dict[str, Any]) -> IncomingMessage:
    return IncomingMessage(message_id="m", parts=list(parts), task_id="t")


@pytest.mark.parametrize(
    ("parts", "pending", "expected"),
    [
        ([{"text": "yes"}], [APPROVAL], [Reply("i-1", "approve")]),
        ([{"text": "Approved: go ahead"}], [APPROVAL], [Reply("i-1", "approve", message="go ahead")]),
        ([{"text": "no, too much"}], [APPROVAL], [Reply("i-1", "reject", message="too much")]),
        ([{"text": "3"}], [QUESTION], [Reply("i-2", "answer", answer=3)]),
        ([{"text": "many"}], [QUESTION], [Reply("i-2", "answer", answer="many")]),
        ([{"data": {"n": 3}}], [QUESTION], [Reply("i-2", "answer", answer={"n": 3})]),
        (
            [{"data": {"decision": "edit", "arguments": {"expression": "1"}, "message": "smaller"}}],
            [APPROVAL],
            [Reply("i-1", "edit", arguments={"expression": "1"}, message="smaller")],
        ),
        (
            [
                {"data": {"decision": "reject", "interruptId": "i-1"}},
                {"data": {"decision": "answer", "answer": 2, "interruptId": "i-2"}},
            ],
            [APPROVAL, QUESTION],
            [Reply("i-1", "reject"), Reply("i-2", "answer", answer=2)],
        ),
    ],
)
def test_a_reply_reads_as_decisions(parts, pending, expected):
    assert read_reply(reply_of(*parts), pending) == expected


@pytest.mark.parametrize(
    ("parts", "pending", "field"),
    [
        ([{"text": "maybe"}], [APPROVAL], "message.parts"),
        ([{"data": {"amount": 1}}], [APPROVAL], "message.parts[0].data"),
        ([{"data": {"decision": 3}}], [APPROVAL], "message.parts[0].data.decision"),
        ([{"data": {"decision": "answer"}}], [APPROVAL], "message.parts[0].data.decision"),
        ([{"data": {"decision": "approve", "interruptId": "nope"}}], [APPROVAL], "message.parts[0].data.interruptId"),
        ([{"data": {"decision": "approve", "message": 5}}], [APPROVAL], "message.parts[0].data.message"),
        ([{"text": "yes"}], [APPROVAL, QUESTION], "message.parts"),  # which one?
        ([{"data": {"decision": "approve"}}], [APPROVAL, QUESTION], "message.parts[0].data.interruptId"),
        ([{"data": {"decision": "approve"}}, {"data": {"decision": "reject"}}], [APPROVAL], None),
    ],
)
def test_an_unreadable_reply_is_invalid_params_naming_the_field(parts, pending, field):
    with pytest.raises(ServerInvalidParams) as refused:
        read_reply(reply_of(*parts), pending)
    assert refused.value.jsonrpc_code == -32602
    if field is not None:
        assert refused.value.field_violations[0][0] == field


def test_a_pause_and_its_resumption_project_to_input_required_then_working():
    projection = TaskProjection("t", "c")
    interrupt = {"id": "i-1", "kind": "approval", "request": APPROVAL.request, "status": "pending", "expiresAt": None}
    pause = {"type": "CUSTOM", "name": "asteros.interrupt", "value": {"status": "pending", "interrupts": [interrupt]}}
    projection.apply({"type": "RUN_STARTED"})
    (update,) = projection.apply(pause)

    status = update["statusUpdate"]["status"]
    assert status["state"] == "TASK_STATE_INPUT_REQUIRED" and projection.final
    text, data = status["message"]["parts"]
    assert text["text"] == 'Approve calling calculator with {"expression": "6*7"}? (yes or no)'
    assert data["data"]["interrupts"][0] == {
        **interrupt,
        "taskId": "t",
        "decisions": ["approve", "reject", "edit"],
    }
    resumed = {"status": "resumed", "interrupts": [{"id": "i-1", "status": "approved", "decision": "approve"}]}
    (update,) = projection.apply({"type": "CUSTOM", "name": "asteros.interrupt", "value": resumed})
    assert update["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING" and not projection.final
    assert projection.apply({"type": "CUSTOM", "name": "asteros.retry", "value": {}}) == []


def test_a_partly_resolved_pause_asks_only_what_still_waits():
    projection = TaskProjection("t", "c")
    interrupts = [
        {"id": "i-1", "kind": "approval", "request": APPROVAL.request, "status": "pending", "expiresAt": None},
        {"id": "i-2", "kind": "question", "request": QUESTION.request, "status": "pending", "expiresAt": None},
    ]
    projection.apply(
        {"type": "CUSTOM", "name": "asteros.interrupt", "value": {"status": "pending", "interrupts": interrupts}}
    )
    assert projection.status_message["parts"][0]["text"].count("\n") == 1  # both asked

    projection.refresh_pause({"i-1": "approved", "i-2": "pending"})

    text, data = projection.status_message["parts"]
    assert text["text"] == "How many?"
    assert [(i["id"], i["status"]) for i in data["data"]["interrupts"]] == [("i-1", "approved"), ("i-2", "pending")]
    assert projection.state == "TASK_STATE_INPUT_REQUIRED"
