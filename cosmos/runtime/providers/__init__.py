"""Model providers: ``get_provider(name, ...)`` returns a cached ``Provider``.

SDKs are imported on first use of their provider, so importing the runtime stays cheap. A higher
layer adds providers of its own with ``register_provider`` (in its ``AppConfig.ready()``), e.g.
the ``a2a`` provider of ``interfaces.a2a``, whose "model" is a remote A2A agent.
"""

from __future__ import annotations

from collections.abc import Callable

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
    "MODEL_SUGGESTIONS",
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
    "model_problem",
    "model_suggestions",
    "preload_providers",
    "provider_names",
    "register_provider",
]

_NAMES = frozenset({"anthropic", "openai", "scripted"})
# Model names offered as suggestions in forms (the admin's model field), per provider: a hint,
# never a limit (any name the provider accepts may be typed). Kept here, next to the providers.
MODEL_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "anthropic": (
        "claude-sonnet-4-5",
        "claude-opus-4-1",
        "claude-haiku-4-5",
        "claude-3-7-sonnet-latest",
        "claude-3-5-haiku-latest",
    ),
    "openai": ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o4-mini", "o3"),
    "scripted": ("scripted-offline",),
}
_cache: dict[tuple, Provider] = {}
# name -> (factory(api_key=, base_url=, timeout=, max_retries=), check of a model name or None)
_registered: dict[str, tuple[Callable[..., Provider], Callable[[str], str | None] | None]] = {}


def provider_names() -> frozenset[str]:
    return _NAMES | _registered.keys()


def model_suggestions() -> dict[str, list[str]]:
    """Suggested model names for every known provider (an empty list where none are known)."""
    return {name: list(MODEL_SUGGESTIONS.get(name, ())) for name in sorted(provider_names())}


def register_provider(
    name: str, factory: Callable[..., Provider], *, check_model: Callable[[str], str | None] | None = None
) -> None:
    """Add (or replace) a provider. ``factory`` gets ``api_key``, ``base_url``, ``timeout`` and
    ``max_retries`` as keywords; ``check_model(model)`` returns why a model name is refused, or None
    (agents and templates are validated with it)."""
    if name in _NAMES:
        raise ValueError(f"{name!r} is a built-in provider.")
    _registered[name] = (factory, check_model)
    for key in [key for key in _cache if key[0] == name]:
        del _cache[key]


def model_problem(provider: str, model: str) -> str | None:
    """Why ``model`` is not a model of ``provider`` (only registered providers check), or None."""
    entry = _registered.get(provider)
    check = entry[1] if entry else None
    return check(model) if check is not None else None


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
    if name in _registered:
        return _registered[name][0](api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    if name == "scripted":
        from .scripted import ScriptedProvider

        return ScriptedProvider()
    if name == "anthropic":
        from .anthropic_provider import AnthropicProvider

        return AnthropicProvider(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    if name == "openai":
        from .openai_provider import OpenAIProvider

        return OpenAIProvider(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
    known = ", ".join(sorted(provider_names()))
    raise RunFailed(UNKNOWN_PROVIDER, f"Unknown model provider {name!r}; choose one of {known}.")


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
