"""Model providers: ``get_provider(name, ...)`` returns a cached ``Provider``.

SDKs are imported on first use of their provider, so importing the runtime stays cheap.
"""

from __future__ import annotations

from ..errors import UNKNOWN_PROVIDER, RunFailed
from .base import (
    Finish,
    ModelRequest,
    Provider,
    ProviderEvent,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

__all__ = [
    "Finish",
    "ModelRequest",
    "Provider",
    "ProviderEvent",
    "TextDelta",
    "ToolCallArgsDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "get_provider",
    "preload_providers",
    "provider_names",
]

_NAMES = frozenset({"anthropic", "openai", "scripted"})
_cache: dict[tuple, Provider] = {}


def provider_names() -> frozenset[str]:
    return _NAMES


def get_provider(
    name: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 60,
    max_retries: int = 3,
) -> Provider:
    """The provider for these settings, created once and reused (its SDK clients with it).

    Never raises for a missing key: that is reported when a run calls the model, as a RunFailed.
    """
    key = (name, api_key, base_url, timeout, max_retries)
    provider = _cache.get(key)
    if provider is None:
        provider = _cache[key] = _create(
            name, api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
    return provider


def _create(name: str, *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> Provider:
    if name == "scripted":
        from .scripted import ScriptedProvider

        return ScriptedProvider()
    if name == "anthropic":
        from .anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    if name == "openai":
        from .openai_provider import OpenAIProvider

        return OpenAIProvider(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    raise RunFailed(UNKNOWN_PROVIDER, f"Unknown model provider {name!r}; choose one of {', '.join(sorted(_NAMES))}.")


def preload_providers(*names: str) -> None:
    """Import the SDKs (and the modules their first request would import) ahead of time.

    Importing an SDK takes about a second; call this at worker start-up so that the first run
    does not pay for it. With no names, every SDK-backed provider is loaded.
    """
    wanted = set(names) or {"anthropic", "openai"}
    if "anthropic" in wanted:
        import anthropic.resources.messages  # noqa: F401
    if "openai" in wanted:
        import openai.resources.chat  # noqa: F401
