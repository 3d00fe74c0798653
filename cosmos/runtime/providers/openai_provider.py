"""OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp) through the official async SDK."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...outbound import defined_address_problem
from ..errors import MODEL_AUTH, MODEL_NOT_FOUND, MODEL_UNAVAILABLE, ModelError
from ._sdk import LoopClients, shown_url, to_model_error
from .base import Finish, ModelRequest, ProviderEvent, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage

if TYPE_CHECKING:
    import openai

# Local servers ignore the key but the SDK insists on one.
LOCAL_PLACEHOLDER_KEY = "no-key-needed"


def to_openai_messages(system: str, messages: Sequence[dict]) -> list[dict]:
    out: list[dict] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        role = message.get("role")
        if role == "user":
            out.append({"role": "user", "content": message.get("content") or ""})
        elif role == "assistant":
            calls = message.get("tool_calls") or ()
            item: dict[str, Any] = {
                "role": "assistant",
                "content": message.get("content") or ("" if not calls else None),
            }
            if calls:
                item["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments") or {})},
                    }
                    for call in calls
                ]
            out.append(item)
        elif role == "tool":
            out.append(
                {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message.get("content") or ""}
            )
        elif role in ("system", "developer"):
            out.append({"role": "system", "content": message.get("content") or ""})
    return out


def to_openai_tools(tools: Sequence[dict]) -> list[dict]:
    return [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t.get("description", ""), "parameters": t["parameters"]},
        }
        for t in tools
    ]


class _Call:
    __slots__ = ("ended", "id", "name", "pending", "started")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.pending = ""  # arguments that arrived before the name did
        self.started = False
        self.ended = False


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._clients = LoopClients(self._new_client)

    def __repr__(self) -> str:  # never show the key
        return f"<OpenAIProvider base_url={self._base_url!r}>"

    def _new_client(self, api_key: str, base_url: str | None) -> openai.AsyncOpenAI:
        import openai  # the SDK takes a second to import: only when a run first needs it

        return openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=self._timeout, max_retries=self._max_retries
        )

    def _lease(self) -> AbstractContextManager[openai.AsyncOpenAI]:
        if self._base_url and (refused := defined_address_problem(self._base_url)):
            raise ModelError(MODEL_UNAVAILABLE, f"The model API address was refused: {refused}")
        if self._base_url:
            # An address a definition chose gets only the key chosen with it, never the server's
            # OPENAI_API_KEY (which goes to OPENAI_BASE_URL or OpenAI's own API). A local server
            # (Ollama, vLLM, llama.cpp) needs no key; the SDK insists on one: a placeholder.
            return self._clients.lease(self._api_key or LOCAL_PLACEHOLDER_KEY, self._base_url)
        base_url = os.environ.get("OPENAI_BASE_URL") or None
        api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if not base_url:
                raise ModelError(
                    MODEL_AUTH,
                    "No OpenAI API key: set the agent's (or its template's) API key reference, "
                    "env:ASTEROS_SECRET_..., or OPENAI_API_KEY in the environment of the workers "
                    "(a local OpenAI-compatible server such as Ollama needs only its base URL).",
                )
            api_key = LOCAL_PLACEHOLDER_KEY
        return self._clients.lease(api_key, base_url)

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        params = request.params
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request.system, request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = to_openai_tools(request.tools)
        for name in ("temperature", "top_p", "stop", "seed", "max_tokens", "max_completion_tokens"):
            if params.get(name) is not None:
                kwargs[name] = params[name]
        return kwargs

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        lease = self._lease()  # fails before any network when there is no key
        if not request.model:
            raise ModelError(MODEL_NOT_FOUND, "No model configured for the openai provider.")
        kwargs = self._arguments(request)
        input_tokens = output_tokens = cached = 0
        reason = "stop"
        calls: dict[int, _Call] = {}
        client = None
        try:
            with lease as client:
                stream = await client.chat.completions.create(**kwargs)
                async with stream:
                    async for chunk in stream:
                        if chunk.usage is not None:
                            # prompt_tokens counts the cached ones too: keep input as the uncached part.
                            details = chunk.usage.prompt_tokens_details
                            cached = (details.cached_tokens or 0) if details is not None else 0
                            input_tokens = max(0, (chunk.usage.prompt_tokens or 0) - cached)
                            output_tokens = chunk.usage.completion_tokens or 0
                        for choice in chunk.choices:
                            if choice.index != 0:
                                continue
                            delta = choice.delta
                            if delta.content:
                                for event in _end_calls(calls):
                                    yield event
                                yield TextDelta(delta.content)
                            for part in delta.tool_calls or ():
                                for event in _tool_call_part(calls, part):
                                    yield event
                            if choice.finish_reason:
                                reason = choice.finish_reason
        except ModelError:
            raise
        except Exception as exc:
            import openai

            raise to_model_error(
                exc,
                openai,
                label="OpenAI-compatible server",
                model=request.model,
                retries=self._max_retries,
                timeout=self._timeout,
                url=shown_url(client, self._base_url or os.environ.get("OPENAI_BASE_URL")),
            ) from exc
        for event in _end_calls(calls):
            yield event
        yield Usage(input_tokens, output_tokens, cache_read_tokens=cached)
        yield Finish(reason)


def _end_calls(calls: dict[int, _Call], keep: int | None = None) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for index, call in calls.items():
        if index == keep or call.ended:
            continue
        if not call.started:  # a call that never got a name: surface it so the loop can answer it
            events.extend(_start(call, name=call.name or "unknown"))
        call.ended = True
        events.append(ToolCallEnd(call.id))
    return events


def _start(call: _Call, *, name: str) -> list[ProviderEvent]:
    call.started = True
    call.name = name
    call.id = call.id or f"call_{uuid.uuid4().hex[:24]}"
    events: list[ProviderEvent] = [ToolCallStart(call.id, name)]
    if call.pending:
        events.append(ToolCallArgsDelta(call.id, call.pending))
        call.pending = ""
    return events


def _tool_call_part(calls: dict[int, _Call], part: Any) -> list[ProviderEvent]:
    """One streamed tool_calls entry; calls are keyed by index and arrive one after another."""
    events: list[ProviderEvent] = []
    call = calls.get(part.index)
    if call is None:
        events.extend(_end_calls(calls, keep=part.index))  # the previous call is complete
        call = calls[part.index] = _Call()
    if part.id and not call.id:
        call.id = part.id
    function = part.function
    arguments = ""
    if function is not None:
        if function.name and not call.started:
            call.name += function.name
        arguments = function.arguments or ""
    if not call.started and call.name:
        events.extend(_start(call, name=call.name))
    if arguments:
        if call.started and not call.ended:
            events.append(ToolCallArgsDelta(call.id, arguments))
        else:
            call.pending += arguments
    return events
