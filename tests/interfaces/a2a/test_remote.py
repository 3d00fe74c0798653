"""Remote A2A agents as tools: the live server's agents play the remote agents."""

from __future__ import annotations

import time

import pytest

from cosmos.models import ACTIVE_STATUSES, RunEvent, RunStatus
from cosmos.runtime.tools import ToolContext, tool_registry
from cosmos.services.runs import start_run
from interfaces.connectors.remote import REMOTE_EVENT, RemoteA2AError, register_remote_agent, remote_agent_tool
from tests.factories import make_agent

from .conftest import AUTH_KEY
from .helpers import BINDINGS, base

pytestmark = pytest.mark.slow


def context(events: list[dict]) -> ToolContext:
    async def emit(event: dict) -> None:
        events.append(event)

    return ToolContext(run_id="parent-run", emit=emit, tool_call_id="call-1")


@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_tool_asks_the_remote_agent_and_forwards_its_stream(a2a_server, binding):
    tool = remote_agent_tool("echo_remote", base(a2a_server.url), binding=binding)
    events: list[dict] = []
    answer = await tool.fn(message="over there", context=context(events))
    assert answer == "echo: over there"
    assert events[0]["type"] == "SUBAGENT_STARTED" and events[0]["toolCallId"] == "call-1"
    assert events[-1]["type"] == "SUBAGENT_FINISHED" and events[-1]["output"] == "echo: over there"
    forwarded = [e["value"]["payload"] for e in events if e["type"] == "CUSTOM" and e["name"] == REMOTE_EVENT]
    assert "task" in forwarded[0] and any("artifactUpdate" in p for p in forwarded)
    assert forwarded[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert events[-1]["taskId"] == forwarded[0]["task"]["id"]


async def test_the_card_url_itself_works_too(a2a_server):
    tool = remote_agent_tool("echo_card", base(a2a_server.url) + "/.well-known/agent-card.json")
    assert await tool.fn(message="card", context=context([])) == "echo: card"


async def test_a_failing_remote_task_is_a_tool_error(a2a_server):
    tool = remote_agent_tool("failing_remote", base(a2a_server.url, object_id="failing"))
    events: list[dict] = []
    with pytest.raises(RemoteA2AError, match="TASK_STATE_FAILED"):
        await tool.fn(message="anything", context=context(events))
    assert events[-1]["type"] == "SUBAGENT_ERROR"


async def test_remote_auth_headers(a2a_auth_server):
    url = base(a2a_auth_server.url)
    with pytest.raises(RemoteA2AError, match="401"):
        await remote_agent_tool("no_key", url).fn(message="hi", context=context([]))
    tool = remote_agent_tool("with_key", url, headers=lambda: {"Authorization": f"Bearer {AUTH_KEY}"})
    assert await tool.fn(message="hi", context=context([])) == "echo: hi"


async def test_an_unreachable_remote_is_a_tool_error():
    tool = remote_agent_tool("nowhere", "http://127.0.0.1:9/a2a/agents/none", timeout=5)
    with pytest.raises(RemoteA2AError, match="agent card"):
        await tool.fn(message="hi", context=context([]))


@pytest.fixture
def remote_echo(a2a_server):
    tool = register_remote_agent("remote_echo", base(a2a_server.url), description="The echo agent, remotely.")
    yield tool
    tool_registry.unregister(tool.name)


@pytest.mark.django_db(transaction=True)
def test_an_agent_calls_a_remote_agent_as_a_tool(remote_echo, embedded_worker, settings):
    if settings.ASTEROS.distributed:
        pytest.skip("the tool is registered in this process; distributed workers are other processes")
    rule = {"when": "(?s)^(.+)$", "call": "remote_echo", "arguments": {"message": "$1"}}
    agent = make_agent(tools=["remote_echo"], parameters={"rules": [rule]})
    run, _ = start_run("agent", agent.id, "relay this", origin="cli")
    deadline = time.monotonic() + 30
    while run.status in ACTIVE_STATUSES and time.monotonic() < deadline:
        time.sleep(0.1)
        run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "The result is echo: relay this."
    types = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))
    assert "SUBAGENT_STARTED" in types and "SUBAGENT_FINISHED" in types and "CUSTOM" in types
