"""A run as a Chat Completions reply: one object, or a stream of chunks.

What the client sees:

- ``content``: the run's answer. Streaming, every text delta of the run as it comes.
- ``tool_calls`` with ``finish_reason: "tool_calls"``: only calls of the client's own tools
  (the request's ``tools``), which the run stopped for. The next request carries the
  assistant message and the ``tool`` results, and the agent goes on.
- The agent's server-side tool calls are never ``tool_calls``: they are listed in the
  extension field ``asteros.server_tool_calls`` (``{id, name, arguments, result}``) of the
  reply, or of the last chunk (the one with ``finish_reason``) when streaming.
- ``usage``: prompt tokens (uncached and cached), completion tokens, and cached tokens in
  ``prompt_tokens_details.cached_tokens``; streaming, in a last chunk with empty ``choices``
  when ``stream_options.include_usage`` is true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from cosmos.db import db_call
from cosmos.models import Run
from interfaces.openai import services
from interfaces.openai.errors import RunFailed
from interfaces.openai.translate import Reading, chat_usage, finish_reason, wire_tool_calls


def completion_id(run_id: Any) -> str:
    return f"chatcmpl-{uuid.UUID(str(run_id)).hex}"


def _extension(run: Run, reading: Reading) -> dict:
    extension: dict[str, Any] = {"run_id": str(run.id), "session_id": run.session_id}
    if reading.server_calls:
        extension["server_tool_calls"] = reading.server_calls
    return extension


def _failure(run: Run, reading: Reading) -> dict | None:
    if reading.ended == "error":
        return reading.error or {"code": "run_failed", "message": "The run failed."}
    if reading.ended == "cancelled":
        return {"code": "cancelled", "message": "The run was cancelled."}
    return None


async def completion(run: Run, model: str) -> dict:
    """Wait for the run, then its reply as one ``chat.completion`` object."""
    reading = Reading(services.client_names(run))
    async for _seq, event in services.run_events(str(run.id)):
        reading.read(event)
    failure = _failure(run, reading)
    if failure:
        raise RunFailed(failure, str(run.id))
    fresh = await db_call(services.run_row, str(run.id))
    usage = await db_call(services.usage_of, str(run.id))
    calls = reading.client_calls
    text = services.output_text(fresh) or reading.text
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = wire_tool_calls(calls)
    return {
        "id": completion_id(run.id),
        "object": "chat.completion",
        "created": int(run.created_at.timestamp()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(reading)}],
        "usage": chat_usage(usage) or chat_usage({"prompt": 0, "completion": 0, "cached": 0}),
        "asteros": _extension(fresh, reading),
    }


async def chunks(run: Run, model: str, include_usage: bool) -> AsyncIterator[tuple[None, Any]]:
    """The run's reply as ``chat.completion.chunk`` objects, then ``[DONE]`` (for ``stream_events``)."""
    base = {
        "id": completion_id(run.id),
        "object": "chat.completion.chunk",
        "created": int(run.created_at.timestamp()) or int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

    reading = Reading(services.client_names(run))
    yield None, chunk({"role": "assistant", "content": ""})
    async for _seq, event in services.run_events(str(run.id)):
        reading.read(event)
        if event.get("type") == "TEXT_MESSAGE_CONTENT" and event.get("delta"):
            yield None, chunk({"content": event["delta"]})
    failure = _failure(run, reading)
    if failure:
        yield (
            None,
            {"error": {"message": failure["message"], "type": "server_error", "param": None, "code": failure["code"]}},
        )
        yield None, "[DONE]"
        return
    fresh = await db_call(services.run_row, str(run.id))
    if not reading.text:
        text = services.output_text(fresh)
        if text:  # a star's or a workflow's answer that came as no text message of the run itself
            yield None, chunk({"content": text})
    calls = reading.client_calls
    if calls:
        wire = wire_tool_calls(calls)
        yield None, chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(wire)]})
    yield None, chunk({}, finish_reason(reading), asteros=_extension(fresh, reading))
    if include_usage:
        usage = await db_call(services.usage_of, str(run.id))
        yield None, {**base, "choices": [], "usage": chat_usage(usage or {"prompt": 0, "completion": 0, "cached": 0})}
    yield None, "[DONE]"
