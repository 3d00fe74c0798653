"""The MCP client against real SDK servers: both revisions, stdio, failures, cancel, headers, policy."""

from __future__ import annotations

import asyncio
import shlex
import time

import pytest

from interfaces.connectors import mcp_stdio
from interfaces.connectors.mcp_client import (
    MCPClientError,
    ServerSpec,
    call_tool,
    connected,
    list_tools,
    result_text,
)
from tests.support.mcp_servers import STDIO_COMMAND, stdio_argv
from tests.support.processes import embedded_env, python_json

pytestmark = pytest.mark.slow


def spec(url: str = "", **fields) -> ServerSpec:
    return ServerSpec(**({"name": "tools", "transport": "http", "url": url, "connect_timeout": 10.0} | fields))


@pytest.mark.parametrize(("fixture", "revision"), [("mcp_http", "2026-07-28"), ("mcp_legacy", "2025-11-25")])
async def test_negotiates_each_revision_and_lists_schemas(request, fixture, revision):
    server = request.getfixturevalue(fixture)

    async with connected(spec(server.url)) as client:
        assert client.protocol_version == revision
    tools = {tool["name"]: tool for tool in await list_tools(spec(server.url))}

    assert {"echo", "add", "fail", "stall", "die", "whoami", "read.file"} <= set(tools)
    assert tools["add"]["inputSchema"]["properties"]["a"]["type"] == "integer"
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert tools["echo"]["description"] == 'Repeat the text, prefixed with "echo: ".'


@pytest.mark.parametrize("fixture", ["mcp_http", "mcp_legacy"])
async def test_calls_text_structured_and_error_results(request, fixture):
    server = request.getfixturevalue(fixture)

    echoed = await call_tool(spec(server.url), "echo", {"text": "hi"})
    added = await call_tool(spec(server.url), "add", {"a": 2, "b": 3})
    failed = await call_tool(spec(server.url), "fail", {"reason": "on purpose"})

    assert (result_text(echoed), echoed.is_error) == ("echo: hi", False)
    assert added.structured_content == {"sum": 5}
    assert '"sum": 5' in result_text(added)
    assert failed.is_error and "failed on purpose: on purpose" in result_text(failed)


async def test_stdio_server_from_a_listed_command(stdio_command):
    stdio = spec(transport="stdio", command=stdio_command)

    tools = await list_tools(stdio)
    answer = await call_tool(stdio, "echo", {"text": "over stdio"})

    assert "echo" in {tool["name"] for tool in tools}
    assert result_text(answer) == "echo: over stdio"


@pytest.mark.parametrize("calling", [call_tool, mcp_stdio.call_tool], ids=["per-call", "held"])
async def test_a_stdio_child_gets_none_of_the_servers_environment(stdio_command, monkeypatch, calling):
    monkeypatch.setenv("ASTEROS_SECRET_MCP_CHILD", "not-for-children")
    names = (await calling(spec(transport="stdio", command=stdio_command), "environment", {})).structured_content
    assert "PATH" in names["result"]
    assert not {"ASTEROS_SECRET_MCP_CHILD", "SECRET_KEY", "DATABASE_URL"} & set(names["result"])


async def test_a_stalling_stdio_tool_hits_the_call_timeout_and_the_child_ends(stdio_command):
    started = time.monotonic()
    with pytest.raises(MCPClientError, match=r"did not answer within 1s"):
        await call_tool(spec(transport="stdio", command=stdio_command, call_timeout=1), "stall", {"seconds": 30})
    assert time.monotonic() - started < 8
    assert not _children_running("mcp_server_app.py stdio")


def _children_running(script: str) -> list[str]:
    import os
    from pathlib import Path

    mine = str(os.getpid())
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == mine and script in command and fields.get("State", "")[:1] != "Z":
            found.append(command)
    return found


async def test_stdio_command_no_longer_listed_is_refused(settings_options):
    settings_options(mcp_stdio_commands=())

    with pytest.raises(MCPClientError, match="not listed in ASTEROS_MCP_STDIO_COMMANDS"):
        await list_tools(spec(transport="stdio", command="testtools"))


async def test_unreachable_server_is_a_clear_error():
    started = time.monotonic()
    with pytest.raises(MCPClientError, match="'tools'"):
        await list_tools(spec("http://127.0.0.1:9/mcp", connect_timeout=3))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("fixture", ["mcp_http", "mcp_legacy"])
async def test_a_stalling_tool_hits_the_call_timeout(request, fixture):
    server = request.getfixturevalue(fixture)

    with pytest.raises(MCPClientError, match=r"did not answer within 1s"):
        await call_tool(spec(server.url, call_timeout=1), "stall", {"seconds": 30})


