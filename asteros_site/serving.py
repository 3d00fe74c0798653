"""What every serving process does before it serves: take its port, start the OS, the worker,
the banner; and the pieces every server shares (the socket it listens on, the static files, the
ASGI application that starts the OS before its first answer).

Every way of serving starts the OS (``start_serving``: registrations from code written, the
interfaces started, the embedded worker) before it answers, once per process: ``asteros serve``
and ``runserver`` before they listen; ``daphne``/``uvicorn asteros_site.asgi:application`` run
directly through ``StartBeforeServing``, the ASGI application's outer layer.

Both ``asteros serve`` and ``runserver`` try their address here first, before anything starts:
a port already in use stops them at once with a clear message and a non-zero exit (it used to
print the banner and hang, or exit 0). The banner is printed only once the server listens:
uvicorn is handed the bound socket (``sockets=``); Daphne binds again itself
(``ListeningServer``, which reports its own listen failure too, should another process take the
port in between).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.db import connections
from django.http import Http404

from asteros_site.banner import banner
from asteros_site.system import start_all
from cosmos.embedded import start_embedded_worker
from cosmos.engine import get_engine
from interfaces.edge.errors import error_body, status_error_response
from interfaces.schedules.services import start_embedded_beat

logger = logging.getLogger(__name__)

_start_lock = threading.Lock()
_started = False


class CannotListen(Exception):
    """The server cannot take its address; the message says why and what to do."""


def listening_socket(host: str, port: int | str) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, or ``CannotListen`` at once."""
    port = int(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Reuse an address in TIME_WAIT (a quick restart); a live listener still refuses the bind.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = f"port {port} is already in use on {host} (another server listens there)"
            advice = "stop that server, or choose another port (--port, or ASTEROS_PORT)"
        elif exc.errno == errno.EACCES:
            reason = f"no permission to listen on port {port}"
            advice = "choose a port above 1023 (--port, or ASTEROS_PORT)"
        else:
            reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            advice = "check the host and port"
        raise CannotListen(f"{reason}; {advice}.") from None
    sock.setblocking(False)
    return sock


def header_timeout_response() -> bytes:
    """The raw 408 a server writes when a request's headers did not arrive in time (before any
    request exists to answer through the application), in the one error shape."""
    seconds = settings.ASTEROS.header_timeout
    body = json.dumps(
        error_body(
            "request_timeout",
            f"The request headers did not arrive within {seconds} seconds (ASTEROS_HEADER_TIMEOUT).",
        )
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def check_address(host: str, port: int | str) -> None:
    """``CannotListen`` now if ``host:port`` cannot be listened on (for a server that binds itself)."""
    listening_socket(host, port).close()


def start_serving() -> None:
    """Write code registrations and start the interfaces, start the embedded worker and beat (a
    no-op in distributed mode; beat also with ASTEROS_ENABLE_SCHEDULER off). Once per process: a
    later call (the ASGI application's, in a process a command started already) does nothing. The
    commands check their address (``listening_socket``, ``check_address``) first, so the first
    request does not pay for it."""
    global _started
    with _start_lock:
        if _started:
            return
        start_all(strict=False)
        start_embedded_worker()
        start_embedded_beat()
        if settings.ASTEROS.distributed and settings.ASTEROS.api_runs:
            get_engine().accept_local_runs()  # ASTEROS_API_RUNS: this API process executes runs too
        _started = True


def serving_started() -> bool:
    return _started


def _start_serving_on_a_thread() -> None:
    try:
        start_serving()
    finally:
        connections.close_all()  # this thread's connections: it is a pool's, not a request's


class StartBeforeServing:
    """The outer layer of the ASGI application: the OS starts (``start_serving``) before the
    first answer, whichever server runs ``asteros_site.asgi:application``.

    A server speaking the ASGI lifespan protocol (uvicorn) starts it at ``lifespan.startup``,
    before it accepts a connection; Daphne has none, so its first connection starts it and every
    connection waits for that. Nothing happens on import (tests import the application); once
    ``asteros serve`` or ``runserver`` started the OS, only ``on_start`` runs (what lives in the
    server's event loop: the MCP SDK's task group); after that, the check is one flag.
    """

    def __init__(
        self,
        application: Any,
        *,
        on_start: Sequence[Callable[[], Awaitable[None]]] = (),
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.application = application
        # What must run in the server's own event loop once it serves (the MCP SDK's task group).
        self.on_start = list(on_start)
        self.on_stop = list(on_stop)
        self._lock = asyncio.Lock()  # bound to the server's loop on first use
        self._started = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if not self._started:
            await self.start()
        await self.application(scope, receive, send)

    async def start(self) -> None:
        async with self._lock:
            if self._started:
                return
            if not serving_started():
                # It writes to the database: on a thread, off the event loop.
                await sync_to_async(_start_serving_on_a_thread, thread_sensitive=False)()
            for hook in self.on_start:
                await hook()
            self._started = True

    async def stop(self) -> None:
        for hook in self.on_stop:
            try:
                await hook()
            except Exception:
                logger.exception("AsterOS could not stop cleanly")

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    logger.exception("AsterOS could not start")
                    await send({"type": "lifespan.startup.failed", "message": f"AsterOS could not start: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def start_before_serving_wsgi(application: Any) -> Any:
    """The WSGI entry's outer layer (gunicorn and other WSGI servers, HTTP only): the first
    request starts the OS before it is answered; after that, the check is one flag."""

    def serve(environ: dict, start_response: Any) -> Any:
        if not serving_started():
            _start_serving_on_a_thread()
        return application(environ, start_response)

    return serve


def announce(host: str, port: int | str, out: TextIO) -> None:
    """The banner: printed once the server listens."""
    out.write(banner(host, port) + "\n")
    out.flush()


class StaticFilesHandler(ASGIStaticFilesHandler):
    """Django's ``/static/`` handler, answering a missing file, or a path that leaves the static
    folders (``/static/..%2fsettings.py``), with a 404 in the error shape, in DEBUG too. Django's
    raises ``SuspiciousFileOperation`` for the latter, which this handler (outside the
    middleware) let through as a bare 500 page; a plain miss got the HTML debug page."""

    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("Nothing is here.") from None

    async def get_response_async(self, request):
        try:
            return await sync_to_async(self.serve, thread_sensitive=False)(request)
        except Http404:
            return status_error_response(404, "No static file at this path.")
