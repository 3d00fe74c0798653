"""Daphne's server, telling its caller when it listens and why it could not, with the read
timeouts of every serving process (``docs/http.md``, "Slow clients"):

- the headers of a request must arrive within ``ASTEROS_HEADER_TIMEOUT`` seconds of the
  connection (or of the previous response): else a 408 and the connection is closed, however
  slowly the client trickles bytes;
- Twisted's idle timeout is ``ASTEROS_BODY_TIMEOUT``: a client silent that long in the middle of
  its body (or between two requests) is disconnected; one that keeps sending is never cut off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daphne.server import Server
from django.conf import settings
from twisted.internet import reactor

from asteros_site.serving import header_timeout_response


class ListeningServer(Server):
    """``on_listening`` runs once every endpoint listens; ``failure`` holds why one could not
    (Daphne only logs it and stops its reactor: the process then exited 0, or hung under
    runserver's autoreloader)."""

    def __init__(self, *args: Any, on_listening: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_listening = on_listening
        self.failure: str | None = None
        self._listening = 0

    def listen_success(self, port: Any) -> None:
        super().listen_success(port)
        self._listening += 1
        if self._listening == 1:
            install_read_timeouts(self.http_factory)
        if self._listening == len(self.endpoints) and self.on_listening is not None:
            self.on_listening()

    def listen_error(self, failure: Any) -> None:
        self.failure = failure.getErrorMessage()
        super().listen_error(failure)


def install_read_timeouts(factory: Any) -> None:
    """Every connection the factory builds from now on gets the header deadline; the idle
    timeout (Twisted's ``timeOut``, reset by every byte received) becomes the body timeout."""
    factory.timeOut = settings.ASTEROS.body_timeout
    build = factory.buildProtocol

    def build_with_deadline(addr: Any) -> Any:
        protocol = build(addr)
        channel = getattr(protocol, "_channel", protocol)
        _HeaderDeadline(channel)
        return protocol

    factory.buildProtocol = build_with_deadline


class _HeaderDeadline:
    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.call: Any = None
        headers_received = channel.allHeadersReceived
        request_done = channel.requestDone
        made = channel.connectionMade

        def connection_made() -> None:
            made()
            self.arm()

        def all_headers_received() -> None:
            self.cancel()
            headers_received()

        def done(request: Any) -> None:
            request_done(request)
            self.arm()  # keep-alive: the next request's headers have their own deadline

        def lost(reason: Any, lost_before: Callable = channel.connectionLost) -> None:
            self.cancel()
            lost_before(reason)

        channel.connectionMade = connection_made
        channel.allHeadersReceived = all_headers_received
        channel.requestDone = done
        channel.connectionLost = lost

    def arm(self) -> None:
        self.cancel()
        self.call = reactor.callLater(settings.ASTEROS.header_timeout, self.expire)

    def cancel(self) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None

    def expire(self) -> None:
        self.call = None
        transport = getattr(self.channel, "transport", None)
        if transport is None or getattr(self.channel, "_handlingRequest", False):
            return
        transport.write(header_timeout_response())
        transport.loseConnection()
