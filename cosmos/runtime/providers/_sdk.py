"""Shared plumbing for the SDK-backed providers: per-event-loop clients and error mapping."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import (
    MODEL_AUTH,
    MODEL_ERROR,
    MODEL_NOT_FOUND,
    MODEL_RATE_LIMITED,
    MODEL_TIMEOUT,
    MODEL_UNAVAILABLE,
    ModelError,
)

# One SDK client (one httpx connection pool) serves this many streams at once before the loop
# opens another. httpcore scans every connection of its pool for each request, so one pool of a
# thousand connections costs the SDK ~40% more CPU per call than pools of 32 (measured with
# bench/bench_sdk_floor.py --clients); a quiet process still uses a single client.
STREAMS_PER_CLIENT = 32


class LoopClients:
    """SDK clients cached per running event loop, each lent to at most STREAMS_PER_CLIENT streams.

    An httpx connection pool belongs to the loop that opened its sockets; a worker that runs each
    run under its own ``asyncio.run`` would otherwise reuse dead connections. Clients per loop
    (and per key/base URL) keep connection reuse inside a loop and correctness across loops.
    """

    __slots__ = ("_by_loop", "_factory")

    def __init__(self, factory: Callable[[str, str | None], Any]) -> None:
        self._factory = factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()

    @contextmanager
    def lease(self, api_key: str, base_url: str | None) -> Iterator[Any]:
        """A client for one stream: the least busy of this loop's, or a new one if all are full."""
        loop = asyncio.get_running_loop()
        clients = self._by_loop.get(loop)
        if clients is None:
            clients = self._by_loop[loop] = {}
        lent = clients.setdefault((api_key, base_url), [])  # [client, streams open] pairs
        pair = min(lent, key=itemgetter(1)) if lent else None
        if pair is None or pair[1] >= STREAMS_PER_CLIENT:
            pair = [self._factory(api_key, base_url), 0]
            lent.append(pair)
        pair[1] += 1
        try:
            yield pair[0]
        finally:
            pair[1] -= 1


def shown_url(client: Any, fallback: str | None) -> str:
    """The API address a client calls (its base URL, the SDK's default included), without any
    user, password, query or fragment: safe for an error message."""
    raw = str(getattr(client, "base_url", None) or fallback or "")
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "its default address"


def _api_detail(exc: Any) -> str:
    """The server's own error message, short; never the request (it carries the key)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else None
    if not message:
        message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or ""
    message = str(message)
    return message if len(message) <= 300 else message[:297] + "..."


def _api_code(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
    return ""


def _after(retries: int) -> str:
    return "1 retry" if retries == 1 else f"{retries} retries"


def to_model_error(
    exc: BaseException, sdk: Any, *, label: str, model: str, retries: int, timeout: float, url: str = ""
) -> ModelError:
    """Map an SDK or transport exception to a ModelError with a stable code and a clear message.

    ``url`` (see ``shown_url``) names the address tried when the server could not be reached.
    """
    import httpx2  # the transport under both SDKs; imported with them

    at = f" at {url}" if url else ""
    if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
        return ModelError(MODEL_TIMEOUT, f"{label}{at} did not answer within {timeout:g}s (after {_after(retries)}).")
    if isinstance(exc, sdk.APIConnectionError):
        return ModelError(MODEL_UNAVAILABLE, f"Could not reach the {label} API{at} (after {_after(retries)}).")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        detail = _api_detail(exc)
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            return ModelError(MODEL_AUTH, f"{label} rejected the API key (HTTP {status}){suffix}")
        if status == 404 or _api_code(exc) == "model_not_found":
            return ModelError(MODEL_NOT_FOUND, f"{label} does not know the model {model!r} (HTTP {status}){suffix}")
        if status == 429:
            return ModelError(
                MODEL_RATE_LIMITED, f"{label} is rate limiting requests (HTTP 429 after {_after(retries)}){suffix}"
            )
        if status >= 500:
            return ModelError(
                MODEL_UNAVAILABLE, f"{label} is unavailable (HTTP {status} after {_after(retries)}){suffix}"
            )
        return ModelError(MODEL_ERROR, f"{label} rejected the request (HTTP {status}){suffix}")
    if isinstance(exc, sdk.APIError):
        # An error event inside an open stream, e.g. {"type": "overloaded_error"}.
        detail = _api_detail(exc)
        if "overloaded" in _api_code(exc):
            return ModelError(MODEL_UNAVAILABLE, f"{label} is overloaded: {detail}")
        return ModelError(MODEL_ERROR, f"{label} stream failed: {detail}")
    if isinstance(exc, httpx2.HTTPError):
        return ModelError(MODEL_UNAVAILABLE, f"The connection to {label}{at} failed mid-stream ({type(exc).__name__}).")
    return ModelError(MODEL_ERROR, f"{label} failed: {type(exc).__name__}: {exc}")
