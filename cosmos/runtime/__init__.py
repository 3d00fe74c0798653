"""The agent runtime: Django-free, importable and benchmarkable without a database.

spec (AgentSpec) -> build_agent() -> RuntimeAgent -> run_agent(agent, messages, emit) -> AgentOutcome,
streaming AG-UI events through ``emit`` on the way. See docs/runtime.md.
"""

from . import builtin_tools  # noqa: F401  (registers the built-in tools in tool_registry)
from .agent import AgentSpec, RuntimeAgent, build_agent
from .errors import ModelError, RunFailed
from .events import TERMINAL_EVENT_TYPES, Emit, EventType, make_event
from .loop import AgentOutcome, run_agent
from .tools import Tool, ToolContext, tool, tool_registry

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "AgentOutcome",
    "AgentSpec",
    "Emit",
    "EventType",
    "ModelError",
    "RunFailed",
    "RuntimeAgent",
    "Tool",
    "ToolContext",
    "build_agent",
    "make_event",
    "run_agent",
    "tool",
    "tool_registry",
]
