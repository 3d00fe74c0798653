"""What every model provider speaks: one request in, a stream of small events out.

A provider's stream is sequential: a tool call's START, ARGS and END come before the next text or
tool call begins, so the loop can map it onto AG-UI events without reordering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..events import Emit


@dataclass(slots=True)
class ModelRequest:
    model: str
    system: str
    messages: Sequence[dict]  # internal format, see cosmos.runtime.loop
    tools: Sequence[dict] = ()  # [{"name", "description", "parameters"}]
    params: Mapping[str, Any] = field(default_factory=dict)
    # Where a provider may report events other than the model's text and tool calls (e.g. the
    # progress of a remote agent); the loop's emit. Never called concurrently with the stream.
    emit: Emit | None = None


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(slots=True)
class ToolCallArgsDelta:
    id: str
    delta: str


@dataclass(slots=True)
class ToolCallEnd:
    id: str


@dataclass(slots=True)
class Usage:
    """One model call's tokens, as the APIs bill them: ``input_tokens`` is the prompt's uncached
    part; the cached part is ``cache_read_tokens`` (read from the provider's prompt cache) and
    ``cache_write_tokens`` (written to it, Anthropic only)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(slots=True)
class Finish:
    reason: str


ProviderEvent = TextDelta | ToolCallStart | ToolCallArgsDelta | ToolCallEnd | Usage | Finish


@runtime_checkable
class Provider(Protocol):
    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        """An async generator of provider events; raises ModelError (a RunFailed) on failure."""
        ...


# Sampling options passed through to the APIs when present in an agent's parameters.
SAMPLING_PARAMS = ("temperature", "top_p", "stop")
# An agent parameter: false turns Anthropic prompt caching (on by default) off.
PROMPT_CACHING = "prompt_caching"


def caching_enabled(params: Mapping[str, Any]) -> bool:
    value = params.get(PROMPT_CACHING)
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)
