"""What every serving process does before it serves: take its port, start the OS, the worker,
the banner; and the pieces every server shares (the socket it listens on, the static files).

Both ``asteros serve`` and ``runserver`` try their address here first, before anything starts:
a port already in use stops them at once with a clear message and a non-zero exit (it used to
print the banner and hang, or exit 0). The banner is printed only once the server listens:
uvicorn is handed the bound socket (``sockets=``); Daphne binds again itself
(``ListeningServer``, which reports its own listen failure too, should another process take the
port in between).
"""

from __future__ import annotations

import errno
import json
import socket
from typing import TextIO

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import Http404

from asteros_site.banner import banner
from asteros_site.system import start_all
from cosmos.embedded import start_embedded_worker
from interfaces.edge.errors import error_body, status_error_response


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
    """Write code registrations and start the interfaces (so the first request is not the one
    that pays for it), start the embedded worker (a no-op in distributed mode). Callers check
    their address (``listening_socket``, ``check_address``) first."""
    start_all(strict=False)
    start_embedded_worker()


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
