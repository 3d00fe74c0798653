"""The AG-UI 1.0 interface: ``POST /agui/agents/{id}`` (and stars, workflows) answers a
``RunAgentInput`` with the run's events as Server-Sent Events. See docs/agui.md."""

from interfaces.agui.interface import AGUIInterface

__all__ = ["AGUIInterface"]