@pytest.mark.parametrize("legacy", [False, True])
async def test_cancelling_the_call_cancels_it_on_the_server(legacy):
    from tests.support.mcp_servers import MCPTestServer

    with MCPTestServer.http(legacy=legacy) as server:
        task = asyncio.create_task(call_tool(spec(server.url), "stall", {"seconds": 30}))
        await asyncio.to_thread(server.wait_for_event, "stall started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(server.wait_for_event, "stall cancelled")
        assert not any(e["event"] == "stall finished" for e in server.events())


async def test_header_references_reach_the_server(mcp_http, monkeypatch, caplog):
    monkeypatch.setenv("ASTEROS_SECRET_MCP_TOKEN", "tok-123")
    monkeypatch.setenv("ASTEROS_SECRET_MCP_TEAM", "blue")
    headers = {"Authorization": "env:ASTEROS_SECRET_MCP_TOKEN", "X-Team": "env:ASTEROS_SECRET_MCP_TEAM"}

    result = await call_tool(spec(mcp_http.url, headers=headers), "whoami", {})

    assert result.structured_content == {"authorization": "Bearer tok-123", "x-team": "blue"}
    assert "tok-123" not in caplog.text


async def test_a_header_value_with_a_line_break_is_refused_unquoted(mcp_http, monkeypatch):
    monkeypatch.setenv("ASTEROS_SECRET_MCP_BROKEN", "tok\r\nX-Injected: yes")
    with pytest.raises(MCPClientError, match="line break") as raised:
        await list_tools(spec(mcp_http.url, headers={"X-Key": "env:ASTEROS_SECRET_MCP_BROKEN"}))
    assert "tok" not in str(raised.value).replace("tools", "")


@pytest.mark.parametrize(
    ("reference", "message"),
    [("env:SECRET_KEY", "refused"), ("env:ASTEROS_SECRET_MCP_UNSET", "not set in this process")],
)
async def test_a_refused_or_unset_reference_sends_nothing(fresh_mcp_server, reference, message, caplog):
    with pytest.raises(MCPClientError, match=message) as raised:
        await call_tool(spec(fresh_mcp_server.url, headers={"Authorization": reference}), "whoami", {})

    assert "tests-only-not-a-secret" not in str(raised.value) + caplog.text
    assert fresh_mcp_server.events() == []


@pytest.mark.parametrize("host", ["10.0.0.1", "localhost"])
async def test_the_outbound_policy_refuses_private_addresses(mcp_http, host, caplog):
    # localhost resolves to 127.0.0.1, where the server listens; only the literal 127.0.0.1 is allowlisted.
    url = mcp_http.url.replace("127.0.0.1", host)
    started = time.monotonic()

    with pytest.raises(MCPClientError, match="unreachable"):
        await list_tools(spec(url, connect_timeout=5))

    assert time.monotonic() - started < 6
    assert "cosmos.outbound" in {record.name for record in caplog.records}


@pytest.mark.parametrize("legacy", [False, True])
async def test_a_server_dying_mid_call_says_so_quickly(legacy):
    from tests.support.mcp_servers import MCPTestServer

    with MCPTestServer.http(legacy=legacy) as server:
        started = time.monotonic()
        with pytest.raises(MCPClientError) as raised:
            await call_tool(spec(server.url, call_timeout=30), "die", {})
        assert "MCP server 'tools' failed while calling 'die'" in str(raised.value)
        assert time.monotonic() - started < 10


# What a Celery worker does to its stderr before anything loads the SDK: a logging proxy with no
# file descriptor. A stdio child must still start (its stderr goes to the process's own file).
STDERR_SWAPPED = """
import asyncio, json, logging, sys
from celery.utils.log import LoggingProxy
sys.stderr = LoggingProxy(logging.getLogger("worker"))
import django
django.setup()
from interfaces.connectors.mcp_client import list_tools
from interfaces.connectors.mcp_spec import ServerSpec
tools = asyncio.run(list_tools(ServerSpec(name="tools", transport="stdio", command="testtools")))
print(json.dumps(sorted(tool["name"] for tool in tools)))
"""


def test_a_stdio_server_starts_in_a_process_whose_stderr_is_a_logging_proxy(tmp_path):
    env = embedded_env(tmp_path, ASTEROS_MCP_STDIO_COMMANDS=f"{STDIO_COMMAND}={shlex.join(stdio_argv())}")
    assert "echo" in python_json(STDERR_SWAPPED, env)
