"""MCP servers' tools in cosmos's tool catalogue: ``mcp:<server>/<tool>`` and ``mcp:<server>/*``.

``install()`` (from ``ConnectorsConfig.ready()``, so in API and worker processes alike) adds a
resolver to ``cosmos.runtime.tools.tool_registry``:

- ``mcp:<server>/<tool>`` is one ``Tool``: listed as that name, offered to the model as
  ``mcp__<server>__<tool>`` (``model_name``), with the server's own description and input
  schema; ``mcp:<server>/*`` is all of the server's tools (possibly none);
- a disabled or deleted server offers nothing (its names are unknown);
- every lookup reads the server's row, so a server declared, changed, disabled or deleted in
  any process (the admin, the API) is seen by every worker at once, with no restart; the tool
  list read from the server is cached in this process for ``CACHE_SECONDS`` while the row stays
  the same, and forgotten when the server says its tools changed
  (``notifications/tools/list_changed`` on any session with it);
- an unreachable server offers the tools of its last snapshot (``tools_snapshot``); an exact name
  with no list at all still builds a tool (its schema accepts anything) whose call says why it
  failed. Building never raises.

A call over HTTP is one short SDK session (``mcp_client.call_tool``); over stdio it uses the
server's child kept running on this loop (``mcp_stdio``). Every failure of it (an ``isError``
result, an unreachable or stalled server, one that dies mid-call) becomes an error result the
model reads; cancelling the run cancels the call. The server's progress notifications during a
call become ``CUSTOM mcp.progress`` events of the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from cosmos.runtime.events import EventType, make_event
from cosmos.runtime.tools import Tool, ToolContext, tool_registry
from interfaces.connectors.declared import off_the_loop
from interfaces.connectors.mcp_spec import MCPClientError, OnProgress, ServerSpec
from interfaces.connectors.models import MCPServer

logger = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
CHECK_SECONDS = 15.0  # the longest a page or an API call waits for a server's tool list
PREFIX = "mcp:"
WILDCARD = "*"
MAX_NAME = 64  # what the model APIs accept as a function name
PERMISSIVE_SCHEMA = {"type": "object", "additionalProperties": True}
PROGRESS_EVENT = "mcp.progress"  # CUSTOM events: a server's progress notifications during a call
CONTEXT = "context"
T = TypeVar("T")


class MCPToolError(Exception):
    """The server answered the call with ``isError``: the model reads its text."""


def model_name(server: str, tool: str) -> str:
    """The name the model sees: ``mcp__<server>__<tool>``, only ``[A-Za-z0-9_-]``, at most 64
    characters, stable; a hash of the tool's name keeps apart names that had to be changed."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", tool)
    name = f"mcp__{server}__{safe}"
    if safe != tool or len(name) > MAX_NAME or "__" in server:
        digest = hashlib.sha256(f"{server}/{tool}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


def listed_name(server: str, tool: str) -> str:
    return f"{PREFIX}{server}/{tool}"


def parse_listed(name: str) -> tuple[str, str] | None:
    """(server, tool) of ``mcp:<server>/<tool>``; None for any other name."""
    if not name.startswith(PREFIX):
        return None
    server, sep, tool = name[len(PREFIX) :].partition("/")
    return (server, tool) if sep and server and tool else None


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code (on a thread of its own when this
    thread already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# ---------------------------------------------------------------------------------------------
# The tools of one server


def approval_rule(row: MCPServer, tool: str) -> str:
    rules = row.tool_approvals if isinstance(row.tool_approvals, dict) else {}
    return rules.get(tool) or row.requires_approval or "never"


def input_schema(schema: object) -> dict[str, Any]:
    """The server's schema as the model APIs take it: an object schema (MCP requires one; a
    server that leaves out ``"type"`` still gets its properties through)."""
    if not isinstance(schema, dict):
        return PERMISSIVE_SCHEMA
    return schema if "type" in schema else {"type": "object", **schema}


def progress_events(context: ToolContext, server: str, tool: str) -> OnProgress:
    """The server's progress notifications for a call, as ``CUSTOM mcp.progress`` run events."""

    async def emit(progress: float, total: float | None, message: str | None) -> None:
        value = {"toolCallId": context.tool_call_id, "server": server, "tool": tool, "progress": progress}
        value |= {k: v for k, v in (("total", total), ("message", message)) if v is not None}
        await context.emit(make_event(EventType.CUSTOM, name=PROGRESS_EVENT, value=value))

    return emit


def mcp_tool(spec: ServerSpec, entry: dict[str, Any], *, requires_approval: str = "never") -> Tool:
    """One server tool as a cosmos ``Tool`` (an async function of the tool's own arguments)."""
    server_tool = str(entry["name"])
    forget = _forgetter(spec.name)
    schema = input_schema(entry.get("inputSchema"))
    # The loop passes the run's context under this name: only when the tool has no argument of it.
    takes_context = CONTEXT not in (schema.get("properties") or {})
    # The SDK is loaded when a server is first used, not by every process at start-up.
    from interfaces.connectors import mcp_client, mcp_stdio

    # A stdio server's child is kept running between calls; an HTTP call is one short session.
    calling = mcp_stdio.call_tool if spec.transport == "stdio" else mcp_client.call_tool

    async def call(**arguments: Any) -> str:
        context = arguments.pop(CONTEXT, None) if takes_context else None
        progress = progress_events(context, spec.name, server_tool) if isinstance(context, ToolContext) else None
        result = await calling(spec, server_tool, arguments, on_list_changed=forget, on_progress=progress)
        text = mcp_client.result_text(result)
        if result.is_error:
            raise MCPToolError(text or f"The tool {server_tool!r} of MCP server {spec.name!r} reported an error.")
        return text

    return Tool(
        model_name(spec.name, server_tool),
        str(entry.get("description") or f"The tool {server_tool} of the MCP server {spec.name}."),
        schema,
        call,
        needs_context=takes_context,
        # The call enforces its own limits with clearer messages; this is the loop's backstop.
        timeout=spec.connect_timeout + spec.call_timeout + 1.0,
        requires_approval=requires_approval,
        listed_as=listed_name(spec.name, server_tool),
    )


@dataclass(frozen=True, slots=True)
class ServerTools:
    """What one enabled server offers this process now."""

    row: MCPServer
    spec: ServerSpec
    tools: dict[str, Tool] | None  # by the server's tool name; None: no list at all
    live: bool  # listed from the server just now (else from the snapshot)
    error: str = ""

    def tool(self, name: str) -> Tool | None:
        """The exact tool; a stand-in (any arguments) when the list is not live and lacks it."""
        if self.tools is not None and name in self.tools:
            return self.tools[name]
        if self.live:
            return None  # the server answered, and has no such tool
        return mcp_tool(self.spec, {"name": name}, requires_approval=approval_rule(self.row, name))


def _build(row: MCPServer, entries: list[dict[str, Any]], spec: ServerSpec) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            tools[entry["name"]] = mcp_tool(spec, entry, requires_approval=approval_rule(row, entry["name"]))
    return tools


class MCPCatalogue:
    """The enabled servers' tools by server name.

    Each lookup reads the row (one query by key), so a row saved, disabled or deleted by any
    process is seen at once; the tool list read from the server is kept for ``ttl`` seconds
    while the row stays the same (a server's own changes are seen within that time, or at once
    when it sends ``notifications/tools/list_changed``)."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, object, ServerTools | None]] = {}
        self._lock = threading.Lock()

    def get(self, server: str) -> ServerTools | None:
        return off_the_loop(self._get, server)

    def cached(self, server: str) -> ServerTools | None:
        """What this process knows now, without asking anyone."""
        hit = self._entries.get(server)
        return hit[2] if hit is not None else None

    def forget(self, server: str | None = None) -> None:
        with self._lock:
            if server is None:
                self._entries.clear()
            else:
                self._entries.pop(server, None)

    def _get(self, server: str) -> ServerTools | None:
        row = MCPServer.objects.filter(pk=server, enabled=True).first()
        version = _version(row)
        hit = self._entries.get(server)
        if hit is not None and hit[0] > self.clock() and hit[1] == version:
            return hit[2]
        entry = None if row is None else _list_now(row)
        with self._lock:
            self._entries[server] = (self.clock() + self.ttl, version, entry)
        return entry


def _version(row: MCPServer | None) -> object:
    # Saves bump updated_at; a row deleted and declared again has a new created_at. (The
    # snapshot is written with update(), which changes neither: it is no new version.)
    return None if row is None else (row.created_at, row.updated_at)


def _list_now(row: MCPServer) -> ServerTools:
    """Ask the server; keep its answer as the row's snapshot; fall back to the snapshot."""
    spec = ServerSpec.from_row(row)
    try:
        listed = run_async(lambda: _list_tools(spec, on_list_changed=_forgetter(row.name)))
    except MCPClientError as exc:
        logger.warning("MCP server %s: %s", row.name, exc)
        snapshot = row.tools_snapshot if isinstance(row.tools_snapshot, list) and row.tools_snapshot else None
        tools = _build(row, snapshot, spec) if snapshot else None
        return ServerTools(row, spec, tools, live=False, error=str(exc))
    if listed != row.tools_snapshot:
        _store_check(row.name, listed, "")
    return ServerTools(row, spec, _build(row, listed, spec), live=True)


def _store_check(name: str, tools: list[dict[str, Any]] | None, error: str) -> None:
    fields: dict[str, Any] = {"checked_at": timezone.now(), "check_error": error[:2000]}
    if tools is not None:
        fields["tools_snapshot"] = tools
    # update(): no post_save, so the cache that triggered this keeps its fresh entry.
    MCPServer.objects.filter(pk=name).update(**fields)


catalogue = MCPCatalogue()


def _forgetter(server: str) -> Callable[[], None]:
    def forget() -> None:
        logger.info("MCP server %s says its tools changed", server)
        catalogue.forget(server)

    return forget


class MCPToolResolver:
    """cosmos's tool registry asks this for ``mcp:…`` names."""

    def resolve(self, name: str) -> Tool | tuple[Tool, ...] | None:
        parsed = parse_listed(name)
        if parsed is None:
            return None
        server, tool = parsed
        entry = catalogue.get(server)
        if entry is None:
            return None
        if tool == WILDCARD:
            return tuple(entry.tools.values()) if entry.tools else ()
        return entry.tool(tool)

    def names(self) -> list[str]:
        """Each enabled server's tools as this process last saw them (no server is asked here)."""
        names: list[str] = []
        for row in off_the_loop(lambda: list(MCPServer.objects.filter(enabled=True))):
            entry = catalogue.cached(row.name)
            if entry is not None and entry.tools is not None:
                tools = list(entry.tools)
            else:
                tools = [t.get("name") for t in row.tools_snapshot or () if isinstance(t, dict)]
            names.extend(listed_name(row.name, t) for t in tools if isinstance(t, str) and t)
        return names

    def patterns(self) -> list[str]:
        """``mcp:<server>/*`` for each enabled server: all its tools, whatever they are now."""
        servers = off_the_loop(lambda: list(MCPServer.objects.filter(enabled=True).values_list("name", flat=True)))
        return [listed_name(server, WILDCARD) for server in servers]


resolver = MCPToolResolver()


# ---------------------------------------------------------------------------------------------
# Checking a server now (the admin and the API)


def check_server(name: str) -> MCPServer | None:
    """List the server's tools now and store them (``tools_snapshot``), when, and any error.

    Call it outside transactions: it waits for the server (``connect_timeout``, at most
    ``CHECK_SECONDS``: a person or an API client is waiting). A disabled
    server is checked too (a person may want to see it before enabling it)."""
    row = MCPServer.objects.filter(pk=name).first()
    if row is None:
        return None
    spec = ServerSpec.from_row(row)
    spec = dataclasses.replace(spec, connect_timeout=min(spec.connect_timeout, CHECK_SECONDS))
    try:
        listed = run_async(lambda: _list_tools(spec, on_list_changed=_forgetter(name)))
    except MCPClientError as exc:
        _store_check(name, None, str(exc))
    else:
        _store_check(name, listed, "")
    catalogue.forget(name)
    row.refresh_from_db()
    return row


async def _list_tools(spec: ServerSpec, **options: Any) -> list[dict[str, Any]]:
    from interfaces.connectors import mcp_client  # the SDK, loaded when a server is first used

    return await mcp_client.list_tools(spec, **options)


def _forget_row(sender: type, instance: MCPServer, **_kwargs: Any) -> None:
    catalogue.forget(instance.pk)
    # Held stdio sessions exist only once the SDK was loaded here; other processes see the
    # change at their next row check.
    if (held := sys.modules.get("interfaces.connectors.mcp_stdio")) is not None:
        held.close_sessions(instance.pk)


def install() -> None:
    """Hook MCP servers' tools into cosmos (idempotent)."""
    tool_registry.add_resolver(resolver)
    post_save.connect(_forget_row, sender=MCPServer, dispatch_uid="mcp-server-saved")
    post_delete.connect(_forget_row, sender=MCPServer, dispatch_uid="mcp-server-deleted")
