"""Server-Sent Events for run streams, reusable by every interface (REST, A2A, AG-UI).

The wire format is the plain SSE framing, LF only::

    id: 7
    data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"Hi"}

One ``data:`` line per event (compact JSON never contains a raw newline), ``id:`` is the run
event's ``seq`` so a client reconnecting with ``Last-Event-ID`` resumes exactly after it. While
nothing happens a comment line (``: keep-alive``) is sent every ``heartbeat`` seconds so proxies
keep the connection open. Each event is its own chunk: the ASGI server flushes it at once.

Typical use in an async (or sync, under ASGI) Django view::

    return sse_response(run_event_stream(run_id, after=last_event_id(request)))

``stream_events`` takes any async iterator of ``(seq, event)`` and an ``encode`` function, so the
A2A interface can translate events without a second pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.db import connections
from django.http import StreamingHttpResponse

from cosmos.eventlog import follow
from interfaces.edge.params import parse_whole_number

CONTENT_TYPE = "text/event-stream; charset=utf-8"
DEFAULT_HEARTBEAT = 15.0

Encoder = Callable[[int, dict], bytes | None]


def dumps(data: Any) -> str:
    """Compact JSON, UTF-8 text kept as is; never contains a raw newline."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def format_event(seq: int | str | None, data: Any, *, event: str | None = None) -> bytes:
    """One SSE frame: optional ``id:`` and ``event:`` lines, one ``data:`` line, a blank line."""
    lines = []
    if seq is not None:
        lines.append(f"id: {seq}")
    if event:
        lines.append(f"event: {event}")
    payload = data if isinstance(data, str) else dumps(data)
    # Defensive: a string payload with newlines becomes several data lines, as SSE requires.
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def format_comment(text: str = "keep-alive") -> bytes:
    return f": {text}\n\n".encode()


def format_retry(milliseconds: int) -> bytes:
    return f"retry: {int(milliseconds)}\n\n".encode()


def encode_run_event(seq: int, event: dict) -> bytes:
    return format_event(seq, event)


async def stream_events(
    source: AsyncIterator[tuple[int, dict]],
    *,
    encode: Encoder = encode_run_event,
    heartbeat: float = DEFAULT_HEARTBEAT,
    prelude: bytes | None = None,
) -> AsyncIterator[bytes]:
    """Turn ``(seq, event)`` pairs into SSE frames, with heartbeat comments while idle.

    The source is advanced by one pending task at a time, never cancelled by the heartbeat, and
    closed (``aclose``) when the client goes away, so its subscription is released.
    """
    iterator = source.__aiter__()
    pending: asyncio.Future | None = None
    try:
        if prelude:
            yield prelude
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield format_comment()
                continue
            task, pending = pending, None
            try:
                seq, event = task.result()
            except StopAsyncIteration:
                return
            frame = encode(seq, event)
            if frame:
                yield frame
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def run_event_stream(
    run_id: str,
    after: int = 0,
    *,
    heartbeat: float = DEFAULT_HEARTBEAT,
    encode: Encoder = encode_run_event,
) -> AsyncIterator[bytes]:
    """SSE frames of a run's events after ``after``, live until its terminal event."""
    return stream_events(follow(str(run_id), after=after), encode=encode, heartbeat=heartbeat)


def release_request_connections() -> None:
    """Give the request's database connections back before a stream starts.

    A sync view's connection is only closed when its response is (for a stream: when the client
    goes); meanwhile it is held out of the process's pool (``ASTEROS_DB_POOL_SIZE``), so a score
    of open streams would starve every other request, and the stream's own reads, which go
    through ``cosmos.db``. Async views hold none. A test's transaction is left alone.
    """
    try:
        asyncio.get_running_loop()
        return  # on the event loop: an async view, whose reads went through cosmos.db
    except RuntimeError:
        pass
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def sse_response(
    stream: AsyncIterator[bytes], *, status: int = 200, headers: dict[str, str] | None = None
) -> StreamingHttpResponse:
    """A streaming response that proxies and middleware must not buffer or compress."""
    release_request_connections()
    response = StreamingHttpResponse(stream, content_type=CONTENT_TYPE, status=status)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def parse_last_event_id(value: str | None) -> int | None:
    """The seq in a ``Last-Event-ID`` header; None when absent. ValueError when not a seq."""
    if value is None or value.strip() == "":
        return None
    return parse_whole_number(value)
