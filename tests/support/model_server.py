"""A local fake model server speaking the Anthropic Messages API and OpenAI Chat Completions.

Tests point the real SDKs at it; benchmarks run it as a process, for us and for peer frameworks::

    python -m tests.support.model_server --port 8765 --latency-ms 200 --tokens-per-second 50 --reply-tokens 100

Behaviour is deterministic:

- tools offered and the last message is a user message holding an arithmetic expression: call the
  first tool that looks like a calculator (name contains "calc", or it takes ``expression``);
- the last message carries tool results: answer "The result is <result>.";
- otherwise reply "(local model server) You said: <text>", or exactly N tokens with ``reply_tokens``.

Knobs for tests: ``fail_next(status=429, times=2)`` (or 500, or ``stall_seconds=`` which hangs
before the first byte, or ``stall_mid_stream_seconds=`` which hangs after the first token;
``times=None`` keeps failing until ``clear()``), ``reply_next(text, chunk_chars=...)`` answers
with exact text (a huge one in big deltas), ``call_tool_next(name, raw_arguments)`` calls a tool
with arguments sent as given (invalid JSON included; ``times=None`` calls it forever), a model
named ``no-such-...`` answers 404 in each API's error shape, ``require_key`` checks the key, and
``requests`` records what arrived (secret headers redacted).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

SECRET_HEADERS = frozenset({"x-api-key", "authorization", "api-key", "proxy-authorization", "cookie"})
BAD_MODEL_PREFIX = "no-such-"
_NUMBER = r"\d+(?:\.\d+)?"
ARITHMETIC = re.compile(rf"(?:[-+(]\s*)*{_NUMBER}\s*\)*(?:\s*(?:\*\*|//|[-+*/%])\s*(?:[-+(]\s*)*{_NUMBER}\s*\)*)+")
_TOKEN = re.compile(r"\s*\S+")
_VOCABULARY = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # secret values replaced by "<redacted>"
    body: Any
    api: str | None  # "anthropic", "openai" or None


@dataclass(slots=True)
class _Failure:
    status: int | None
    stall_seconds: float
    retry_after_ms: int | None
    stall_mid_stream_seconds: float = 0.0


@dataclass(slots=True)
class _Script:
    """A scripted answer: exact text (in ``chunk_chars`` pieces, or token by token), or one tool call."""

    text: str = ""
    chunk_chars: int = 0
    tool_name: str | None = None
    tool_arguments: str = ""


class _Queue:
    """Knobs consumed one per model request, then (if set) one that applies to every request."""

    __slots__ = ("forever", "items")

    def __init__(self) -> None:
        self.items: collections.deque = collections.deque()
        self.forever: Any = None

    def add(self, item: Any, times: int | None) -> None:
        if times is None:
            self.forever = item
        else:
            self.items.extend([item] * times)

    def pop(self) -> Any:
        return self.items.popleft() if self.items else self.forever

    def clear(self) -> None:
        self.items.clear()
        self.forever = None


@dataclass(slots=True)
class _Plan:
    """What the fake model answers: text tokens, or one tool call."""

    tokens: list[str]
    tool_name: str | None = None
    tool_arguments: str = ""
    input_tokens: int = 0  # the uncached part, as the APIs report it
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) if self.tool_name is None else max(1, len(self.tool_arguments) // 4)


class ServerThread:
    """Serve any ASGI app with uvicorn in a background thread, on a pre-bound socket (port 0 = free)."""

    def __init__(self, app: Callable, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> socket.socket:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it
        # small SSE writes on a kept-alive connection wait ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        return sock

    def start(self) -> None:
        sock = self._prepare()
        assert self._server is not None
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.005)

    def run(self) -> None:
        """Serve in the current thread until interrupted."""
        sock = self._prepare()
        assert self._server is not None
        print(f"listening on {self.url}", flush=True)
        self._server.run(sockets=[sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # don't wait for idle keep-alive connections
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ModelServer:
    """The fake model APIs, served on 127.0.0.1 and a free port by a background thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        tokens_per_second: float = 0.0,
        reply_tokens: int = 0,
        require_key: str | None = None,
        max_records: int = 1000,
        cache_min_tokens: int = 1024,
    ) -> None:
        self.latency_ms = latency_ms
        self.tokens_per_second = tokens_per_second
        self.reply_tokens = reply_tokens
        self.require_key = require_key
        # Prompt caching as the APIs do it: a prefix of at least this many tokens is cached
        # (Anthropic: up to the last block marked cache_control; OpenAI: on its own).
        self.cache_min_tokens = cache_min_tokens
        self._cached: set[tuple[str, str, str]] = set()  # (api, model, prefix)
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=max_records)
        self._failures = _Queue()
        self._scripts = _Queue()
        self._ids = itertools.count(1)
        self._thread = ServerThread(self, host=host, port=port)

    @property
    def url(self) -> str:
        return self._thread.url

    def start(self) -> ModelServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in the current thread until interrupted (the command-line mode)."""
        self._thread.run()

    def stop(self) -> None:
        self._thread.stop()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs for tests -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int | None = None,
        times: int | None = 1,
        *,
        stall_seconds: float = 0.0,
        stall_mid_stream_seconds: float = 0.0,
        retry_after_ms: int | None = 20,
    ) -> None:
        """Make the next ``times`` model requests fail; ``times=None``: every request until ``clear()``.

        ``status`` answers with that HTTP error (in the API's error shape). ``stall_seconds`` hangs
        before the first byte (until the client gives up), then answers normally unless ``status`` is
        set. ``stall_mid_stream_seconds`` streams the first token, then hangs (until the client gives
        up), then goes on. With none of them, the status is 500. ``retry_after_ms`` is sent as
        ``retry-after-ms`` (and rounded up to whole seconds as ``retry-after``, as real APIs do) so SDK
        retries stay fast; None leaves the SDK to its own backoff.
        """
        if status is None and not stall_seconds and not stall_mid_stream_seconds:
            status = 500
        self._failures.add(_Failure(status, stall_seconds, retry_after_ms, stall_mid_stream_seconds), times)

    def reply_next(self, text: str, *, chunk_chars: int = 0, times: int | None = 1) -> None:
        """Answer the next ``times`` model requests with exactly ``text`` (tools or not).

        ``chunk_chars`` streams it in pieces of that many characters (a multi-megabyte answer in a
        few hundred deltas); 0 streams it token by token.
        """
        self._scripts.add(_Script(text=text, chunk_chars=chunk_chars), times)

    def call_tool_next(self, name: str, arguments: str, *, times: int | None = 1) -> None:
        """Answer the next ``times`` model requests with a call of tool ``name``; ``times=None``
        calls it on every request, tool results or not (a model stuck in a loop).

        ``arguments`` is the raw JSON text the model sends, as is: it may be invalid JSON.
        """
        self._scripts.add(_Script(tool_name=name, tool_arguments=arguments), times)

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._records)

    def model_requests(self, api: str | None = None) -> list[RecordedRequest]:
        return [r for r in self._records if r.api is not None and (api is None or r.api == api)]

    def clear(self) -> None:
        self._cached.clear()
        self._records.clear()
        self._failures.clear()
        self._scripts.clear()

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw = await _read_body(receive)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        api = None
        if method == "POST" and path == "/v1/messages":
            api = "anthropic"
        elif method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            api = "openai"
        redacted = {k: ("<redacted>" if k in SECRET_HEADERS else v) for k, v in headers.items()}
        self._records.append(RecordedRequest(method, path, redacted, body, api))

        if api is None:
            if method == "GET" and path in ("/", "/health"):
                await _send_json(send, 200, {"status": "ok"})
            elif method == "GET" and path in ("/v1/models", "/models"):
                await _send_json(send, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            else:
                await _send_json(send, 404, {"error": {"type": "not_found", "message": f"No route {method} {path}"}})
            return
        if not isinstance(body, dict):
            await self._error(send, api, 400, "The body must be a JSON object.")
            return
        failure: _Failure | None = self._failures.pop()
        if failure is not None:
            if failure.stall_seconds and await _stall(receive, failure.stall_seconds):
                return  # the client gave up
            if failure.status is not None:
                await self._error(send, api, failure.status, "Injected failure.", failure.retry_after_ms)
                return
        key = _api_key(api, headers)
        if not key or (self.require_key is not None and key != self.require_key):
            await self._error(send, api, 401, "Invalid API key." if key else "Missing API key.")
            return
        model = str(body.get("model") or "")
        if model.startswith(BAD_MODEL_PREFIX):
            message = f"model: {model}" if api == "anthropic" else f"The model `{model}` does not exist."
            await self._error(send, api, 404, message)
            return
        script: _Script | None = self._scripts.pop()
        stall = failure.stall_mid_stream_seconds if failure is not None else 0.0
        if api == "anthropic":
            await self._anthropic(send, receive, body, script, stall)
        else:
            await self._openai(send, receive, body, script, stall)

    async def _error(self, send: Send, api: str, status: int, message: str, retry_after_ms: int | None = None) -> None:
        headers = []
        if retry_after_ms is not None:
            headers.append((b"retry-after-ms", str(retry_after_ms).encode()))
            headers.append((b"retry-after", str(math.ceil(retry_after_ms / 1000)).encode()))
        if api == "anthropic":
            kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
            payload: dict = {"type": "error", "error": {"type": kind, "message": message}}
            headers.append((b"request-id", f"req_{next(self._ids):06d}".encode()))
        else:
            kind, code = _OPENAI_ERROR_TYPES.get(status, ("server_error", None))
            payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        await _send_json(send, status, payload, headers)

    # -- the fake model ------------------------------------------------------------------------

    def _plan(
        self,
        user_text: str | None,
        results: list[str],
        tools: list[tuple[str, dict]],
        size: int,
        script: _Script | None = None,
    ) -> _Plan:
        input_tokens = max(1, size // 4)
        if script is not None and script.tool_name is not None:
            return _Plan([], script.tool_name, script.tool_arguments, input_tokens)
        if script is not None:
            step = script.chunk_chars
            tokens = [script.text[i : i + step] for i in range(0, len(script.text), step)] if step > 0 else None
            return _Plan(tokens if tokens is not None else _TOKEN.findall(script.text), input_tokens=input_tokens)
        if results:
            answer = f"The result is {results[0]}." if len(results) == 1 else f"The results are: {'; '.join(results)}."
            return _Plan(_TOKEN.findall(answer), input_tokens=input_tokens)
        if user_text is not None and tools:
            calculator = next((n for n, s in tools if "calc" in n.lower() or "expression" in _properties(s)), None)
            match = ARITHMETIC.search(user_text)
            if calculator and match:
                arguments = json.dumps({"expression": match.group(0).strip()})
                return _Plan([], calculator, arguments, input_tokens)
        if self.reply_tokens:
            count = self.reply_tokens
            tokens = [("" if i == 0 else " ") + _VOCABULARY[i % len(_VOCABULARY)] for i in range(count)]
        else:
            tokens = _TOKEN.findall(f"(local model server) You said: {user_text or ''}")
        return _Plan(tokens, input_tokens=input_tokens)

    def _cache(self, plan: _Plan, api: str, model: str, prefix: Any) -> None:
        """Split the plan's prompt into uncached, cache-read and cache-write tokens: a cacheable
        prefix is written the first time it is seen and read after that."""
        if prefix is None:
            return
        text = json.dumps(prefix, sort_keys=True)
        size = len(text) // 4
        if size < self.cache_min_tokens:
            return
        size = min(size, plan.input_tokens)
        key = (api, model, text)
        if key in self._cached:
            plan.cache_read_tokens = size
        else:
            self._cached.add(key)
            if api == "openai":  # OpenAI reports no writes: the first request is plain input
                return
            plan.cache_write_tokens = size
        plan.input_tokens = max(1, plan.input_tokens - size)

    async def _pace(self, start: float, index: int) -> None:
        """Token ``index`` is due at latency + index / tokens_per_second after ``start``."""
        due = start + self.latency_ms / 1000
        if self.tokens_per_second > 0:
            due += index / self.tokens_per_second
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _anthropic(
        self, send: Send, receive: Receive, body: dict, script: _Script | None, stall_seconds: float
    ) -> None:
        start = time.monotonic()
        user_text, results = _anthropic_last_turn(body.get("messages") or [])
        tools = [(t.get("name", ""), t.get("input_schema") or {}) for t in body.get("tools") or []]
        plan = self._plan(user_text, results, tools, len(json.dumps(body)), script)
        self._cache(plan, "anthropic", body["model"], _anthropic_cached_prefix(body))
        usage = {
            "input_tokens": plan.input_tokens,
            "cache_creation_input_tokens": plan.cache_write_tokens,
            "cache_read_input_tokens": plan.cache_read_tokens,
        }
        message_id = f"msg_{next(self._ids):06d}"
        model = body["model"]
        stop_reason = "tool_use" if plan.tool_name else "end_turn"
        tool_id = f"toolu_{next(self._ids):06d}"
        if not body.get("stream"):
            await self._pace(start, max(0, len(plan.tokens) - 1))
            if plan.tool_name:
                content = [
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": plan.tool_name,
                        "input": _json_or_text(plan.tool_arguments),
                    }
                ]
            else:
                content = [{"type": "text", "text": "".join(plan.tokens)}]
            await _send_json(
                send,
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": plan.output_tokens},
                },
            )
            return
        stream = _SSE(send)
        await stream.open()
        await stream.event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            },
        )
        if plan.tool_name:
            block = {"type": "tool_use", "id": tool_id, "name": plan.tool_name, "input": {}}
            await stream.event(
                "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
            )
            await self._pace(start, 0)
            for piece in _split3(plan.tool_arguments):
                delta = {"type": "input_json_delta", "partial_json": piece}
                await stream.event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        else:
            block = {"type": "text", "text": ""}
            await stream.event(
                "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
            )
            await stream.event("ping", {"type": "ping"})
            for index, token in enumerate(plan.tokens):
                await self._pace(start, index)
                delta = {"type": "text_delta", "text": token}
                await stream.event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                if index == 0 and stall_seconds and await _stall(receive, stall_seconds):
                    return  # the client gave up mid-stream
        await stream.event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await stream.event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": plan.output_tokens},
            },
        )
        await stream.event("message_stop", {"type": "message_stop"})
        await stream.close()

    async def _openai(
        self, send: Send, receive: Receive, body: dict, script: _Script | None, stall_seconds: float
    ) -> None:
        start = time.monotonic()
        user_text, results = _openai_last_turn(body.get("messages") or [])
        tools = [
            ((t.get("function") or {}).get("name", ""), (t.get("function") or {}).get("parameters") or {})
            for t in body.get("tools") or []
        ]
        plan = self._plan(user_text, results, tools, len(json.dumps(body)), script)
        self._cache(plan, "openai", body["model"], _openai_cached_prefix(body))
        completion_id = f"chatcmpl-{next(self._ids):06d}"
        call_id = f"call_{next(self._ids):06d}"
        model = body["model"]
        created = int(time.time())
        finish = "tool_calls" if plan.tool_name else "stop"
        prompt = plan.input_tokens + plan.cache_read_tokens  # OpenAI counts cached tokens in the prompt
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": plan.output_tokens,
            "total_tokens": prompt + plan.output_tokens,
            "prompt_tokens_details": {"cached_tokens": plan.cache_read_tokens, "audio_tokens": 0},
        }
        if not body.get("stream"):
            await self._pace(start, max(0, len(plan.tokens) - 1))
            message: dict[str, Any] = {"role": "assistant", "content": None if plan.tool_name else "".join(plan.tokens)}
            if plan.tool_name:
                function = {"name": plan.tool_name, "arguments": plan.tool_arguments}
                message["tool_calls"] = [{"id": call_id, "type": "function", "function": function}]
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            payload = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
            await _send_json(send, 200, payload)
            return

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }

        stream = _SSE(send)
        await stream.open()
        await stream.data(chunk({"role": "assistant", "content": ""}))
        if plan.tool_name:
            await self._pace(start, 0)
            first = {
                "index": 0,
                "id": call_id,
                "type": "function",
                "function": {"name": plan.tool_name, "arguments": ""},
            }
            await stream.data(chunk({"tool_calls": [first]}))
            for piece in _split3(plan.tool_arguments):
                await stream.data(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            for index, token in enumerate(plan.tokens):
                await self._pace(start, index)
                await stream.data(chunk({"content": token}))
                if index == 0 and stall_seconds and await _stall(receive, stall_seconds):
                    return  # the client gave up mid-stream
        await stream.data(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            await stream.data(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        await stream.raw(b"data: [DONE]\n\n")
        await stream.close()


# ---------------------------------------------------------------------------------------------
# helpers


class _SSE:
    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def open(self) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})

    async def raw(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def event(self, name: str, payload: dict) -> None:
        await self.raw(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    async def data(self, payload: dict) -> None:
        await self.raw(f"data: {json.dumps(payload)}\n\n".encode())

    async def close(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _stall(receive: Receive, seconds: float) -> bool:
    """Hang before the first byte; True when the client disconnected meanwhile."""
    try:
        message = await asyncio.wait_for(receive(), timeout=seconds)
    except TimeoutError:
        return False
    return message.get("type") == "http.disconnect"


async def _send_json(send: Send, status: int, payload: Any, headers: list | None = None) -> None:
    body = json.dumps(payload).encode()
    all_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def _json_or_text(text: str) -> Any:
    """Parsed JSON arguments; invalid ones as the raw text (only non-streaming answers need a value)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _api_key(api: str, headers: dict[str, str]) -> str:
    if api == "anthropic" and headers.get("x-api-key"):
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _anthropic_cached_prefix(body: dict) -> Any:
    """What a request asks to cache: tools, then system blocks, up to the last cache_control."""
    parts: list[Any] = [*(body.get("tools") or [])]
    system = body.get("system")
    parts.extend(system if isinstance(system, list) else ([system] if system else []))
    marked = [i for i, part in enumerate(parts) if isinstance(part, dict) and part.get("cache_control")]
    return parts[: marked[-1] + 1] if marked else None


def _openai_cached_prefix(body: dict) -> Any:
    """OpenAI caches on its own: the stable start of a prompt, tools and system messages here."""
    system = [m for m in body.get("messages") or [] if m.get("role") in ("system", "developer")]
    return [*(body.get("tools") or []), *system] or None


def _properties(schema: dict) -> dict:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _anthropic_last_turn(messages: list) -> tuple[str | None, list[str]]:
    """(user text, tool results) of the last message; text is None when it is not a user message."""
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return None, []
    content = messages[-1].get("content")
    if isinstance(content, list):
        results = [
            _text_of(b.get("content")) for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        if results:
            return None, results
    return _text_of(content), []


def _openai_last_turn(messages: list) -> tuple[str | None, list[str]]:
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.append(_text_of(message.get("content")))
    if results:
        return None, results[::-1]
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "user":
        return _text_of(messages[-1].get("content")), []
    return None, []


def _split3(text: str) -> list[str]:
    """Split JSON arguments into a few deltas, so clients must reassemble them."""
    if len(text) < 3:
        return [text]
    third = len(text) // 3
    return [text[:third], text[third : 2 * third], text[2 * third :]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Anthropic + OpenAI model server for tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument("--tokens-per-second", type=float, default=0.0, help="0 = as fast as possible")
    parser.add_argument("--reply-tokens", type=int, default=0, help="reply with exactly N tokens")
    args = parser.parse_args(argv)
    server = ModelServer(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        tokens_per_second=args.tokens_per_second,
        reply_tokens=args.reply_tokens,
        max_records=100,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
