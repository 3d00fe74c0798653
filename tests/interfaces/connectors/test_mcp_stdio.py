"""stdio MCP servers kept running: one child per server per loop, reused, restarted, ended.

The server is the SDK test server over stdio (``testtools``); its ``process`` tool says which
process answered and what its ``stall`` calls lived through. Run-level tests go through the
run engine (embedded or distributed); pool-level ones call ``mcp_stdio.call_tool`` on a loop of
their own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from cosmos.models import RunStatus
from cosmos.services.runs import cancel_run, start_run
from interfaces.connectors import mcp_stdio
from interfaces.connectors.declared import off_the_loop
from interfaces.connectors.mcp_client import MCPClientError, ServerSpec
from interfaces.connectors.models import MCPServer
from tests.factories import make_agent
from tests.support.runs import events, wait_for_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split(":", 1)[1][:3]


def wait_until_gone(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"the stdio child {pid} is still running"
        time.sleep(0.1)


def make_server(command: str, **fields) -> MCPServer:
    row = MCPServer(name="tools", transport="stdio", command=command, **fields)
    row.full_clean()
    row.save()
    return row


def calling(tool: str, **arguments) -> dict:
    return {"rules": [{"when": "(?s)^.+$", "call": tool, "arguments": arguments}]}


def tool_result(run_id) -> str:
    return next(e for e in events(run_id) if e["type"] == "TOOL_CALL_RESULT")["content"]


def run_tool(tool: str, **arguments):
    agent = make_agent(tools=[f"mcp:tools/{tool}"], parameters=calling(f"mcp__tools__{tool}", **arguments))
    return start_run("agent", agent.id, "go", origin="cli")[0]


def process_of_a_run() -> dict:
    run = wait_for_run(run_tool("process").id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return json.loads(tool_result(run.id))


@pytest.fixture(autouse=True)
def _no_held_sessions():
    yield
    mcp_stdio.close_sessions(wait=10)


# --- through the run engine (embedded, and distributed: the worker lists ``testtools``)


def test_runs_reuse_one_child_and_disabling_the_row_ends_it(embedded_worker, stdio_command):
    row = make_server(stdio_command)
    first = process_of_a_run()
    second = process_of_a_run()
    assert first["pid"] == second["pid"]  # one child for both calls
    assert alive(first["pid"])

    row.enabled = False
    row.save()

    wait_until_gone(first["pid"])  # at once here; within the row check in another process


def test_a_changed_row_gets_a_new_child(embedded_worker, stdio_command):
    row = make_server(stdio_command)
    before = process_of_a_run()["pid"]
    row.description = "changed"
    row.save()
    after = process_of_a_run()["pid"]
    assert after != before
    wait_until_gone(before)


def test_a_cancelled_run_cancels_its_call_while_another_proceeds(embedded_worker, stdio_command):
    make_server(stdio_command, call_timeout=60)
    pid = process_of_a_run()["pid"]
    stalled = run_tool("stall", seconds=30)
    deadline = time.monotonic() + 20
    while process_of_a_run()["stalls"]["started"] < 1:
        assert time.monotonic() < deadline, "the stall never started"

    cancel_run(stalled.id)
    echoed = wait_for_run(run_tool("echo", text="still here").id)

    assert wait_for_run(stalled.id, timeout=20).status == RunStatus.CANCELLED
    assert echoed.status == RunStatus.SUCCEEDED and "echo: still here" in echoed.output
    deadline = time.monotonic() + 10
    while (seen := process_of_a_run())["stalls"]["cancelled"] < 1:  # the server was told
        assert time.monotonic() < deadline, seen
    assert seen["pid"] == pid  # the shared session lived on


def test_a_child_killed_mid_call_fails_that_call_then_a_new_child_answers(embedded_worker, stdio_command):
    make_server(stdio_command, call_timeout=20)
    pid = process_of_a_run()["pid"]

    died = wait_for_run(run_tool("die").id)

    assert died.status == RunStatus.SUCCEEDED, died.error
    assert "MCP server 'tools' failed while calling 'die'" in tool_result(died.id)
    assert not alive(pid)
    assert process_of_a_run()["pid"] != pid


# --- one loop's pool


def spec_of(row: MCPServer) -> ServerSpec:
    return ServerSpec.from_row(row)


def declared(command: str, **fields) -> MCPServer:
    """``make_server`` from a test's event loop (on a thread whose connection is then closed)."""
    return off_the_loop(lambda: make_server(command, **fields))


async def call(spec: ServerSpec, tool: str, **arguments) -> object:
    result = await mcp_stdio.call_tool(spec, tool, arguments)
    return result.structured_content.get("result", result.structured_content)


