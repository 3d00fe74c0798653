"""Distributed mode: two API processes and a worker process on PostgreSQL and Redis. The MCP door
is stateless, so a client may talk to either process: a call on one is cancelled from the other
(2025-11-25's ``notifications/cancelled``), and an agent saved anywhere is a tool of both, whose
listeners are told."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from cosmos.db import db_call
from cosmos.models import Run, RunStatus
from tests.factories import make_agent
from tests.support.mcp_door import connect, text_of
from tests.support.servers import ApiProcess
from tests.support.workers import WorkerProcess

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cluster():
    worker = WorkerProcess().start()
    first, second = ApiProcess().start(), ApiProcess().start()
    yield first, second
    for process in (first, second, worker):
        process.close()


async def test_any_api_process_answers_any_request(cluster):
    first, second = cluster
    await db_call(make_agent, "mcp-echo", parameters={"reply": "echo: {input}"})
    await db_call(make_agent, "mcp-slow", parameters={"ttft_ms": 60_000})

    async with connect(f"{second.url}/mcp", mode="legacy") as client:
        assert {"mcp-echo", "mcp-slow"} <= {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("mcp-echo", {"message": "hi"})
    assert text_of(result) == "echo: hi"

    # Listening on the second process, told of an agent saved by another one (here, this test).
    async with connect(f"{second.url}/mcp") as client:
        async with client.listen(tools_list_changed=True) as subscription:
            await db_call(make_agent, "mcp-newcomer")
            with anyio.fail_after(15):
                async for _event in subscription:
                    break
        assert "mcp-newcomer" in {tool.name for tool in (await client.list_tools()).tools}

    # A handshake-era call on the first process, its notifications/cancelled posted to the second.
    async with connect(f"{first.url}/mcp", mode="legacy") as caller, anyio.create_task_group() as group:
        group.start_soon(caller.call_tool, "mcp-slow", {"message": "wait"})
        run = await db_call(wait_for_run, "mcp-slow")
        request_id = run.metadata["mcp"]["requestId"]
        notification = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        posted = httpx.post(f"{second.url}/mcp", json=notification, headers=headers)
        assert posted.status_code == 202
        await db_call(wait_for_status, run.id, RunStatus.CANCELLED)
        group.cancel_scope.cancel()


def wait_for_run(target: str, timeout: float = 20) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.filter(target=target, origin="mcp").order_by("-created_at").first()
        if run is not None and run.status == RunStatus.RUNNING:
            return run
        time.sleep(0.1)
    raise AssertionError(f"no running MCP run of {target}")


def wait_for_status(run_id, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Run.objects.filter(id=run_id, status=status).exists():
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} is not {status}")
