"""An agent's definition (AgentSpec) and its runnable form (RuntimeAgent).

``build_agent`` is on the hot path of every run, so it only does dictionary lookups: provider
clients and tool schemas are cached elsewhere, nothing is parsed, and nothing is raised. Problems
(unknown provider or tool) are kept on the agent and reported by the run as a RunFailed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import UNKNOWN_TOOL, RunFailed
from .providers import Provider, get_provider
from .tools import Tool, tool_registry

_NO_PARAMETERS: Mapping[str, Any] = MappingProxyType({})


def _no_parameters() -> Mapping[str, Any]:
    return _NO_PARAMETERS  # one shared empty mapping: no allocation per spec


@dataclass(frozen=True, slots=True)
class AgentSpec:
    id: str
    name: str
    description: str = ""
    system_prompt: str = ""
    provider: str = "scripted"
    model: str = ""
    parameters: Mapping[str, Any] = field(default_factory=_no_parameters)
    tools: tuple[str, ...] = ()
    max_turns: int = 10
    # Tool name -> approval rule ("never", "always" or an expression over the arguments).
    approvals: Mapping[str, str] = field(default_factory=_no_parameters)
    # The key itself, only in the per-run copy the worker makes (``with_credentials``); never
    # shown in the repr. A definition names its key by reference: ``api_key_ref`` (env:NAME).
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_key_ref: str = ""


class RuntimeAgent:
    """A spec bound to its provider and tools; immutable in practice and cheap to create."""

    __slots__ = ("error", "provider", "spec", "tool_map", "tool_schemas", "tools")

    def __init__(
        self,
        spec: AgentSpec,
        provider: Provider | None,
        tools: tuple[Tool, ...],
        tool_schemas: tuple[dict, ...],
        tool_map: Mapping[str, Tool],
        error: RunFailed | None = None,
    ) -> None:
        self.spec = spec
        self.provider = provider
        self.tools = tools
        self.tool_schemas = tool_schemas
        self.tool_map = tool_map
        self.error = error  # raised by run_agent before calling the model

    def __repr__(self) -> str:
        return f"<RuntimeAgent {self.spec.id} provider={self.spec.provider} tools={list(self.tool_map)}>"


def build_agent(spec: AgentSpec, *, extra_tools: Iterable[Tool] = ()) -> RuntimeAgent:
    """Bind a spec to its cached provider and tools. Never raises; see RuntimeAgent.error."""
    error: RunFailed | None = None
    params = spec.parameters
    try:
        if params and ("timeout" in params or "max_retries" in params):
            timeout, max_retries = _client_options(params)
            provider = get_provider(
                spec.provider, api_key=spec.api_key, base_url=spec.base_url, timeout=timeout, max_retries=max_retries
            )
        else:
            provider = get_provider(spec.provider, api_key=spec.api_key, base_url=spec.base_url)
    except RunFailed as exc:
        provider, error = None, exc
    resolved = tool_registry.resolve(spec.tools)
    if resolved.missing and error is None:
        error = RunFailed(
            UNKNOWN_TOOL,
            f"Agent {spec.id!r} uses unknown tool(s): {', '.join(resolved.missing)}.",
            details=resolved.missing,
        )
    if not extra_tools:
        return RuntimeAgent(spec, provider, resolved.tools, resolved.schemas, resolved.by_name, error)
    # Per-run tools (e.g. a star's delegate) come last and win a name clash.
    tool_map = dict(resolved.by_name)
    for extra in extra_tools:
        tool_map[extra.name] = extra
    tools = tuple(tool_map.values())
    return RuntimeAgent(spec, provider, tools, tuple(t.schema for t in tools), tool_map, error)


def _client_options(params: Mapping[str, Any]) -> tuple[float, int]:
    """(timeout, max_retries) from an agent's parameters; values that do not parse keep the defaults."""
    try:
        timeout = float(params.get("timeout") or 60)
    except (TypeError, ValueError):
        timeout = 60.0
    try:
        max_retries = int(params.get("max_retries", 3))
    except (TypeError, ValueError):
        max_retries = 3
    return (timeout if timeout > 0 else 60.0), max(0, max_retries)