async def test_concurrent_calls_share_one_session(stdio_command):
    spec = spec_of(declared(stdio_command))
    answers = await asyncio.gather(
        call(spec, "process"), call(spec, "echo", text="a"), call(spec, "count", steps=5), call(spec, "process")
    )
    assert answers[0]["pid"] == answers[3]["pid"]
    assert answers[1:3] == ["echo: a", "counted to 5"]
    assert list(mcp_stdio.pool().sessions) == ["tools"]


async def test_a_cancelled_call_leaves_the_session_to_the_others(stdio_command):
    spec = spec_of(declared(stdio_command))
    pid = (await call(spec, "process"))["pid"]
    stalled = asyncio.ensure_future(call(spec, "stall", seconds=30))
    while (await call(spec, "process"))["stalls"]["started"] < 1:
        await asyncio.sleep(0.05)

    stalled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stalled

    assert await call(spec, "echo", text="b") == "echo: b"
    for _ in range(100):
        seen = await call(spec, "process")
        if seen["stalls"]["cancelled"]:
            break
        await asyncio.sleep(0.05)
    assert seen == {"pid": pid, "stalls": {"started": 1, "cancelled": 1, "finished": 0}}


async def test_the_servers_tool_list_change_is_heard_on_the_held_session(stdio_command):
    spec = spec_of(declared(stdio_command))
    heard = asyncio.Event()
    await mcp_stdio.call_tool(spec, "process", {}, on_list_changed=heard.set)

    assert await call(spec, "grow") == "grown"

    await asyncio.wait_for(heard.wait(), 10)


async def test_a_call_timeout_fails_that_call_only(stdio_command):
    spec = spec_of(declared(stdio_command, call_timeout=1))
    pid = (await call(spec, "process"))["pid"]
    import faulthandler
    import sys
    import threading

    threading.Timer(2, lambda: faulthandler.dump_traceback(sys.stderr, all_threads=True)).start()
    started = time.monotonic()
    with pytest.raises(MCPClientError, match=r"did not answer within 1s"):
        await call(spec, "stall", seconds=30)
    assert time.monotonic() - started < 5
    assert (await call(spec, "process"))["pid"] == pid


async def test_a_child_killed_between_calls_is_started_again(stdio_command):
    spec = spec_of(declared(stdio_command))
    pid = (await call(spec, "process"))["pid"]
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)  # the session hears its child's output end

    again = await call(spec, "process")

    assert again["pid"] != pid and alive(again["pid"])


async def test_an_idle_session_ends_its_child(stdio_command, monkeypatch):
    monkeypatch.setattr(mcp_stdio, "IDLE_SECONDS", 0.5)
    spec = spec_of(declared(stdio_command))
    pid = (await call(spec, "process"))["pid"]
    for _ in range(100):
        if not alive(pid):
            break
        await asyncio.sleep(0.1)
    assert not alive(pid)
    assert not mcp_stdio.pool().sessions["tools"].usable


async def test_a_command_no_longer_listed_ends_the_child(stdio_command, settings_options, monkeypatch):
    monkeypatch.setattr(mcp_stdio, "ROW_CHECK_SECONDS", 0.2)
    spec = spec_of(declared(stdio_command))
    pid = (await call(spec, "process"))["pid"]
    settings_options(mcp_stdio_commands=())
    for _ in range(100):
        if not alive(pid):
            break
        await asyncio.sleep(0.1)
    assert not alive(pid)
    with pytest.raises(MCPClientError, match="not"):
        await call(spec, "process")


async def test_a_command_that_cannot_start_is_a_clear_error(settings_options):
    settings_options(mcp_stdio_commands=(("broken", ("/nonexistent/mcp-server",)),))
    spec = ServerSpec(name="tools", transport="stdio", command="broken", connect_timeout=5)
    with pytest.raises(MCPClientError, match="MCP server 'tools'"):
        await call(spec, "echo", text="x")


EXITING_PROCESS = """
import asyncio, os, threading, django
django.setup()
from interfaces.connectors import mcp_stdio
from interfaces.connectors.mcp_client import ServerSpec

loop = asyncio.new_event_loop()  # a daemon thread's loop, as the run engine's
threading.Thread(target=loop.run_forever, daemon=True).start()
spec = ServerSpec(name="tools", transport="stdio", command="testtools")
answer = asyncio.run_coroutine_threadsafe(mcp_stdio.call_tool(spec, "process", {}), loop).result(30)
print(answer.structured_content["pid"], flush=True)
"""


def test_the_process_exiting_ends_its_children(tmp_path):
    import shlex
    import subprocess
    import sys

    from tests.support.mcp_servers import STDIO_COMMAND, stdio_argv

    env = os.environ | {"ASTEROS_MCP_STDIO_COMMANDS": f"{STDIO_COMMAND}={shlex.join(stdio_argv())}"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
    done = subprocess.run(
        [sys.executable, "-c", EXITING_PROCESS], env=env, capture_output=True, text=True, timeout=60, cwd=Path.cwd()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[-1])

    wait_until_gone(pid, timeout=5)
