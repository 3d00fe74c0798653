"""MCP servers' tools in the catalogue, and agents' runs that call them (real SDK servers)."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cosmos.models import TERMINAL_STATUSES, RunStatus
from cosmos.runtime.tools import tool_registry
from cosmos.services.interrupts import resolve
from cosmos.services.runs import cancel_run, start_run
from interfaces.connectors import mcp_tools
from interfaces.connectors.mcp_client import ServerSpec, call_tool
from interfaces.connectors.mcp_tools import MCPToolError, model_name
from interfaces.connectors.models import MCPServer
from tests.factories import build_agent, make_agent
from tests.support.interrupts import the_interrupt
from tests.support.mcp_servers import MCPTestServer
from tests.support.runs import events, wait_for_run

pytestmark = pytest.mark.slow


def make_server(name: str = "tools", url: str = "", **fields) -> MCPServer:
    row = MCPServer(name=name, url=url, **fields)
    row.full_clean()
    row.save()
    return row


def calling(tool: str, **arguments) -> dict:
    """Scripted parameters: call ``tool`` (its model-facing name) with these arguments."""
    return {"rules": [{"when": "(?s)^.+$", "call": tool, "arguments": arguments}]}


def tool_result(run_id) -> dict:
    return next(e for e in events(run_id) if e["type"] == "TOOL_CALL_RESULT")


# --- names


def test_model_names_are_safe_short_unique_and_stable():
    assert model_name("files", "read") == "mcp__files__read"
    odd = model_name("files", "read.file")
    assert odd.startswith("mcp__files__read_file_") and odd == model_name("files", "read.file")
    assert odd != model_name("files", "read_file") == "mcp__files__read_file"
    long = model_name("a" * 32, "t" * 80)
    assert len(long) == 64 and long != model_name("a" * 32, "t" * 81)
    assert model_name("a__b", "c") != model_name("a", "b__c")


def test_input_schemas_are_object_schemas():
    assert mcp_tools.input_schema({"properties": {"a": {"type": "string"}}}) == {
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }
    assert mcp_tools.input_schema(None) == mcp_tools.PERMISSIVE_SCHEMA
    assert mcp_tools.input_schema({"type": "object"}) == {"type": "object"}


def test_a_tool_with_its_own_context_argument_keeps_it():
    spec = ServerSpec(name="tools", transport="http", url="http://127.0.0.1:9/mcp")
    own = {"name": "ask", "inputSchema": {"type": "object", "properties": {"context": {"type": "string"}}}}
    assert not mcp_tools.mcp_tool(spec, own).needs_context  # the model's "context" goes to the server
    assert mcp_tools.mcp_tool(spec, {"name": "plain"}).needs_context  # the run's, for progress events


# --- the catalogue


@pytest.mark.django_db
def test_listed_tools_carry_the_servers_schemas(mcp_http):
    make_server(url=mcp_http.url, tool_approvals={"fail": "always"}, requires_approval="a > 100")

    add = tool_registry.get("mcp:tools/add")
    everything = tool_registry.lookup("mcp:tools/*")
    odd = tool_registry.get("mcp:tools/read.file")

    assert add.name == "mcp__tools__add" and add.listed_as == "mcp:tools/add"
    assert add.parameters["properties"]["b"]["type"] == "integer"
    assert add.description == "Add two integers; the result is structured."
    assert add.requires_approval == "a > 100" and tool_registry.get("mcp:tools/fail").requires_approval == "always"
    assert {"mcp:tools/echo", "mcp:tools/add", "mcp:tools/stall"} <= {t.listed_as for t in everything}
    assert odd.name != "read.file" and odd.listed_as == "mcp:tools/read.file"
    assert asyncio.run(odd.fn(path="/etc/motd")) == "contents of /etc/motd"
    assert "mcp:tools/echo" in tool_registry.names()
    assert MCPServer.objects.get(pk="tools").tools_snapshot  # the list read is kept


@pytest.mark.django_db
def test_agents_may_list_mcp_tools_of_an_enabled_server_only(mcp_http):
    row = make_server(url=mcp_http.url)
    make_agent(tools=["mcp:tools/echo", "mcp:tools/*"], approvals={"mcp:tools/fail": "always"})

    for unknown in ("mcp:tools/no_such_tool", "mcp:nobody/*", "mcp:nobody/echo", "mcp:tools"):
        with pytest.raises(ValidationError, match="Unknown tool"):
            build_agent(tools=[unknown]).full_clean()
    row.enabled = False
    row.save()  # the saving process forgets its cache at once
    with pytest.raises(ValidationError, match="Unknown tool"):
        build_agent(tools=["mcp:tools/*"]).full_clean()


@pytest.mark.django_db
def test_an_unreachable_server_falls_back_to_its_snapshot():
    snapshot = [{"name": "echo", "description": "Echo (as last seen).", "inputSchema": {"type": "object"}}]
    make_server(url="http://127.0.0.1:9/mcp", connect_timeout=2, tools_snapshot=snapshot)

    echo = tool_registry.get("mcp:tools/echo")
    stand_in = tool_registry.get("mcp:tools/never_listed")

    assert echo.description == "Echo (as last seen)."
    assert [t.name for t in tool_registry.lookup("mcp:tools/*")] == ["mcp__tools__echo"]
    assert stand_in.parameters == mcp_tools.PERMISSIVE_SCHEMA  # built anyway; its call says why it fails
    with pytest.raises(Exception, match="MCP server 'tools'"):
        asyncio.run(stand_in.fn())


@pytest.mark.django_db
def test_an_unreachable_server_with_no_snapshot_offers_no_list_but_exact_names():
    make_server(url="http://127.0.0.1:9/mcp", connect_timeout=2)
    assert tool_registry.lookup("mcp:tools/*") == ()
    assert tool_registry.get("mcp:tools/echo").listed_as == "mcp:tools/echo"


@pytest.mark.django_db
def test_a_row_changed_by_another_process_is_seen_at_once(mcp_http, mcp_legacy):
    make_server(url=mcp_http.url)
    assert tool_registry.get("mcp:tools/echo") is not None
    # As another process would: UPDATEs this process gets no signal of.
    MCPServer.objects.filter(pk="tools").update(enabled=False)
    assert tool_registry.get("mcp:tools/echo") is None
    MCPServer.objects.filter(pk="tools").update(enabled=True, url=mcp_legacy.url, updated_at=timezone.now())
    assert tool_registry.get("mcp:tools/echo").fn is not None
    assert mcp_tools.catalogue.cached("tools").spec.url == mcp_legacy.url


@pytest.mark.django_db
def test_the_servers_own_changes_are_seen_within_the_cache_time(fresh_mcp_server, monkeypatch):
    make_server(url=fresh_mcp_server.url)
    assert tool_registry.get("mcp:tools/extra") is None
    # The server changes, and this process hears nothing of it (another client asked for it).
    spec = ServerSpec(name="elsewhere", transport="http", url=fresh_mcp_server.url)
    asyncio.run(call_tool(spec, "grow", {}))
    assert tool_registry.get("mcp:tools/extra") is None  # the list is cached
    now = mcp_tools.catalogue.clock()
    monkeypatch.setattr(mcp_tools.catalogue, "clock", lambda: now + mcp_tools.CACHE_SECONDS + 1)
    assert tool_registry.get("mcp:tools/extra") is not None


@pytest.mark.django_db
@pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28 listen stream", "2025-11-25 notification"])
def test_the_list_changed_notification_refreshes_the_cache(legacy):
    fresh_mcp_server = MCPTestServer.http(legacy=legacy)
    make_server(url=fresh_mcp_server.url)
    assert tool_registry.get("mcp:tools/extra") is None
    grow = tool_registry.get("mcp:tools/grow")

    try:
        assert asyncio.run(grow.fn()) == "grown"  # the server adds "extra" and says so

        assert tool_registry.get("mcp:tools/extra").description == "A tool that exists only after ``grow`` was called."
    finally:
        fresh_mcp_server.close()


@pytest.mark.django_db
def test_check_server_stores_the_list_or_the_error(mcp_http):
    make_server(url=mcp_http.url)
    row = mcp_tools.check_server("tools")
    assert row.check_error == "" and row.checked_at and "echo" in {t["name"] for t in row.tools_snapshot}

    MCPServer.objects.filter(pk="tools").update(url="http://10.0.0.1:9/mcp", connect_timeout=2)
    row = mcp_tools.check_server("tools")
    assert "unreachable" in row.check_error and row.tools_snapshot  # the last good list stays
    assert mcp_tools.check_server("nobody") is None


@pytest.mark.django_db
def test_an_error_result_is_a_tool_error(mcp_http):
    make_server(url=mcp_http.url)
    with pytest.raises(MCPToolError, match="failed on purpose: why"):
        asyncio.run(tool_registry.get("mcp:tools/fail").fn(reason="why"))


# --- runs


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fixture", ["mcp_http", "mcp_legacy"])
def test_an_agent_run_calls_an_mcp_tool(embedded_worker, request, fixture):
    server = request.getfixturevalue(fixture)
    make_server(url=server.url)
    agent = make_agent(tools=["mcp:tools/*"], parameters=calling("mcp__tools__add", a=20, b=22))

    run, _ = start_run("agent", agent.id, "add them", origin="cli")
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert '"sum": 42' in run.output
    assert tool_result(run.id)["content"] == '{\n  "sum": 42\n}'


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fixture", ["mcp_http", "mcp_legacy"])
def test_the_servers_progress_becomes_run_events(embedded_worker, request, fixture):
    make_server(url=request.getfixturevalue(fixture).url)
    agent = make_agent(tools=["mcp:tools/count"], parameters=calling("mcp__tools__count", steps=3))

    run = wait_for_run(start_run("agent", agent.id, "count", origin="cli")[0].id)

    assert run.status == RunStatus.SUCCEEDED and run.output == "The result is counted to 3.", run.error
    seen = events(run.id)
    call_id = next(e for e in seen if e["type"] == "TOOL_CALL_START")["toolCallId"]
    progress = [e["value"] for e in seen if e["type"] == "CUSTOM" and e["name"] == mcp_tools.PROGRESS_EVENT]
    assert progress == [
        {
            "toolCallId": call_id,
            "server": "tools",
            "tool": "count",
            "progress": step,
            "total": 3,
            "message": f"step {step}",
        }
        for step in (1, 2, 3)
    ]


@pytest.mark.django_db(transaction=True)
def test_an_agent_run_calls_a_stdio_server(embedded_worker, stdio_command):
    make_server(transport="stdio", command=stdio_command)
    agent = make_agent(tools=["mcp:tools/echo"], parameters=calling("mcp__tools__echo", text="$0"))

    run = wait_for_run(start_run("agent", agent.id, "over stdio", origin="cli")[0].id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "The result is echo: over stdio."


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("fail", {"reason": "bad input"}, "MCPToolError: Error executing tool fail: failed on purpose: bad input"),
        ("stall", {"seconds": 30}, "did not answer within 1s"),
    ],
)
def test_failed_calls_are_results_the_model_reads(embedded_worker, mcp_http, tool, arguments, says):
    make_server(url=mcp_http.url, call_timeout=1)
    agent = make_agent(tools=[f"mcp:tools/{tool}"], parameters=calling(f"mcp__tools__{tool}", **arguments))

    run = wait_for_run(start_run("agent", agent.id, "go", origin="cli")[0].id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    result = tool_result(run.id)
    assert run.output.startswith("The tool failed:")  # the model was told it was an error
    assert says in result["content"]


@pytest.mark.django_db(transaction=True)
def test_a_server_gone_mid_call_fails_the_call_not_the_run(embedded_worker, fresh_mcp_server):
    make_server(url=fresh_mcp_server.url, call_timeout=20)
    agent = make_agent(tools=["mcp:tools/die"], parameters=calling("mcp__tools__die"))

    run = wait_for_run(start_run("agent", agent.id, "go", origin="cli")[0].id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "MCP server 'tools'" in tool_result(run.id)["content"]
    agent = make_agent(tools=["mcp:tools/die"], parameters=calling("mcp__tools__die"))
    again = wait_for_run(start_run("agent", agent.id, "again", origin="cli")[0].id)  # the worker lives on
    assert again.status == RunStatus.SUCCEEDED and "MCP server 'tools'" in tool_result(again.id)["content"]


@pytest.mark.django_db(transaction=True)
def test_cancelling_the_run_cancels_the_call(embedded_worker):
    with MCPTestServer.http() as server:
        make_server(url=server.url)
        agent = make_agent(tools=["mcp:tools/stall"], parameters=calling("mcp__tools__stall", seconds=30))
        run, _ = start_run("agent", agent.id, "wait", origin="cli")
        server.wait_for_event("stall started", timeout=30)

        cancel_run(run.id)

        assert wait_for_run(run.id, timeout=20).status == RunStatus.CANCELLED
        server.wait_for_event("stall cancelled")


@pytest.mark.django_db(transaction=True)
def test_an_approval_pauses_an_mcp_tool_call(embedded_worker, mcp_http):
    make_server(url=mcp_http.url, tool_approvals={"echo": "always"})
    agent = make_agent(tools=["mcp:tools/*"], parameters=calling("mcp__tools__echo", text="approved words"))

    run, _ = start_run("agent", agent.id, "go", origin="cli")
    paused = wait_for_run(run.id, statuses=[RunStatus.INTERRUPTED, *TERMINAL_STATUSES])
    assert paused.status == RunStatus.INTERRUPTED, paused.error
    interrupt = the_interrupt(run.id)
    assert "mcp__tools__echo" in str(interrupt.request)

    resolve(interrupt.id, "approve")
    done = wait_for_run(run.id)
    assert done.status == RunStatus.SUCCEEDED and done.output == "The result is echo: approved words."


@pytest.mark.django_db(transaction=True)
def test_an_agents_own_approval_keyed_by_the_listed_name(embedded_worker, mcp_http):
    make_server(url=mcp_http.url)
    agent = make_agent(
        tools=["mcp:tools/echo"],
        approvals={"mcp:tools/echo": "always"},
        parameters=calling("mcp__tools__echo", text="x"),
    )
    run, _ = start_run("agent", agent.id, "go", origin="cli")
    paused = wait_for_run(run.id, statuses=[RunStatus.INTERRUPTED, *TERMINAL_STATUSES])
    assert paused.status == RunStatus.INTERRUPTED
    resolve(the_interrupt(run.id).id, "reject", message="not now")
    done = wait_for_run(run.id)
    assert done.status == RunStatus.SUCCEEDED and "not now" in tool_result(run.id)["content"]


@pytest.mark.django_db(transaction=True)
async def test_lookups_from_asyncio_code(mcp_http):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_server)(url=mcp_http.url)
    # A synchronous lookup on an event loop's thread queries and lists on another thread.
    assert tool_registry.get("mcp:tools/echo").listed_as == "mcp:tools/echo"
    assert await tool_registry.get("mcp:tools/echo").fn(text="from a loop") == "echo: from a loop"


@pytest.mark.django_db
def test_the_catalogue_names_come_from_the_cache_or_the_snapshot_without_asking():
    snapshot = [{"name": "a", "description": "", "inputSchema": {}}, {"name": "b", "description": ""}]
    make_server(url="http://10.0.0.1:9/mcp", tools_snapshot=snapshot)
    make_server("off", url="http://10.0.0.1:9/mcp", tools_snapshot=snapshot, enabled=False)
    started = time.monotonic()
    names = tool_registry.names()
    assert time.monotonic() - started < 1  # nobody was asked
    assert {"mcp:tools/a", "mcp:tools/b"} <= set(names) and not any(n.startswith("mcp:off/") for n in names)
