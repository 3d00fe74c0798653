"""``/mcp`` in the ASGI router: the gate every MCP request passes, then the SDK's Streamable HTTP
session manager (stateless: any process answers any request).

The gate does what the edge does for every door, in MCP's terms (HTTP status and a JSON-RPC
error body): the body cap (``RequestBodyGuard`` read the body: 413 past
``ASTEROS_MAX_BODY_BYTES``), the Host (Django's ``ALLOWED_HOSTS``), the Origin (a browser page
the CORS policy would refuse gets 403: ``interfaces.edge.origins``, the websockets' rule, which
the spec asks of every server against DNS rebinding), then the caller (``require_access``: the
same keys, scopes and requests-per-minute quota; 401 with ``WWW-Authenticate`` without a key,
403 without the scope: ``read`` to list and read, ``run`` for ``tools/call``).

The SDK's manager runs in a task of the serving process's event loop (``MCPEndpoint.start``),
started by the ASGI application's outer layer (``asteros_site.serving.StartBeforeServing``:
uvicorn's lifespan startup, Daphne's first connection), never on import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import ListenHandler
from mcp_types import DEFAULT_NEGOTIATED_VERSION, INVALID_REQUEST
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from cosmos.db import db_call
from cosmos.logging import request_id_var
from interfaces.edge.auth import caller_of, require_access
from interfaces.edge.body import BODY_TOO_LARGE
from interfaces.edge.errors import classify
from interfaces.edge.origins import cors_allows
from interfaces.mcp.calls import cancel_by_request_id
from interfaces.mcp.changes import CatalogueWatch
from interfaces.mcp.server import PRINCIPAL, build_server

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("asteros.access")

PATHS = ("/mcp", "/mcp/")
RUN_METHODS = frozenset({"tools/call"})  # the methods that need the ``run`` scope


def enabled() -> bool:
    return bool(getattr(settings.ASTEROS, "enable_mcp", True))


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS`` as Django applies it (``HttpRequest.get_host``: in DEBUG, none means local)."""
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]
    return list(settings.ALLOWED_HOSTS)


def _headers(scope: dict) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers") or ()}


async def _answer(
    send: Any,
    status: int,
    code: str,
    message: str,
    *,
    request_id: Any = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> None:
    """A refusal before the SDK: the HTTP status, and a JSON-RPC error naming our error code."""
    data: dict[str, Any] = {"code": code}
    if details is not None:
        data["details"] = details
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": INVALID_REQUEST, "message": message, "data": data}}
    ).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


CORS_HEADERS = [
    (b"access-control-expose-headers", b"mcp-session-id, mcp-protocol-version, www-authenticate, retry-after"),
    (b"vary", b"origin"),
]
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"authorization, x-api-key, content-type, accept, last-event-id, mcp-protocol-version, mcp-session-id, "
        b"mcp-method, mcp-name",
    ),
    (b"access-control-max-age", b"600"),
]


def _with_cors(send: Any, origin: str) -> Any:
    async def send_with_cors(message: dict) -> None:
        if message["type"] == "http.response.start":
            extra = [(b"access-control-allow-origin", origin.encode("latin-1")), *CORS_HEADERS]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_cors


