"""A2A push notifications with the official a2a-sdk against a live AsterOS, over both bindings.

The configs (create, get, list, delete), a config given with SendMessage, the errors (a URL the
policy refuses, an unknown task, another caller's task, no key), and the deliveries: a real
receiver on loopback (``tests.support.push_receiver``), allowlisted with
``ASTEROS_OUTBOUND_ALLOWLIST`` on the server under test, gets the task's updates up to its end,
with the token and the credentials, and every payload parses as the SDK's ``StreamResponse``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from google.protobuf.json_format import ParseDict

from tests.support.push_receiver import PushReceiver

from .conftest import AUTH_KEY, LiveServer, _copy_and_launch, _stop, _up
from .helpers import BINDINGS, artifact_texts, base, collect, message, sdk_client, state_name
from .seed import READ_KEY, RUN_KEY

pytestmark = pytest.mark.slow

V1 = {"A2A-Version": "1.0"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def push_server(seeded_database, receiver) -> Iterator[LiveServer]:
    """Auth off; the receiver's host:port allowlisted; the domain card is the star ``team``'s."""
    extra = {"ASTEROS_OUTBOUND_ALLOWLIST": receiver.host, "ASTEROS_A2A_DEFAULT": "star:team"}
    servers = {"push": _copy_and_launch(seeded_database, "push", **extra)}
    try:
        yield _up(servers, "push")
    finally:
        _stop(servers["push"])


def hook(receiver: PushReceiver) -> tuple[str, str]:
    """A URL of its own on the receiver for one test, and its path."""
    path = f"/hook/{uuid.uuid4().hex}"
    return receiver.url(path), path


async def finished_task(client, text: str = "hello") -> pb.Task:
    events = await collect(client.send_message(pb.SendMessageRequest(message=message(text))))
    return events[0].task


def stream_response(body: dict) -> pb.StreamResponse:
    """Strict: only the fields of the SDK's StreamResponse (its generated types)."""
    return ParseDict(body, pb.StreamResponse())


# --- the configs


@pytest.mark.parametrize("binding", BINDINGS)
async def test_configs_are_created_read_listed_and_deleted(push_server, receiver, binding):
    url, path = hook(receiver)
    async with sdk_client(base(push_server.url), binding) as client:
        assert client._card.capabilities.push_notifications
        task = await finished_task(client)
        auth = pb.AuthenticationInfo(scheme="Bearer", credentials="receiver-secret")
        named = await client.create_task_push_notification_config(
            pb.TaskPushNotificationConfig(task_id=task.id, id="mine", url=url, token="tok-1", authentication=auth)
        )
        assert (named.id, named.task_id, named.url, named.token) == ("mine", task.id, url, "tok-1")
        assert named.authentication.scheme == "Bearer" and not named.authentication.credentials, "write-only"
        generated = await client.create_task_push_notification_config(
            pb.TaskPushNotificationConfig(task_id=task.id, url=url)
        )
        assert uuid.UUID(generated.id), "an id is generated when none is given"

        got = await client.get_task_push_notification_config(
            pb.GetTaskPushNotificationConfigRequest(task_id=task.id, id="mine")
        )
        assert got == named
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        assert [c.id for c in listed.configs] == ["mine", generated.id] and listed.next_page_token == ""
        first = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_size=1)
        )
        assert [c.id for c in first.configs] == ["mine"] and first.next_page_token
        rest = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_size=1, page_token=first.next_page_token)
        )
        assert [c.id for c in rest.configs] == [generated.id] and rest.next_page_token == ""

        # The same id again replaces the config (set or update).
        moved, _ = hook(receiver)
        again = await client.create_task_push_notification_config(
            pb.TaskPushNotificationConfig(task_id=task.id, id="mine", url=moved)
        )
        assert again.url == moved and not again.token

        # Deleting is idempotent; a deleted config is not found.
        request = pb.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="mine")
        await client.delete_task_push_notification_config(request)
        await client.delete_task_push_notification_config(request)
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=task.id, id="mine")
            )
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        assert [c.id for c in listed.configs] == [generated.id]

    # Each config made on a task that already ended gets the task as it ended, once.
    received = receiver.wait_for(lambda got: len(got) >= 2, path)
    assert len({r.headers["webhook-id"] for r in received}) == 2
    assert sorted(r.headers.get("x-a2a-notification-token", "") for r in received) == ["", "tok-1"]
    for request in received:
        final = stream_response(request.body).task
        assert final.id == task.id and state_name(final.status.state) == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_refused_urls_unknown_tasks_and_bad_requests(push_server, receiver, binding):
    async with sdk_client(base(push_server.url), binding) as client:
        task = await finished_task(client)
        for url in ("ftp://example.com/hook", "http://10.1.2.3/hook", "http://localhost:9/hook", "not a url"):
            with pytest.raises(InvalidParamsError):
                await client.create_task_push_notification_config(
                    pb.TaskPushNotificationConfig(task_id=task.id, url=url)
                )
        missing = str(uuid.uuid4())
        with pytest.raises(TaskNotFoundError):
            await client.create_task_push_notification_config(
                pb.TaskPushNotificationConfig(task_id=missing, url=hook(receiver)[0])
            )
        with pytest.raises(TaskNotFoundError):
            await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=missing))
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=missing, id="x")
            )
        with pytest.raises(TaskNotFoundError):
            await client.delete_task_push_notification_config(
                pb.DeleteTaskPushNotificationConfigRequest(task_id=missing, id="x")
            )
        with pytest.raises(InvalidParamsError):
            await client.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_token="forged")
            )

        # Only the receiver's host:port is allowlisted: another loopback port is refused (the policy).
        not_allowed = "http://127.0.0.1:9/hook"
        with pytest.raises(InvalidParamsError) as refused:
            await client.create_task_push_notification_config(
                pb.TaskPushNotificationConfig(task_id=task.id, url=not_allowed)
            )
        assert "ASTEROS_OUTBOUND_ALLOWLIST" in str(refused.value)
        before = (await client.list_tasks(pb.ListTasksRequest(page_size=1))).total_size
        config = pb.TaskPushNotificationConfig(url=not_allowed)
        request = pb.SendMessageRequest(
            message=message("never started"),
            configuration=pb.SendMessageConfiguration(task_push_notification_config=config),
        )
        with pytest.raises(InvalidParamsError):
            await collect(client.send_message(request))
        after = (await client.list_tasks(pb.ListTasksRequest(page_size=1))).total_size
        assert after == before, "a refused config starts no task"


