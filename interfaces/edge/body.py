"""Reading a request's body, for every door: bounded in size and in time, chunked or not.

``RequestBodyGuard`` wraps the ASGI application (``asteros_site/asgi.py``). Before Django sees
an HTTP request it reads the body itself:

- a body sent with ``Transfer-Encoding: chunked`` (no ``Content-Length``) is read like any other
  and handed on with its ``Content-Length`` set: DRF took a missing length for an empty body;
- past ``ASTEROS_MAX_BODY_BYTES`` it stops reading and marks the request (``BODY_TOO_LARGE`` in
  its scope): ``RequestContextMiddleware`` answers the 413 in the shape of the door the request
  is for, as it does for a declared ``Content-Length`` over the limit;
- a client that stops sending in the middle of its body for ``ASTEROS_BODY_TIMEOUT`` seconds
  gets a 408 and the connection is closed: a slow client keeps its connection as long as it
  keeps sending, and a silent one does not hold a server slot for ever.

The headers' own deadline (``ASTEROS_HEADER_TIMEOUT``) is the server's job: see
``asteros_site.serving``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings

from interfaces.edge.errors import error_body

BODY_TOO_LARGE = "asteros.body_too_large"


class RequestBodyGuard:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        options = settings.ASTEROS
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), timeout=options.body_timeout)
            except TimeoutError:
                return await _refuse(send, 408, "request_timeout", _timeout_message(options.body_timeout))
            if message["type"] == "http.disconnect":
                return None  # the client left before its body was complete: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
            if size > options.max_body_bytes:
                scope = {**scope, BODY_TOO_LARGE: True}  # the rest is not read: the answer is a 413
                break
        body = b"".join(chunks)
        headers = [(name, value) for name, value in scope.get("headers", []) if name.lower() != b"transfer-encoding"]
        if not any(name.lower() == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        return await self.application({**scope, "headers": headers}, replay, send)


def _timeout_message(seconds: int) -> str:
    return f"The request body stopped arriving for {seconds} seconds (ASTEROS_BODY_TIMEOUT)."


async def _refuse(send: Any, status: int, code: str, message: str) -> None:
    payload = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
