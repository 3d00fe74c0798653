"""The MCP server of AsterOS: the official SDK's low-level ``Server`` with our handlers.

Tools are the catalogue (``catalogue``), a call is a run (``calls``), resources are runs
(``resources``). Who is calling was decided before the SDK saw the request (``asgi.MCPEndpoint``
puts the principal in the ASGI scope); handlers read it from the request the SDK hands them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server import CacheHint, Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from cosmos.db import db_call
from cosmos.services.errors import ServiceError
from interfaces.mcp import catalogue, resources
from interfaces.mcp.calls import Site, call_tool, refused

PRINCIPAL = "asteros.principal"  # the ASGI scope key the gate leaves the caller under
INSTRUCTIONS = (
    "Every agent, star (team) and workflow of this AsterOS is a tool: call it with a message "
    "(workflows may take their own input) and get its answer. Runs are readable as resources "
    "at asteros://runs/{id}."
)


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Any:
    request = ctx.request
    return request.scope.get(PRINCIPAL) if request is not None else None


def site_of(ctx: ServerRequestContext[Any, Any]) -> Site:
    request = ctx.request
    if request is None:
        return Site("http", "")
    return Site(request.url.scheme, request.headers.get("host", ""))


async def list_tools(ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None) -> Any:
    tools = await db_call(catalogue.tools_for, principal_of(ctx))
    return types.ListToolsResult(
        tools=[
            types.Tool(
                name=tool.name,
                title=str(tool.target.row.name or tool.target.id),
                description=tool.description,
                input_schema=tool.input_schema,
                meta={"dev.asteros/target": {"kind": tool.target.kind, "id": tool.target.id}},
            )
            for tool in tools
        ]
    )


async def on_call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
    principal = principal_of(ctx)
    tool = await db_call(catalogue.find_tool, principal, params.name)
    if tool is None:
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {params.name!r}. tools/list says which tools there are.")

    async def progress(done: float, token: str) -> None:
        await ctx.session.report_progress(done, None, token)

    try:
        arguments = catalogue.check_arguments(tool, params.arguments)
        return await call_tool(
            tool, arguments, principal, site=site_of(ctx), request_id=ctx.request_id, progress=progress
        )
    except ServiceError as exc:  # bad arguments, a quota, a disabled definition, no engine
        return refused(exc.code, exc.message, exc.details)


async def list_resources(ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None) -> Any:
    return types.ListResourcesResult(resources=await db_call(resources.recent_runs, principal_of(ctx)))


async def list_resource_templates(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> Any:
    return types.ListResourceTemplatesResult(resource_templates=[resources.run_template()])


async def read_resource(ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams) -> Any:
    try:
        return await db_call(resources.read_run, principal_of(ctx), str(params.uri))
    except ServiceError as exc:
        raise MCPError(INVALID_PARAMS, exc.message, {"uri": str(params.uri)}) from None


# Lists depend on the caller and change as definitions do: a client may not reuse them.
NOT_CACHED = CacheHint(ttl_ms=0, scope="private")


def build_server(name: str, version: str, listen: Callable[[Any, Any], Awaitable[Any]]) -> Server[Any]:
    """``listen`` serves 2026-07-28's ``subscriptions/listen`` (the SDK's ``ListenHandler``; the
    ``tools/list_changed`` events are published by ``asgi.CatalogueWatch``)."""
    server: Server[Any] = Server(
        name,
        version=version,
        title=name,
        instructions=INSTRUCTIONS,
        cache_hints={"tools/list": NOT_CACHED, "resources/list": NOT_CACHED},
        on_subscriptions_listen=listen,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )
    return server
