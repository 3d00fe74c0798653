"""The official ``langgraph-sdk`` client against a live AsterOS: the quick-start's calls, a
stream joined from a second client, multitask strategies, an interrupt resumed with
``Command(resume=...)``, cancel, and bad input."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError
from langgraph_sdk.schema import Command

from .conftest import PREFIX

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

CHAT = "agent:chat-agent"
SAID = "(offline scripted model) You said: "


def human(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def last_text(values: dict) -> str:
    return values["messages"][-1]["content"]


def test_assistants_are_the_run_kinds_definitions(client):
    found = client.assistants.search(limit=100)
    ids = {a["assistant_id"] for a in found}
    assert CHAT in ids and "workflow:agui-flow" in ids
    chat = next(a for a in found if a["assistant_id"] == CHAT)
    assert chat["graph_id"] == "agent" and chat["name"] == "Chat agent"
    assert {a["graph_id"] for a in client.assistants.search(graph_id="workflow")} == {"workflow"}
    assert client.assistants.count(graph_id="agent") >= 3
    assert client.assistants.get("chat-agent")["assistant_id"] == CHAT  # the bare id, unambiguous
    graph = client.assistants.get_graph(CHAT)
    assert [n["id"] for n in graph["nodes"]] == ["__start__", "agent", "__end__"]
    schemas = client.assistants.get_schemas(CHAT)
    assert schemas["graph_id"] == "agent" and schemas["input_schema"]["type"] == "object"
    versions = client.assistants.get_versions(CHAT)
    assert versions and versions[0]["assistant_id"] == CHAT
    with pytest.raises(NotFoundError):
        client.assistants.get("agent:no-such-agent")


def test_a_thread_streams_values_messages_and_updates(client):
    thread = client.threads.create(metadata={"user": "ada"})
    assert thread["status"] == "idle" and thread["metadata"] == {"user": "ada"}
    parts = list(
        client.runs.stream(
            thread["thread_id"],
            CHAT,
            input=human("hello there"),
            stream_mode=["values", "messages-tuple", "updates"],
        )
    )
    events = [p.event for p in parts]
    assert events[0] == "metadata" and "run_id" in parts[0].data
    values = [p.data for p in parts if p.event == "values"]
    assert values[0]["messages"][-1]["type"] == "human"
    assert last_text(values[-1]) == SAID + "hello there"
    chunks = [p.data for p in parts if p.event == "messages"]
    assert "".join(c[0]["content"] for c in chunks if c[0]["type"] == "AIMessageChunk") == SAID + "hello there"
    assert chunks[0][1]["run_id"] == parts[0].data["run_id"]
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates and updates[-1]["agent"]["messages"][0]["type"] == "ai"

    partial = list(client.runs.stream(thread["thread_id"], CHAT, input=human("again"), stream_mode="messages"))
    kinds = {p.event for p in partial}
    assert {"messages/metadata", "messages/partial", "messages/complete"} <= kinds

    state = client.threads.get_state(thread["thread_id"])
    texts = [(m["type"], m["content"]) for m in state["values"]["messages"]]
    assert texts == [
        ("human", "hello there"),
        ("ai", SAID + "hello there"),
        ("human", "again"),
        ("ai", SAID + "again"),
    ]
    assert state["next"] == [] and state["interrupts"] == []
    history = client.threads.get_history(thread["thread_id"])
    assert len(history) == 2
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert history[0]["parent_checkpoint"]["checkpoint_id"] == history[1]["checkpoint"]["checkpoint_id"]


def test_create_join_wait_and_stateless_wait(client):
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], CHAT, input=human("in the background"))
    assert run["status"] in ("pending", "running", "success") and run["thread_id"] == thread["thread_id"]
    joined = client.runs.join(thread["thread_id"], run["run_id"])
    assert last_text(joined) == SAID + "in the background"
    assert client.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"
    assert [r["run_id"] for r in client.runs.list(thread["thread_id"])] == [run["run_id"]]

    waited = client.runs.wait(thread["thread_id"], CHAT, input=human("and wait"))
    assert last_text(waited) == SAID + "and wait"
    assert len(waited["messages"]) == 4

    made = f"made-{uuid.uuid4().hex[:8]}"
    created = client.runs.wait(made, CHAT, input=human("make it"), if_not_exists="create")
    assert last_text(created) == SAID + "make it" and client.threads.get(made)["status"] == "idle"
    assert [r["status"] for r in client.runs.list(made, status="success")] == ["success"]
    assert client.runs.list(made, status="error") == []

    stateless = client.runs.wait(None, CHAT, input=human("no thread"))
    assert last_text(stateless) == SAID + "no thread"
    streamed = list(client.runs.stream(None, CHAT, input=human("streamed, no thread")))
    assert last_text(streamed[-1].data) == SAID + "streamed, no thread"

    # A workflow keeps no conversation: the thread's values are its runs' inputs and replies.
    flow = client.threads.create()
    first = client.runs.wait(flow["thread_id"], "workflow:agui-flow", input=human("step one"))
    assert first["messages"][0]["content"] == "step one" and first["messages"][-1]["type"] == "ai"
    second = client.runs.wait(flow["thread_id"], "workflow:agui-flow", input=human("step two"))
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert client.threads.get_state(flow["thread_id"])["values"] == second

    client.runs.delete(thread["thread_id"], run["run_id"])
    with pytest.raises(NotFoundError):
        client.runs.get(thread["thread_id"], run["run_id"])


def test_threads_search_update_copy_and_delete(client):
    tag = uuid.uuid4().hex
    thread = client.threads.create(metadata={"tag": tag})
    client.runs.wait(thread["thread_id"], CHAT, input=human("remember me"))
    found = client.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    assert client.threads.count(metadata={"tag": tag}) == 1
    updated = client.threads.update(thread["thread_id"], metadata={"more": 1})
    assert updated["metadata"] == {"tag": tag, "more": 1}
    assert client.threads.get(thread["thread_id"])["metadata"] == {"tag": tag, "more": 1}
    copy = client.threads.copy(thread["thread_id"])
    assert copy["thread_id"] != thread["thread_id"]
    assert last_text(client.threads.get_state(copy["thread_id"])["values"]) == SAID + "remember me"
    same = client.threads.create(thread_id=thread["thread_id"], if_exists="do_nothing")
    assert same["thread_id"] == thread["thread_id"]
    with pytest.raises(ConflictError):
        client.threads.create(thread_id=thread["thread_id"])
    client.threads.update_state(thread["thread_id"], {"messages": [{"role": "user", "content": "a note"}]})
    assert last_text(client.threads.get_state(thread["thread_id"])["values"]) == "a note"
    client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        client.threads.get(thread["thread_id"])
    assert [t["thread_id"] for t in client.threads.search(metadata={"tag": tag})] == [copy["thread_id"]]


def test_a_stream_joined_from_a_second_client_and_resumed(client, asteros_server):
    thread = client.threads.create()
    paced = "agent:agui-paced"
    run = client.runs.create(thread["thread_id"], paced, input=human("count"), stream_mode="messages-tuple")
    with get_sync_client(url=asteros_server.url + PREFIX, api_key=None) as second:
        parts = list(second.runs.join_stream(thread["thread_id"], run["run_id"]))
    text = "".join(p.data[0]["content"] for p in parts if p.event == "messages")
    assert text and parts[-1].event == "messages"
    # Resumed after the first message chunk: the rest, nothing twice.
    with get_sync_client(url=asteros_server.url + PREFIX, api_key=None) as third:
        full = list(third.runs.join_stream(thread["thread_id"], run["run_id"], stream_mode="messages-tuple"))
        ids = [p.id for p in full if p.id]
        rest = list(third.runs.join_stream(thread["thread_id"], run["run_id"], last_event_id=ids[1]))
    assert rest and len([p for p in rest if p.event == "messages"]) < len([p for p in full if p.event == "messages"])


def test_multitask_reject_interrupt_and_enqueue(client, asteros_server):
    thread = client.threads.create()
    tid = thread["thread_id"]
    first = client.runs.create(tid, "agent:agui-paced", input=human("slow one"))
    with pytest.raises(ConflictError):
        client.runs.create(tid, CHAT, input=human("rejected"), multitask_strategy="reject")
    second = client.runs.create(tid, "agent:agui-paced", input=human("takes over"), multitask_strategy="interrupt")
    client.runs.join(tid, second["run_id"])
    assert client.runs.get(tid, first["run_id"])["status"] == "interrupted"
    assert client.runs.get(tid, second["run_id"])["status"] == "success"
    third = client.runs.create(tid, "agent:agui-paced", input=human("first in line"), multitask_strategy="enqueue")
    fourth = client.runs.create(tid, CHAT, input=human("second in line"), multitask_strategy="enqueue")
    assert client.runs.get(tid, fourth["run_id"])["status"] in ("pending", "running", "success")
    assert last_text(client.runs.join(tid, fourth["run_id"])) == SAID + "second in line"
    assert client.runs.get(tid, third["run_id"])["status"] == "success"
    ended = httpx.get(f"{asteros_server.url}/api/runs/{third['run_id']}").json()["finished_at"]
    began = httpx.get(f"{asteros_server.url}/api/runs/{fourth['run_id']}").json()["started_at"]
    assert began >= ended, "an enqueued run starts once the one before it ended"


def test_an_interrupt_is_resumed_with_a_command(client):
    thread = client.threads.create()
    tid = thread["thread_id"]
    parts = list(
        client.runs.stream(tid, "agent:agui-approval", input=human("what is 6 * 7"), stream_mode=["updates", "values"])
    )
    interrupt = next(p.data["__interrupt__"] for p in parts if p.event == "updates" and "__interrupt__" in p.data)
    assert interrupt[0]["value"]["kind"] == "approval" and interrupt[0]["value"]["tool"] == "calculator"
    state = client.threads.get_state(tid)
    assert state["next"] == ["agent"] and state["interrupts"][0]["id"] == interrupt[0]["id"]
    assert client.threads.get(tid)["status"] == "interrupted"
    assert tid in {t["thread_id"] for t in client.threads.search(status="interrupted", limit=100)}
    with pytest.raises(ConflictError):
        client.runs.create(tid, CHAT, input=human("skip it"), multitask_strategy="reject")
    resumed = client.runs.wait(tid, "agent:agui-approval", command=Command(resume={"decision": "approve"}))
    assert "42" in last_text(resumed)
    # Read again later, the run is the whole of it: its pause, and what followed the answer.
    run_id = client.runs.list(tid)[0]["run_id"]
    assert last_text(client.runs.join(tid, run_id)) == last_text(resumed)
    again = list(client.runs.join_stream(tid, run_id, stream_mode=["updates", "values"]))
    assert any("__interrupt__" in p.data for p in again if p.event == "updates")
    assert last_text([p.data for p in again if p.event == "values"][-1]) == last_text(resumed)
    assert client.threads.get(tid)["status"] == "idle"
    with pytest.raises(httpx.HTTPStatusError) as nothing_waits:  # runs.wait raises httpx's errors
        client.runs.wait(tid, "agent:agui-approval", command=Command(resume=True))
    assert nothing_waits.value.response.status_code == 409


def test_cancel(client):
    thread = client.threads.create()
    tid = thread["thread_id"]
    run = client.runs.create(tid, "agent:agui-paced", input=human("stop me"))
    client.runs.cancel(tid, run["run_id"], wait=True)
    assert client.runs.get(tid, run["run_id"])["status"] == "interrupted"
    with pytest.raises(ConflictError):
        client.runs.cancel(tid, run["run_id"])
    many = client.runs.create(tid, "agent:agui-paced", input=human("cancel us all"))
    client.runs.cancel_many(thread_id=tid, run_ids=[many["run_id"]])
    client.runs.join(tid, many["run_id"])
    assert client.runs.get(tid, many["run_id"])["status"] == "interrupted"
    gone = client.runs.create(tid, "agent:agui-paced", input=human("roll me back"))
    client.runs.cancel(tid, gone["run_id"], action="rollback")
    with pytest.raises(NotFoundError):
        client.runs.get(tid, gone["run_id"])


def status_of(call) -> int:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        call()
    return refused.value.response.status_code


def test_bad_input(client, asteros_server):
    thread = client.threads.create()
    tid = thread["thread_id"]
    assert status_of(lambda: client.runs.wait(tid, "agent:no-such-agent", input=human("hi"))) == 404
    assert status_of(lambda: client.runs.wait(str(uuid.uuid4()), CHAT, input=human("no such thread"))) == 404
    with pytest.raises(NotFoundError):
        client.runs.create(tid, "star:no-such-star", input=human("hi"))
    with pytest.raises(UnprocessableEntityError):
        list(client.runs.stream(tid, CHAT, input=human("hi"), stream_mode="telepathy"))
    robot = {"messages": [{"role": "robot", "content": "x"}]}
    assert status_of(lambda: client.runs.wait(tid, CHAT, input=robot)) == 422
    with pytest.raises(UnprocessableEntityError):
        client.runs.create(tid, CHAT, input=human("hi"), multitask_strategy="sometimes")
    with pytest.raises(UnprocessableEntityError):
        client.threads.search(status="sleepy")
    base = asteros_server.url + PREFIX
    bad = httpx.post(f"{base}/threads", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_request" and bad.json()["detail"]
    store = httpx.put(f"{base}/store/items", json={"namespace": ["a"], "key": "k", "value": {}})
    assert store.status_code == 501 and "store" in store.json()["detail"].lower()
    crons = httpx.post(f"{base}/runs/crons", json={"assistant_id": CHAT, "schedule": "at noon", "input": human("x")})
    assert crons.status_code == 422 and "schedule" in crons.json()["detail"]


def test_a_stream_ends_for_every_client_at_once(client):
    """Two readers of one run (a thread and a waiting client) both see its end."""
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], "agent:agui-paced", input=human("together"))
    results: list = []
    reader = threading.Thread(target=lambda: results.append(client.runs.join(thread["thread_id"], run["run_id"])))
    reader.start()
    started = time.monotonic()
    mine = client.runs.join(thread["thread_id"], run["run_id"])
    reader.join(timeout=30)
    assert results and results[0] == mine and time.monotonic() - started < 30


def test_crons_are_schedules(client):
    thread = client.threads.create()
    on_thread = client.crons.create_for_thread(thread["thread_id"], CHAT, schedule="0 9 * * *", input=human("daily"))
    assert on_thread["thread_id"] == thread["thread_id"] and on_thread["schedule"] == "0 9 * * *"
    assert on_thread["assistant_id"] == CHAT and on_thread["next_run_date"]
    stateless = client.crons.create(CHAT, schedule="*/5 * * * *", input=human("often"))
    assert stateless["thread_id"] is None
    mine = client.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in mine] == [on_thread["cron_id"]]
    assert client.crons.count(assistant_id=CHAT) >= 2
    client.crons.delete(on_thread["cron_id"])
    client.crons.delete(stateless["cron_id"])
    assert client.crons.search(thread_id=thread["thread_id"]) == []
    with pytest.raises(NotFoundError):
        client.crons.delete(on_thread["cron_id"])


def test_versions_are_revisions(client, asteros_server):
    agent_id = f"versioned-{uuid.uuid4().hex[:8]}"
    api = asteros_server.url + "/api/agents"
    made = httpx.post(api, json={"id": agent_id, "name": "First", "provider": "scripted", "model": "scripted-offline"})
    assert made.status_code == 201, made.text
    assert httpx.patch(f"{api}/{agent_id}", json={"name": "Second"}).status_code == 200
    assistant = client.assistants.get(f"agent:{agent_id}")
    assert assistant["version"] == 2 and assistant["name"] == "Second"
    versions = client.assistants.get_versions(f"agent:{agent_id}")
    assert [(v["version"], v["name"]) for v in versions] == [(2, "Second"), (1, "First")]
    restored = client.assistants.set_latest(f"agent:{agent_id}", 1)
    assert restored["version"] == 3 and restored["name"] == "First"
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], f"agent:{agent_id}", input=human("which one?"))
    assert run["kwargs"]["assistant_version"] == 3
    client.runs.join(thread["thread_id"], run["run_id"])


async def test_the_async_client(asteros_server):
    from langgraph_sdk import get_client

    client = get_client(url=asteros_server.url + PREFIX, api_key=None)
    thread = await client.threads.create()
    parts = [
        part
        async for part in client.runs.stream(thread["thread_id"], CHAT, input=human("async"), stream_mode="updates")
    ]
    assert parts[0].event == "metadata" and parts[-1].data["agent"]["messages"][0]["content"] == SAID + "async"
    state = await client.threads.get_state(thread["thread_id"])
    assert last_text(state["values"]) == SAID + "async"