async def _preflight(send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": PREFLIGHT_HEADERS})
    await send({"type": "http.response.body", "body": b""})


def _peek(body: bytes) -> tuple[str, Any, Any]:
    """(the JSON-RPC method, its id, its params) of a body; ("", None, None) for anything the SDK
    will refuse itself."""
    try:
        message = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return "", None, None
    if not isinstance(message, dict):
        return "", None, None
    method = message.get("method")
    request_id = message.get("id")
    return (
        method if isinstance(method, str) else "",
        request_id if isinstance(request_id, str | int) else None,
        message.get("params"),
    )


def _handshake_era(headers: dict[str, str]) -> bool:
    return headers.get("mcp-protocol-version", DEFAULT_NEGOTIATED_VERSION) in HANDSHAKE_PROTOCOL_VERSIONS


@dataclass
class Exchange:
    """What the access log says of a request: its status and its JSON-RPC method."""

    status: int = 0
    rpc: str = ""


class MCPEndpoint:
    """The ``/mcp`` ASGI application; one per process."""

    def __init__(self) -> None:
        self.manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _serving(self) -> bool:
        # A server has one loop for its life; a process that runs several in turn (tests) gets a
        # manager per loop, since a task group cannot outlive its loop.
        return self.manager is not None and self._loop is asyncio.get_running_loop()

    async def start(self) -> None:
        """Start the SDK's manager (its task group and lifespan) in this event loop, once."""
        if self._serving() or not enabled():
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.manager, self._lock, self._loop = None, asyncio.Lock(), loop
        assert self._lock is not None
        async with self._lock:
            if self._serving():
                return
            watch = CatalogueWatch()
            listen = ListenHandler(watch)
            version = settings.SPECTACULAR_SETTINGS.get("VERSION", "")
            server = build_server(settings.ASTEROS.name, version, watch.serving(listen))
            # Stateless: a handshake-era client's requests each stand alone, so any API process
            # answers any of them; 2026-07-28 requests are stateless by the protocol itself.
            manager = StreamableHTTPSessionManager(
                app=server, stateless=True, max_request_body_size=settings.ASTEROS.max_body_bytes
            )
            ready = asyncio.Event()
            self._stop = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._hold(manager, watch, listen, ready, self._stop))
            await ready.wait()
            if self._task.done():
                self._task.result()  # raises why the manager could not start
            self.manager = manager

    async def _hold(
        self,
        manager: StreamableHTTPSessionManager,
        watch: CatalogueWatch,
        listen: ListenHandler,
        ready: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        """The manager's task group (and the catalogue's watch) live as long as this task."""
        try:
            async with manager.run(), anyio.create_task_group() as group:
                group.start_soon(watch.run)
                ready.set()
                await stop.wait()
                listen.close()  # listen streams end gracefully, with their final result
                group.cancel_scope.cancel()
        finally:
            ready.set()  # a manager that could not start must not leave start() waiting

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)
        self.manager = self._task = self._stop = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """One request, logged like every other (``asteros.access``, with its ``X-Request-ID``);
        a failure of ours is a 500 with a JSON-RPC error, never a bare one."""
        incoming = _headers(scope).get("x-request-id", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        started = time.perf_counter()
        exchange = Exchange()

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.serve(scope, receive, send_logged, exchange)
        except Exception:
            logger.exception("MCP request failed")
            if not exchange.status:
                await _answer(send_logged, 500, "internal_error", "The server failed; the error is in its log.")
        finally:
            extra = {"method": scope.get("method"), "path": scope.get("path"), "status": exchange.status}
            extra |= {"rpc": exchange.rpc, "ms": round((time.perf_counter() - started) * 1000, 2)}
            access_logger.info("request", extra=extra)
            request_id_var.reset(token)

    async def serve(self, scope: dict, receive: Any, send: Any, exchange: Exchange) -> None:
        await self.start()
        if scope.get(BODY_TOO_LARGE):
            limit = settings.ASTEROS.max_body_bytes
            return await _answer(send, 413, "payload_too_large", f"The body is larger than {limit} bytes.")
        headers = _headers(scope)
        host, _port = split_domain_port(headers.get("host", ""))
        if not host or not validate_host(host, allowed_hosts()):
            return await _answer(send, 400, "disallowed_host", "This Host is not served here (ALLOWED_HOSTS).")
        if not cors_allows(headers, scope.get("scheme", "http")):
            return await _answer(send, 403, "origin_not_allowed", "Requests from this Origin are not allowed.")
        if "origin" in headers:  # a browser page the CORS policy allows: tell the browser so
            send = _with_cors(send, headers["origin"])
            if scope.get("method") == "OPTIONS":
                return await _preflight(send)
        first = await receive()
        body = first.get("body", b"") if first.get("type") == "http.request" else b""
        method, request_id, params = _peek(body)
        exchange.rpc = method
        needed = "run" if method in RUN_METHODS else "read"
        try:
            principal = await db_call(require_access, scope.get("headers") or [], None, needed)
        except Exception as exc:
            refusal = classify(exc)
            return await _answer(
                send,
                refusal.status,
                refusal.code,
                refusal.message,
                request_id=request_id,
                details=refusal.details,
                headers=dict(refusal.headers),
            )
        if method == "notifications/cancelled" and _handshake_era(headers) and isinstance(params, dict):
            # Here, not in the SDK: a stateless request's handlers end with its 202 (the run may be
            # another process's). 2026-07-28 clients cancel by closing the call's stream instead.
            await db_call(cancel_by_request_id, caller_of(principal), params.get("requestId"))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        assert self.manager is not None
        await self.manager.handle_request({**scope, PRINCIPAL: principal}, replay, send)


class MCPRouter:
    """HTTP: ``/mcp`` to the MCP endpoint (when ``ASTEROS_ENABLE_MCP`` is on), the rest to Django."""

    def __init__(self, django_app: Any, endpoint: MCPEndpoint) -> None:
        self.django_app = django_app
        self.endpoint = endpoint

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in PATHS and enabled():
            return await self.endpoint(scope, receive, send)
        return await self.django_app(scope, receive, send)