def test_rest_routes_and_their_errors(push_server, receiver):
    echo = base(push_server.url)
    with httpx.Client(timeout=30, headers=V1) as http:
        task = http.post(f"{echo}/message:send", json={"message": message_json("rest")}).json()["task"]
        configs = f"{echo}/tasks/{task['id']}/pushNotificationConfigs"
        created = http.post(configs, json={"url": hook(receiver)[0], "id": "r1"})
        assert created.status_code == 200 and created.headers["content-type"].startswith("application/a2a+json")
        assert created.json()["id"] == "r1" and created.json()["taskId"] == task["id"]
        body_task = http.post(configs, json={"url": hook(receiver)[0], "taskId": str(uuid.uuid4())})
        assert body_task.status_code == 400 and body_task.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert http.post(configs, content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 400
        assert http.post(configs, json={"url": 7}).status_code == 400
        assert http.delete(configs).status_code == 405 and http.post(f"{configs}/r1", json={}).status_code == 405
        assert http.get(f"{configs}?pageSize=0").status_code == 400
        assert http.delete(f"{configs}/r1").json() == {}
        assert http.delete(f"{configs}/r1").status_code == 200
        missing = http.get(f"{configs}/r1")
        assert missing.status_code == 404 and missing.json()["error"]["details"][0]["reason"] == "TASK_NOT_FOUND"
        rpc = {"jsonrpc": "2.0", "id": 3, "method": "CreateTaskPushNotificationConfig", "params": {"url": "https://x"}}
        assert http.post(echo, json=rpc).json()["error"]["code"] == -32602, "taskId is required"


def message_json(text: str) -> dict:
    return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}


def test_who_may_manage_a_tasks_configs(a2a_auth_server):
    echo = base(a2a_auth_server.url)

    def headers(key: str | None) -> dict[str, str]:
        return V1 | ({"Authorization": f"Bearer {key}"} if key else {})

    with httpx.Client(timeout=30) as http:
        task = http.post(f"{echo}/message:send", json={"message": message_json("mine")}, headers=headers(RUN_KEY))
        task_id = task.json()["task"]["id"]
        configs = f"{echo}/tasks/{task_id}/pushNotificationConfigs"
        made = http.post(configs, json={"url": "https://example.com/hook", "id": "k"}, headers=headers(RUN_KEY))
        assert made.status_code == 200, made.text
        assert http.get(configs, headers=headers(None)).status_code == 401
        assert (
            http.post(configs, json={"url": "https://example.com/h"}, headers=headers("wrong-key")).status_code == 401
        )
        # A key that may only read may not create or delete; and it does not see another key's task.
        assert http.post(configs, json={"url": "https://example.com/h"}, headers=headers(READ_KEY)).status_code == 403
        assert http.delete(f"{configs}/k", headers=headers(READ_KEY)).status_code == 403
        for response in (
            http.get(configs, headers=headers(READ_KEY)),
            http.get(f"{configs}/k", headers=headers(READ_KEY)),
        ):
            assert response.status_code == 404 and response.json()["error"]["details"][0]["reason"] == "TASK_NOT_FOUND"
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "ListTaskPushNotificationConfigs", "params": {"taskId": task_id}}
        assert http.post(echo, json=rpc, headers=headers(READ_KEY)).json()["error"]["code"] == -32001
        # The key that started the task, and the admin key, see the config.
        assert [c["id"] for c in http.get(configs, headers=headers(RUN_KEY)).json()["configs"]] == ["k"]
        assert [c["id"] for c in http.get(configs, headers=headers(AUTH_KEY)).json()["configs"]] == ["k"]


