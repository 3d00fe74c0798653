"""The official a2a-sdk client against a live AsterOS, over both bindings, streaming and not."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.client import A2ACardResolver
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from cosmos.kinds import kind_names

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

pytestmark = pytest.mark.slow


async def working(client, task_id: str) -> pb.Task:
    """The task once a worker has picked it up (no longer submitted), polled for at most 10 s."""
    for _ in range(200):
        task = await client.get_task(pb.GetTaskRequest(id=task_id))
        if state_name(task.status.state) != "TASK_STATE_SUBMITTED":
            return task
        await asyncio.sleep(0.05)
    return task


async def test_the_card_resolves_with_both_bindings(a2a_server):
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, base(a2a_server.url)).get_agent_card()
    assert card.name == "Echo" and card.description == "Repeats what you say."
    interfaces = {(i.protocol_binding, i.protocol_version, i.url) for i in card.supported_interfaces}
    assert interfaces == {
        ("JSONRPC", "1.0", base(a2a_server.url)),
        ("HTTP+JSON", "1.0", base(a2a_server.url)),
    }
    assert card.capabilities.streaming and card.capabilities.push_notifications
    assert "calculator" in {skill.name for skill in card.skills}
    assert "text/plain" in card.default_input_modes and "text/plain" in card.default_output_modes


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "streaming"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_sending_gives_a_completed_task_with_the_answer(a2a_server, binding, streaming):
    async with sdk_client(base(a2a_server.url), binding, streaming=streaming) as client:
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("hello there"))))
        assert events[0].HasField("task"), "the first event is the task"
        assert final_state(events) == "TASK_STATE_COMPLETED"
        task_id = events[0].task.id
        task = await client.get_task(pb.GetTaskRequest(id=task_id))
    assert state_name(task.status.state) == "TASK_STATE_COMPLETED"
    assert list(artifact_texts(task).values()) == ["echo: hello there"]
    assert task.context_id and task.history[0].parts[0].text == "hello there"
    if streaming:
        kinds = [event.WhichOneof("payload") for event in events]
        assert kinds[0] == "task" and kinds[-1] == "status_update"
        assert "artifact_update" in kinds
        updates = [e.artifact_update for e in events if e.HasField("artifact_update")]
        assert not updates[0].append and updates[-1].last_chunk and not updates[0].last_chunk
        assert fold_artifacts(events) == artifact_texts(task), "the stream and GetTask agree"
        states = [state_name(e.status_update.status.state) for e in events if e.HasField("status_update")]
        assert states[0] == "TASK_STATE_WORKING" and states[-1] == "TASK_STATE_COMPLETED"
    else:
        assert len(events) == 1 and list(artifact_texts(events[0].task).values()) == ["echo: hello there"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_get_task_with_history_length_and_not_found(a2a_server, binding):
    async with sdk_client(base(a2a_server.url), binding) as client:
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("remember me"))))
        task_id = events[0].task.id
        full = await client.get_task(pb.GetTaskRequest(id=task_id))
        assert [m.role for m in full.history] == [pb.ROLE_USER, pb.ROLE_AGENT]
        last = await client.get_task(pb.GetTaskRequest(id=task_id, history_length=1))
        assert [m.role for m in last.history] == [pb.ROLE_AGENT]
        none = await client.get_task(pb.GetTaskRequest(id=task_id, history_length=0))
        assert not none.history
        with pytest.raises(TaskNotFoundError):
            await client.get_task(pb.GetTaskRequest(id="00000000-0000-0000-0000-000000000000"))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(pb.GetTaskRequest(id="not-a-task"))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancelling_a_finished_task_is_refused(a2a_server, binding):
    async with sdk_client(base(a2a_server.url), binding) as client:
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("done soon"))))
        assert final_state(events) == "TASK_STATE_COMPLETED"
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(pb.CancelTaskRequest(id=events[0].task.id))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancelling_a_running_task(a2a_server, binding):
    url = base(a2a_server.url, object_id="slow")
    async with sdk_client(url, binding, polling=True) as client:
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("take your time"))))
        task = events[0].task
        assert state_name(task.status.state) in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
        assert state_name((await working(client, task.id)).status.state) == "TASK_STATE_WORKING"
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=task.id))
        assert state_name(cancelled.status.state) == "TASK_STATE_CANCELED"
        again = await client.get_task(pb.GetTaskRequest(id=task.id))
        assert state_name(again.status.state) == "TASK_STATE_CANCELED"
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(pb.CancelTaskRequest(id=task.id))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_multi_turn_over_a_context(a2a_server, binding):
    async with sdk_client(base(a2a_server.url), binding) as client:
        first = (await collect(client.send_message(pb.SendMessageRequest(message=message("first turn")))))[0].task
        follow_up = message("second turn", context_id=first.context_id)
        second = (await collect(client.send_message(pb.SendMessageRequest(message=follow_up))))[0].task
        assert second.context_id == first.context_id and second.id != first.id
        assert list(artifact_texts(second).values()) == ["echo: second turn"]
        listed = await client.list_tasks(pb.ListTasksRequest(context_id=first.context_id))
        assert [t.id for t in listed.tasks] == [second.id, first.id], "most recent first"
        assert listed.total_size == 2 and listed.next_page_token == ""

        # A taskId with another task's context is refused; a finished task takes no more messages.
        with pytest.raises(InvalidParamsError):
            await collect(
                client.send_message(
                    pb.SendMessageRequest(message=message("mixed up", context_id="other", task_id=first.id))
                )
            )
        with pytest.raises(UnsupportedOperationError):
            await collect(client.send_message(pb.SendMessageRequest(message=message("more", task_id=first.id))))
        with pytest.raises(TaskNotFoundError):
            missing = "00000000-0000-0000-0000-000000000001"
            await collect(client.send_message(pb.SendMessageRequest(message=message("?", task_id=missing))))

    # The agent saw the whole conversation: the session holds both turns.
    async with httpx.AsyncClient() as http:
        session = (await http.get(f"{a2a_server.url}/api/sessions/{first.context_id}")).json()
    contents = [m["content"] for m in session["messages"]]
    assert contents == ["first turn", "echo: first turn", "second turn", "echo: second turn"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribing_to_a_running_task(a2a_server, binding):
    url = base(a2a_server.url, object_id="paced")
    async with sdk_client(url, binding, polling=True) as starter:
        task = (await collect(starter.send_message(pb.SendMessageRequest(message=message("go")))))[0].task
        assert state_name((await working(starter, task.id)).status.state) == "TASK_STATE_WORKING"
    async with sdk_client(url, binding, streaming=True) as client:
        events = await collect(client.subscribe(pb.SubscribeToTaskRequest(id=task.id)))
        done = await client.get_task(pb.GetTaskRequest(id=task.id))
    assert events[0].HasField("task") and events[0].task.id == task.id
    assert state_name(events[0].task.status.state) == "TASK_STATE_WORKING"
    assert any(e.HasField("artifact_update") for e in events)
    assert final_state(events) == "TASK_STATE_COMPLETED"
    assert fold_artifacts(events) == artifact_texts(done)
    assert len(next(iter(artifact_texts(done).values())).split()) == 12


@pytest.mark.parametrize("binding", BINDINGS)
async def test_list_tasks_pages_with_a_cursor(a2a_server, binding):
    async with sdk_client(base(a2a_server.url), binding) as client:
        for text in ("page one", "page two"):
            await collect(client.send_message(pb.SendMessageRequest(message=message(text))))
        page = await client.list_tasks(pb.ListTasksRequest(page_size=1, include_artifacts=True))
        assert len(page.tasks) == 1 and page.next_page_token and page.total_size >= 2
        assert page.tasks[0].artifacts, "includeArtifacts"
        following = await client.list_tasks(pb.ListTasksRequest(page_size=1, page_token=page.next_page_token))
        assert following.tasks[0].id != page.tasks[0].id
        assert not following.tasks[0].artifacts, "artifacts are left out by default"
        done = await client.list_tasks(pb.ListTasksRequest(status=pb.TASK_STATE_COMPLETED, page_size=100))
        assert all(t.status.state == pb.TASK_STATE_COMPLETED for t in done.tasks)


@pytest.mark.skipif("star" not in kind_names(), reason="no engine is registered for run kind 'star'")
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_star_over_a2a(a2a_server, binding):
    url = base(a2a_server.url, "stars", "team")
    async with sdk_client(url, binding, streaming=True) as client:
        assert client._card.name == "Team"
        assert {skill.name for skill in client._card.skills} >= {"lead", "writer"}
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("team, hello"))))
        task = await client.get_task(pb.GetTaskRequest(id=events[0].task.id))
    assert final_state(events) == "TASK_STATE_COMPLETED"
    texts = list(artifact_texts(task).values())
    assert texts and "team, hello" in texts[-1]
    assert fold_artifacts(events) == artifact_texts(task)


@pytest.mark.skipif("workflow" not in kind_names(), reason="no engine is registered for run kind 'workflow'")
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_workflow_over_a2a(a2a_server, binding):
    url = base(a2a_server.url, "workflows", "pipeline")
    async with sdk_client(url, binding, streaming=True) as client:
        assert {skill.name for skill in client._card.skills} >= {"first", "second"}
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("flow"))))
        task = await client.get_task(pb.GetTaskRequest(id=events[0].task.id))
    assert final_state(events) == "TASK_STATE_COMPLETED"
    assert list(artifact_texts(task).values())[-1] == "written: echo: flow"
    steps = [
        part.data
        for e in events
        if e.HasField("status_update")
        for part in e.status_update.status.message.parts
        if part.HasField("data")
    ]
    assert steps, "the workflow's steps and sub-runs show as status updates"
