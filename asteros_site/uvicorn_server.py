"""uvicorn's HTTP/1.1 protocols with the read timeouts of every serving process (``docs/http.md``,
"Slow clients"): the headers of a request must arrive within ``ASTEROS_HEADER_TIMEOUT`` seconds
of the connection (or of the previous response), else a 408 and the connection is closed.
uvicorn has no such deadline of its own: a client that sent half its headers held the
connection for ever. The body's timeout is ``interfaces.edge.body.RequestBodyGuard``'s.

Two parsers, the same deadline: httptools (C, the faster; ``asteros serve --server uvicorn``
takes it when it is installed, as it is from requirements.txt) and h11 (pure Python).
"""

from __future__ import annotations

from typing import Any

import h11
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol

from asteros_site.serving import header_timeout_response

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed
    HttpToolsProtocol = None


class HeaderDeadline:
    """The deadline's timer, armed while the protocol waits for a request's headers."""

    _header_deadline: Any = None

    def _arm(self) -> None:
        self._cancel()
        self._header_deadline = self.loop.call_later(settings.ASTEROS.header_timeout, self._expire)

    def _cancel(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self.awaiting_headers() and not self.transport.is_closing():
            self.transport.write(header_timeout_response())
            self.transport.close()

    def awaiting_headers(self) -> bool:
        raise NotImplementedError


class DeadlineH11Protocol(HeaderDeadline, H11Protocol):
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel()  # the request line and headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


if HttpToolsProtocol is not None:

    class DeadlineHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):
        _headers_done = False

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._headers_done = False
            self._arm()

        def on_headers_complete(self) -> None:
            self._headers_done = True
            self._cancel()  # the request line and headers are in
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._headers_done = False  # the next request's headers are awaited
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def awaiting_headers(self) -> bool:
            return not self._headers_done


def http_protocol() -> type:
    """The fastest protocol installed: httptools', else h11's; each with the deadline."""
    return DeadlineH11Protocol if HttpToolsProtocol is None else DeadlineHttpToolsProtocol
