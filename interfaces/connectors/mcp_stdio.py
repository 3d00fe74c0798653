"""stdio MCP servers kept running: one SDK session per server per event loop.

Starting a stdio server is starting a process (hundreds of milliseconds for a Python one), so
its session is held, not opened per call. The run engine runs every run of a process on one
loop: there each server has one child, shared by all calls, concurrent ones included (the SDK
multiplexes JSON-RPC requests over one session). Any other loop (a test's) gets its own pool.

- One task per session (``HeldSession._own``) enters and exits the SDK's stdio ``Client`` (anyio
  cancel scopes must be left by the task that entered them); calls use the session from their
  own task. Cancelling a call, or its timeout, abandons that request only: the SDK sends the
  server ``notifications/cancelled`` and the session lives on.
- A child that exits or a session that breaks fails the calls in flight (an error the model
  reads); the next call starts a fresh child.
- A session ends when its row changes (``updated_at``), is disabled or deleted, or its command
  is no longer listed (checked every ``ROW_CHECK_SECONDS``, and at once on a save in this
  process); after ``IDLE_SECONDS`` without a call; and when the process exits. Ending a session
  ends its child (the SDK closes stdin, then terminates the process tree).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import math
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio
import mcp_types as types
from mcp import Client, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from cosmos.db import db_call
from interfaces.connectors.mcp_client import (
    CLIENT_INFO,
    MCPClientError,
    OnListChanged,
    OnProgress,
    ServerSpec,
    describe_failure,
    message_handler,
    stdio_transport,
    watch_tool_changes,
)

logger = logging.getLogger(__name__)

IDLE_SECONDS = 300.0
ROW_CHECK_SECONDS = 5.0


class _WatchedReader:
    """The child's message stream as the SDK reads it, calling ``ended`` when the child's output ends."""

    def __init__(self, inner: Any, ended: Callable[[], None]) -> None:
        self._inner = inner
        self._ended = ended

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended()
            raise

    async def aclose(self) -> None:
        self._ended()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@asynccontextmanager
async def _watched_stdio(spec: ServerSpec, ended: Callable[[], None]) -> AsyncIterator[tuple[Any, Any]]:
    async with stdio_transport(spec) as (read, write):
        yield _WatchedReader(read, ended), write


class HeldSession:
    """One running child and its SDK session, owned by one task on the loop that started it."""

    def __init__(self, spec: ServerSpec, on_list_changed: OnListChanged | None) -> None:
        self.spec = spec
        self.on_list_changed = on_list_changed
        self.client: Client | None = None
        self.failure = ""
        self.in_flight = 0
        self._loop = asyncio.get_running_loop()
        self.last_used = self._loop.time()
        self._ready = anyio.Event()  # (anyio's: the owner task waits inside the SDK's anyio scopes)
        self._stop = anyio.Event()  # closed, or the child's output ended
        self._child_ended = False
        self.finished = anyio.Event()
        self.task = self._loop.create_task(self._own(), name=f"mcp-stdio-{spec.name}")

    @property
    def usable(self) -> bool:
        return not self._stop.is_set() and not self.finished.is_set()

    def close(self) -> None:
        """End the session (and its child) soon; the calls in flight fail. Loop thread only."""
        self._stop.set()

    def _child_output_ended(self) -> None:
        self._child_ended = True
        self._stop.set()

    async def client_ready(self) -> Client:
        """The session, once started (``connect_timeout``); ``MCPClientError`` if it could not start."""
        await self._ready.wait()  # set once started, or once it could not start
        if self.client is None or not self.usable:
            raise MCPClientError(
                self.failure or f"MCP server {self.spec.name!r} failed while starting: the session ended."
            )
        return self.client

    async def _own(self) -> None:
        spec = self.spec
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + spec.connect_timeout) as limit:
                client = Client(
                    _watched_stdio(spec, self._child_output_ended),
                    mode="auto",
                    cache=None,
                    client_info=CLIENT_INFO,
                    message_handler=message_handler(self.on_list_changed),
                )
                async with client, anyio.create_task_group() as watching:
                    limit.deadline = math.inf
                    self.client = client
                    self._ready.set()
                    if self.on_list_changed is not None and client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                        # At 2026-07-28 a server says its tools changed on a subscription only:
                        # held for as long as the session (at 2025-11-25 the message handler hears it).
                        watching.start_soon(watch_tool_changes, client, self.on_list_changed)
                    await self._serve()
                    watching.cancel_scope.cancel()
            if self.client is None:
                self.failure = f"MCP server {spec.name!r} did not start within {spec.connect_timeout:g}s."
        except MCPClientError as exc:
            self.failure = str(exc)
        except Exception as exc:  # the command failed to start or the handshake broke
            self.failure = f"MCP server {spec.name!r} failed while starting: {describe_failure(exc)}"
            logger.warning("%s", self.failure)
        finally:
            self.finished.set()
            self._ready.set()

    async def _serve(self) -> None:
        """Hold the session until it is closed, idle, stale or its child ends."""
        try:
            while not self._stop.is_set():
                idle_at = self.last_used + IDLE_SECONDS
                with anyio.move_on_after(max(0.0, min(ROW_CHECK_SECONDS, idle_at - self._loop.time()))):
                    await self._stop.wait()
                if self._child_ended:
                    logger.info("MCP server %s: its process ended; the next call starts it again", self.spec.name)
                elif self._stop.is_set():
                    pass
                elif self.in_flight == 0 and self._loop.time() >= idle_at:
                    logger.info("MCP server %s: idle, stopping its process", self.spec.name)
                    return
                elif not await db_call(_still_current, self.spec):
                    logger.info("MCP server %s changed or was disabled: stopping its process", self.spec.name)
                    return
        finally:
            self._stop.set()


def _still_current(spec: ServerSpec) -> bool:
    """The server's row is still the one this session was started for, enabled, its command listed."""
    from interfaces.connectors.models import MCPServer, stdio_command_problem

    row = MCPServer.objects.filter(pk=spec.name, enabled=True).first()
    return (
        row is not None
        and row.transport == "stdio"
        and row.command == spec.command
        and ServerSpec.from_row(row) == spec
        and stdio_command_problem(row.command) is None
    )


