"""Talking to one MCP server with the official SDK (``mcp`` 2.x): list its tools, call one.

- Streamable HTTP goes through the one outbound policy (``cosmos.outbound``): the SDK's
  ``httpx2.AsyncClient`` gets a transport (``OutboundTransport``) that sends each request with
  ``cosmos.outbound.async_client`` and hands the body back as a stream. The policy's
  ``OutboundError`` becomes an ``httpx2`` transport error, which the SDK understands.
- stdio runs only a command the operator listed in ``ASTEROS_MCP_STDIO_COMMANDS``, by name; the
  child gets the SDK's small default environment, not ours (it holds the server's secrets).
- Headers are references (``env:ASTEROS_SECRET_…``), resolved at each connection; a reference
  that is refused or not set stops the request before anything is sent.
- The SDK negotiates the revision: ``server/discover`` at 2026-07-28 (stateless), falling back
  to the 2025-11-25 ``initialize`` handshake.

Each operation here opens its own short session: nothing is held between calls, so a server that
restarts or moves between workers costs nothing, and a cancelled call closes its connection.
(Tools of stdio servers call through ``mcp_stdio``, which keeps the child running instead.)
Every failure is an ``MCPClientError`` whose message is safe to show a model or a person.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import httpx
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from cosmos import outbound
from cosmos.secrets import SecretReferenceError, resolve_credential
from interfaces.connectors.mcp_spec import MCPClientError, OnListChanged, OnProgress, ServerSpec

logger = logging.getLogger(__name__)


class _ClosedSessionNoise(logging.Filter):
    """The SDK logs, with a traceback, an SSE event that arrives after its session closed its
    reader (a change subscription's stream, ended with the call). Nothing is lost: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, anyio.BrokenResourceError | anyio.ClosedResourceError)


logging.getLogger("mcp.client.streamable_http").addFilter(_ClosedSessionNoise())

MAX_PAGES = 20  # a server whose tools/list never ends cannot hang a listing
CLIENT_INFO = types.Implementation(name="asteros", version="1")


def resolve_headers(spec: ServerSpec) -> dict[str, str]:
    """The header values, read now; ``MCPClientError`` (naming the reference, not a value) otherwise."""
    headers: dict[str, str] = {}
    for header, reference in spec.headers.items():
        try:
            value = resolve_credential(reference)
        except SecretReferenceError as exc:
            raise MCPClientError(f"Header {header} of MCP server {spec.name!r} is refused: {exc}") from None
        if not value:
            raise MCPClientError(
                f"Header {header} of MCP server {spec.name!r} names {reference}, which is not set in this process."
            )
        if any(char in value for char in "\r\n\0"):  # httpx's refusal would quote the value
            raise MCPClientError(f"Header {header} of MCP server {spec.name!r} ({reference}) holds a line break.")
        headers[header] = f"Bearer {value}" if header.lower() == "authorization" else value
    return headers


def stdio_parameters(spec: ServerSpec) -> StdioServerParameters:
    from interfaces.connectors.models import stdio_command_problem, stdio_commands

    if problem := stdio_command_problem(spec.command):
        raise MCPClientError(f"MCP server {spec.name!r} cannot start: {problem}")
    argv = stdio_commands()[spec.command]
    return StdioServerParameters(command=argv[0], args=list(argv[1:]))


def stdio_transport(spec: ServerSpec) -> Any:
    """The SDK's stdio transport for this server, its child's stderr on ``child_stderr()``."""
    return stdio_client(stdio_parameters(spec), errlog=child_stderr())


@functools.cache
def child_stderr() -> TextIO:
    """Where a stdio server's stderr goes: this process's own stderr file. The SDK's default is
    ``sys.stderr`` as it was when the SDK was imported, which in a Celery worker is a logging
    proxy with no file descriptor (the child could not be started)."""
    stream = sys.__stderr__
    try:
        if stream is not None and stream.fileno() >= 0:
            return stream
    except (AttributeError, ValueError, OSError):
        pass
    return open(os.devnull, "w")


# ---------------------------------------------------------------------------------------------
# Streamable HTTP through the outbound policy


class _Body(httpx2.AsyncByteStream):
    """The policy's response body as the SDK reads it; its failures as ``httpx2`` read errors."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise httpx2.ReadError(str(exc)) from None

    async def aclose(self) -> None:
        await self._response.aclose()


class OutboundTransport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport that sends every request through ``cosmos.outbound``."""

    def __init__(self, *, timeout: float, deadline: float) -> None:
        # Redirects are the SDK's to follow (it stays on the endpoint's origin); the policy
        # checks each connection either way.
        self._client = outbound.async_client(timeout=timeout, deadline=deadline, follow_redirects=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        forwarded = self._client.build_request(
            request.method, str(request.url), headers=request.headers.raw, content=body or None
        )
        try:
            response = await self._client.send(forwarded, stream=True)
        except httpx.HTTPError as exc:  # OutboundError included: one message, the detail is logged
            raise httpx2.ConnectError(str(exc), request=request) from None
        return httpx2.Response(
            response.status_code, headers=response.headers.raw, stream=_Body(response), request=request
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def http_client(spec: ServerSpec) -> httpx2.AsyncClient:
    limit = spec.connect_timeout + spec.call_timeout
    return httpx2.AsyncClient(
        transport=OutboundTransport(timeout=limit, deadline=limit + spec.connect_timeout),
        headers=resolve_headers(spec),
        timeout=httpx2.Timeout(spec.connect_timeout, read=limit),
    )


# ---------------------------------------------------------------------------------------------
# Sessions and operations


def message_handler(on_list_changed: OnListChanged | None) -> Callable[[Any], Awaitable[None]]:
    async def handle(message: Any) -> None:
        if on_list_changed is not None and isinstance(message, types.ToolListChangedNotification):
            await _notify(on_list_changed)
        await anyio.lowlevel.checkpoint()

    return handle


@asynccontextmanager
async def connected(spec: ServerSpec, *, on_list_changed: OnListChanged | None = None) -> AsyncIterator[Client]:
    """An SDK client session with this server, its revision negotiated. The caller bounds the time
    (a deadline must enclose the whole session: the SDK's task groups live inside it)."""
    async with AsyncExitStack() as stack:
        if spec.transport == "stdio":
            server: Any = stdio_transport(spec)
        else:
            from mcp.client.streamable_http import streamable_http_client

            http = await stack.enter_async_context(http_client(spec))
            server = streamable_http_client(spec.url, http_client=http)
        client = Client(
            server,
            mode="auto",
            cache=None,  # the catalogue caches the tool list itself
            client_info=CLIENT_INFO,
            message_handler=message_handler(on_list_changed),
        )
        yield await stack.enter_async_context(client)


def _tool_entry(tool: types.Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description or tool.title or "",
        "inputSchema": tool.input_schema or {"type": "object"},
    }


async def list_tools(spec: ServerSpec, *, on_list_changed: OnListChanged | None = None) -> list[dict[str, Any]]:
    """The server's tools (``name``, ``description``, ``inputSchema``), within ``connect_timeout`` in all."""

    async def listing() -> list[dict[str, Any]]:
        async with connected(spec, on_list_changed=on_list_changed) as client:
            tools: list[dict[str, Any]] = []
            cursor: str | None = None
            for _page in range(MAX_PAGES):
                result = await client.list_tools(cursor=cursor)
                tools.extend(_tool_entry(tool) for tool in result.tools)
                cursor = result.next_cursor
                if not cursor:
                    break
            return tools

    return await _guarded(listing(), spec, "listing its tools", spec.connect_timeout)


async def call_tool(
    spec: ServerSpec,
    tool: str,
    arguments: Mapping[str, Any],
    *,
    on_list_changed: OnListChanged | None = None,
    on_progress: OnProgress | None = None,
) -> types.CallToolResult:
    """Call one tool: connect within ``connect_timeout``, then answer within ``call_timeout``.

    ``on_progress`` hears the server's progress notifications for the call. Cancelling the
    awaiting task cancels the call: the SDK tells the server (2025-11-25) or
    drops the request's connection (2026-07-28), and the session closes."""

    async def calling() -> types.CallToolResult:
        called = False
        with anyio.CancelScope(deadline=anyio.current_time() + spec.connect_timeout) as limit:
            async with connected(spec, on_list_changed=on_list_changed) as client:
                limit.deadline, called = anyio.current_time() + spec.call_timeout, True
                if on_list_changed is None or client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    return await client.call_tool(tool, dict(arguments), progress_callback=on_progress)
                async with anyio.create_task_group() as watching:
                    watching.start_soon(watch_tool_changes, client, on_list_changed)
                    result = await client.call_tool(tool, dict(arguments), progress_callback=on_progress)
                    watching.cancel_scope.cancel()
                return result
        # Only the deadline gets here: the scope swallowed its own cancellation.
        if not called:
            raise TimeoutError
        raise MCPClientError(
            f"The tool {tool!r} of MCP server {spec.name!r} did not answer within {spec.call_timeout:g}s."
        )

    return await _guarded(calling(), spec, f"calling {tool!r}", None)


async def watch_tool_changes(client: Client, on_list_changed: OnListChanged) -> None:
    """For as long as a call lasts, hear the server say its tools changed (at 2026-07-28 it says
    so on a ``subscriptions/listen`` stream only; at 2025-11-25 the message handler hears it)."""
    try:
        async with client.listen(tools_list_changed=True) as subscription:
            async for _event in subscription:
                await _notify(on_list_changed)
    except Exception as exc:  # a server that does not offer it: the catalogue's TTL covers it
        logger.debug("no tools/list_changed subscription: %s", describe_failure(exc))


async def _notify(on_list_changed: OnListChanged) -> None:
    outcome = on_list_changed()
    if outcome is not None:
        await outcome


async def _guarded(operation: Awaitable[Any], spec: ServerSpec, doing: str, timeout: float | None) -> Any:
    """Every failure but cancellation as one ``MCPClientError`` naming the server and what failed."""
    try:
        with anyio.fail_after(timeout):
            return await operation
    except MCPClientError:
        raise
    except TimeoutError:
        raise MCPClientError(
            f"MCP server {spec.name!r} did not answer within {spec.connect_timeout:g}s ({doing})."
        ) from None
    except Exception as exc:  # transport, protocol, a process that died: the run goes on
        raise MCPClientError(f"MCP server {spec.name!r} failed while {doing}: {describe_failure(exc)}") from None


def describe_failure(exc: BaseException) -> str:
    """A short, credential-free reason (task groups wrap the real failure)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPClientError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    code = getattr(getattr(exc, "error", None), "code", None)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, httpx2.HTTPError | OSError):
        return f"unreachable or the connection broke ({message})"
    return f"{type(exc).__name__}{f' {code}' if code is not None else ''}: {message}"[:500]


# ---------------------------------------------------------------------------------------------
# A tool result as the model reads it


def result_text(result: types.CallToolResult) -> str:
    """Text content joined (structured content as JSON when there is no text); other content
    described briefly."""
    parts: list[str] = []
    for block in result.content or ():
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type} content, {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            kind = resource.mime_type or "binary"
            parts.append(text if isinstance(text, str) else f"[resource {resource.uri}, {kind}]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link {block.uri}: {block.name}]")
        else:
            parts.append(f"[{getattr(block, 'type', 'unknown')} content]")
    text = "\n".join(parts)
    if not text and result.structured_content is not None:
        # Servers also send structured content as text (the spec asks them to); only without it
        # is the JSON the answer.
        return json.dumps(result.structured_content, ensure_ascii=False)
    return text
