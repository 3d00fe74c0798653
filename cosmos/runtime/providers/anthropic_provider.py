"""Anthropic Messages API through the official async SDK, streamed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...outbound import defined_address_problem
from ..errors import MODEL_AUTH, MODEL_NOT_FOUND, MODEL_UNAVAILABLE, ModelError
from ._sdk import LoopClients, shown_url, to_model_error
from .base import (
    Finish,
    ModelRequest,
    ProviderEvent,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    caching_enabled,
)

if TYPE_CHECKING:
    import anthropic

DEFAULT_MAX_TOKENS = 4096
# Prompt caching: the API caches the prompt's prefix up to a block marked with this.
CACHE_CONTROL = {"type": "ephemeral"}


def to_anthropic_messages(messages: Sequence[dict]) -> list[dict]:
    """Internal messages -> Messages API turns; tool results become tool_result blocks of one user turn."""
    out: list[dict] = []
    results: list[dict] | None = None  # the open user turn collecting consecutive tool results
    for message in messages:
        role = message.get("role")
        if role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message.get("content") or "",
            }
            if message.get("is_error"):
                block["is_error"] = True
            if results is None:
                results = []
                out.append({"role": "user", "content": results})
            results.append(block)
            continue
        results = None
        if role == "user":
            out.append({"role": "user", "content": message.get("content") or ""})
        elif role == "assistant":
            blocks: list[dict] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            for call in message.get("tool_calls") or ():
                blocks.append(
                    {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call.get("arguments") or {}}
                )
            if blocks:  # the API refuses empty assistant turns
                out.append({"role": "assistant", "content": blocks})
    return out


def to_anthropic_tools(tools: Sequence[dict]) -> list[dict]:
    return [
        {"name": t["name"], "description": t.get("description", ""), "input_schema": t["parameters"]} for t in tools
    ]


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._clients = LoopClients(self._new_client)

    def __repr__(self) -> str:  # never show the key
        return f"<AnthropicProvider base_url={self._base_url!r}>"

    def _new_client(self, api_key: str, base_url: str | None) -> anthropic.AsyncAnthropic:
        import anthropic  # the SDK takes a second to import: only when a run first needs it

        # An explicit api_key keeps the SDK from looking for profiles or other credential sources.
        return anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=self._timeout, max_retries=self._max_retries
        )

    def _lease(self) -> AbstractContextManager[anthropic.AsyncAnthropic]:
        if self._base_url and (refused := defined_address_problem(self._base_url)):
            raise ModelError(MODEL_UNAVAILABLE, f"The model API address was refused: {refused}")
        if self._base_url:
            # An address a definition chose gets only the key chosen with it, never the server's
            # ANTHROPIC_API_KEY (which goes to ANTHROPIC_BASE_URL or Anthropic's own API).
            api_key, base_url = self._api_key, self._base_url
        else:
            api_key = self._api_key or os.environ.get("ANTHROPIC_API_KEY")
            base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
        if not api_key:
            where = "" if not self._base_url else f" for {shown_url(None, self._base_url)}"
            fallback = "" if self._base_url else ", or ANTHROPIC_API_KEY in the environment of the workers"
            raise ModelError(
                MODEL_AUTH,
                f"No Anthropic API key{where}: set the agent's (or its template's) API key reference, "
                f"env:ASTEROS_SECRET_...{fallback}.",
            )
        return self._clients.lease(api_key, base_url)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        params = request.params
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": int(params.get("max_tokens") or DEFAULT_MAX_TOKENS),
            "messages": to_anthropic_messages(request.messages),
        }
        # System messages inside the history (an AG-UI client may send some) join the system prompt.
        extra = [m.get("content") or "" for m in request.messages if m.get("role") in ("system", "developer")]
        cache = caching_enabled(params)
        if cache and request.system:
            # Blocks, so that the agent's own prompt (the stable part) carries the cache marker and
            # what a client adds, which may change from run to run, comes after it.
            kwargs["system"] = [
                {"type": "text", "text": request.system, "cache_control": CACHE_CONTROL},
                *({"type": "text", "text": part} for part in extra if part),
            ]
        elif system := "\n\n".join(part for part in (request.system, *extra) if part):
            kwargs["system"] = system
        if request.tools:
            tools = to_anthropic_tools(request.tools)
            if cache:  # the marker on the last tool caches every tool definition (they come first)
                tools[-1]["cache_control"] = CACHE_CONTROL
            kwargs["tools"] = tools
        for name in ("temperature", "top_p", "top_k"):
            if params.get(name) is not None:
                kwargs[name] = params[name]
        stop = params.get("stop_sequences") or params.get("stop")
        if stop:
            kwargs["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return kwargs

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        lease = self._lease()  # fails before any network when there is no key
        if not request.model:
            raise ModelError(MODEL_NOT_FOUND, "No model configured for the anthropic provider.")
        kwargs = self._arguments(request)
        input_tokens = output_tokens = cache_read = cache_write = 0
        reason = "end_turn"
        open_calls: dict[int, str] = {}  # content block index -> tool_use id
        client = None
        try:
            with lease as client:
                stream = await client.messages.create(stream=True, **kwargs)
                async with stream:
                    async for event in stream:
                        kind = event.type
                        if kind == "content_block_delta":
                            delta = event.delta
                            if delta.type == "text_delta":
                                if delta.text:
                                    yield TextDelta(delta.text)
                            elif delta.type == "input_json_delta":
                                call_id = open_calls.get(event.index)
                                if call_id and delta.partial_json:
                                    yield ToolCallArgsDelta(call_id, delta.partial_json)
                        elif kind == "content_block_start":
                            block = event.content_block
                            if block.type == "tool_use":
                                open_calls[event.index] = block.id
                                yield ToolCallStart(block.id, block.name)
                            elif block.type == "text" and block.text:
                                yield TextDelta(block.text)
                        elif kind == "content_block_stop":
                            call_id = open_calls.pop(event.index, None)
                            if call_id:
                                yield ToolCallEnd(call_id)
                        elif kind == "message_start":
                            usage = event.message.usage
                            input_tokens = usage.input_tokens or 0
                            output_tokens = usage.output_tokens or 0
                            cache_read, cache_write = _cache_tokens(usage, cache_read, cache_write)
                        elif kind == "message_delta":
                            if event.delta.stop_reason:
                                reason = event.delta.stop_reason
                            usage = event.usage
                            output_tokens = usage.output_tokens or output_tokens  # cumulative
                            if usage.input_tokens is not None:
                                input_tokens = usage.input_tokens
                            cache_read, cache_write = _cache_tokens(usage, cache_read, cache_write)
        except ModelError:
            raise
        except Exception as exc:
            import anthropic

            raise to_model_error(
                exc,
                anthropic,
                label="Anthropic",
                model=request.model,
                retries=self._max_retries,
                timeout=self._timeout,
                url=shown_url(client, self._base_url or os.environ.get("ANTHROPIC_BASE_URL")),
            ) from exc
        for call_id in open_calls.values():  # a stream cut short still closes its tool calls
            yield ToolCallEnd(call_id)
        yield Usage(input_tokens, output_tokens, cache_read, cache_write)
        yield Finish(reason)


def _cache_tokens(usage: Any, read: int, write: int) -> tuple[int, int]:
    """(cache read, cache write) of a usage block; a field the block leaves out keeps its value.

    The API's ``input_tokens`` already leaves these out: the three add up to the prompt."""
    found_read = getattr(usage, "cache_read_input_tokens", None)
    found_write = getattr(usage, "cache_creation_input_tokens", None)
    return (read if found_read is None else found_read, write if found_write is None else found_write)
