"""uvicorn's HTTP/1.1 protocol with the read timeouts of every serving process (``docs/http.md``,
"Slow clients"): the headers of a request must arrive within ``ASTEROS_HEADER_TIMEOUT`` seconds
of the connection (or of the previous response), else a 408 and the connection is closed.
uvicorn has no such deadline of its own: a client that sent half its headers held the
connection for ever. The body's timeout is ``interfaces.edge.body.RequestBodyGuard``'s."""

from __future__ import annotations

from typing import Any

import h11
from django.conf import settings
from uvicorn.protocols.http.h11_impl import H11Protocol

from asteros_site.serving import header_timeout_response


class DeadlineH11Protocol(H11Protocol):
    _header_deadline: Any = None

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

    def _arm(self) -> None:
        self._cancel()
        self._header_deadline = self.loop.call_later(settings.ASTEROS.header_timeout, self._expire)

    def _cancel(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(header_timeout_response())
            self.transport.close()