# --- the deliveries


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_config_in_send_message_gets_every_update_to_the_end(push_server, receiver, binding):
    url, path = hook(receiver)
    auth = pb.AuthenticationInfo(scheme="Bearer", credentials="receiver-secret")
    config = pb.TaskPushNotificationConfig(url=url, token="task-token", authentication=auth)
    configuration = pb.SendMessageConfiguration(task_push_notification_config=config, return_immediately=True)
    async with sdk_client(base(push_server.url, object_id="paced"), binding) as client:
        sent = await collect(
            client.send_message(pb.SendMessageRequest(message=message("go"), configuration=configuration))
        )
        task_id = sent[0].task.id
        received = receiver.wait_for(lambda got: any("task" in r.body for r in got), path, timeout=60)
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task_id)
        )
        done = await client.get_task(pb.GetTaskRequest(id=task_id))
    assert len(listed.configs) == 1 and listed.configs[0].url == url, "the config was stored for the task"
    for request in received:
        assert request.headers["x-a2a-notification-token"] == "task-token"
        assert request.headers["authorization"] == "Bearer receiver-secret"
        assert request.headers["content-type"] == "application/a2a+json"
        assert request.headers["webhook-id"].startswith("msg_")
    updates = [stream_response(r.body) for r in received]
    assert {u.status_update.task_id for u in updates[:-1]} <= {task_id}
    assert [state_name(u.status_update.status.state) for u in updates[:-1]] == ["TASK_STATE_WORKING"]
    final = updates[-1].task
    assert final.id == task_id and state_name(final.status.state) == "TASK_STATE_COMPLETED"
    assert artifact_texts(final) == artifact_texts(done), "the last notification is the task as GetTask has it"
    assert len({r.headers["webhook-id"] for r in received}) == len(received), "each update once"


async def test_a_failing_receiver_gets_the_update_again(push_server, receiver):
    url, path = hook(receiver)
    async with sdk_client(base(push_server.url), "JSONRPC") as client:
        task = await finished_task(client)
        receiver.fail_next(1)
        await client.create_task_push_notification_config(pb.TaskPushNotificationConfig(task_id=task.id, url=url))
        first, second = receiver.wait_for(lambda got: len(got) >= 2, path, timeout=30)
    assert first.headers["webhook-id"] == second.headers["webhook-id"], "the same message, retried"
    assert first.body == second.body


async def test_input_required_and_the_reply(push_server, receiver):
    """A task that waits for a person: its question is pushed, then its end after the reply."""
    url, path = hook(receiver)
    config = pb.TaskPushNotificationConfig(url=url)
    configuration = pb.SendMessageConfiguration(task_push_notification_config=config, return_immediately=True)
    async with sdk_client(base(push_server.url, object_id="asker"), "HTTP+JSON") as client:
        sent = await collect(
            client.send_message(pb.SendMessageRequest(message=message("weather?"), configuration=configuration))
        )
        task = sent[0].task
        asked = receiver.wait_for(
            lambda got: any(
                stream_response(r.body).status_update.status.state == pb.TASK_STATE_INPUT_REQUIRED for r in got
            ),
            path,
        )
        question = next(u for u in map(stream_response, (r.body for r in asked)) if u.HasField("status_update"))
        assert question.status_update.task_id == task.id
        reply = message("Paris", context_id=task.context_id, task_id=task.id)
        await collect(client.send_message(pb.SendMessageRequest(message=reply)))
    received = receiver.wait_for(lambda got: any("task" in r.body for r in got), path)
    states = [
        state_name(u.task.status.state if u.HasField("task") else u.status_update.status.state)
        for u in map(stream_response, (r.body for r in received))
    ]
    assert "TASK_STATE_INPUT_REQUIRED" in states and states[-1] == "TASK_STATE_COMPLETED"
    assert states.count("TASK_STATE_INPUT_REQUIRED") == 1


# --- the domain's card


async def test_the_domain_card_is_the_default_resources_card(a2a_server, push_server):
    async with httpx.AsyncClient(timeout=30) as http:
        for server, resource, object_id in ((a2a_server, "agents", "approver"), (push_server, "stars", "team")):
            root = await http.get(f"{server.url}/.well-known/agent-card.json")
            own = await http.get(f"{base(server.url, resource, object_id)}/.well-known/agent-card.json")
            assert root.status_code == 200 and root.json() == own.json()
            assert root.headers["etag"] == own.headers["etag"]
            interfaces = {i["url"] for i in root.json()["supportedInterfaces"]}
            assert interfaces == {base(server.url, resource, object_id)}
            assert root.json()["capabilities"]["pushNotifications"] is True
            assert (await http.post(f"{server.url}/.well-known/agent-card.json")).status_code == 405
    # The SDK finds the domain's agent at the root and talks to it.
    async with sdk_client(push_server.url, "JSONRPC") as client:
        assert client._card.name == "Team"
        events = await collect(client.send_message(pb.SendMessageRequest(message=message("team?"))))
        assert state_name(events[-1].task.status.state) == "TASK_STATE_COMPLETED"