class SessionPool:
    """The held sessions of one event loop, by server name."""

    def __init__(self) -> None:
        self.sessions: dict[str, HeldSession] = {}

    def session(self, spec: ServerSpec, on_list_changed: OnListChanged | None) -> HeldSession:
        held = self.sessions.get(spec.name)
        if held is not None and held.usable and held.spec == spec:
            return held
        if held is not None:
            held.close()  # a changed row or a dead child: a fresh one
        held = self.sessions[spec.name] = HeldSession(spec, on_list_changed)
        return held

    def close(self, name: str | None = None) -> list[HeldSession]:
        closing = [held for key, held in list(self.sessions.items()) if name is None or key == name]
        for held in closing:
            held.close()
            if self.sessions.get(held.spec.name) is held:
                del self.sessions[held.spec.name]
        return closing


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def pool() -> SessionPool:
    """This loop's pool."""
    loop = asyncio.get_running_loop()
    with _pools_lock:
        found = _pools.get(loop)
        if found is None:
            found = _pools[loop] = SessionPool()
        return found


def close_sessions(name: str | None = None, *, wait: float = 0.0) -> None:
    """End the held sessions of ``name`` (every server when None) on every loop; thread-safe.
    With ``wait``, until their children are gone (at most that many seconds)."""
    with _pools_lock:
        pools = list(_pools.items())
    futures: list[concurrent.futures.Future[Any]] = []
    for loop, found in pools:
        if loop.is_closed() or not loop.is_running():
            continue

        async def closing(found: SessionPool = found) -> None:
            held = found.close(name)
            for session in held:
                await session.finished.wait()

        try:
            futures.append(asyncio.run_coroutine_threadsafe(closing(), loop))
        except RuntimeError:  # the loop closed meanwhile
            continue
    if wait and futures:
        concurrent.futures.wait(futures, timeout=wait)


async def call_tool(
    spec: ServerSpec,
    tool: str,
    arguments: Mapping[str, Any],
    *,
    on_list_changed: OnListChanged | None = None,
    on_progress: OnProgress | None = None,
) -> types.CallToolResult:
    """``mcp_client.call_tool`` over this loop's held session of a stdio server: the session
    starts within ``connect_timeout``, the call answers within ``call_timeout``; cancelling the
    awaiting task abandons this request only."""
    held = pool().session(spec, on_list_changed)
    held.in_flight += 1
    try:
        client = await held.client_ready()
        try:
            with anyio.fail_after(spec.call_timeout):
                return await client.call_tool(tool, dict(arguments), progress_callback=on_progress)
        except TimeoutError:
            raise MCPClientError(
                f"The tool {tool!r} of MCP server {spec.name!r} did not answer within {spec.call_timeout:g}s."
            ) from None
        except Exception as exc:  # the child died, the session broke, a protocol error
            if isinstance(exc, MCPError) and exc.error.code == types.CONNECTION_CLOSED:
                held.close()  # the next call starts a fresh child
            raise MCPClientError(
                f"MCP server {spec.name!r} failed while calling {tool!r}: {describe_failure(exc)}"
            ) from None
    finally:
        held.in_flight -= 1
        held.last_used = asyncio.get_running_loop().time()


# The process exits: end the children (they would also exit when their stdin closes with us).
atexit.register(close_sessions, wait=5.0)
