"""The ``Interface`` plugin base: a way for the outside world to reach what AsterOS serves.

An interface has a ``name`` (unique within one ``AsterOS``) and a ``type`` (``"http"``,
``"a2a"``, ``"agui"``, ``"slack"``, ...). ``AsterOS`` calls:

- ``start(os)`` when the OS starts (or at once, when added to a started OS);
- ``on_agent_registered(agent_id, agent)``, ``on_stars_registered(stars_id, star)`` and
  ``on_workflow_registered(workflow_id, workflow)`` for everything registered, including what
  was registered before the interface was added (``agent`` etc. are the saved model rows);
- ``stop()`` when it is removed or the OS stops.

A callback that raises is logged with the interface's name; the OS and the other interfaces go
on. Interfaces are listed by dotted path in ``ASTEROS_INTERFACES`` or added in code with
``os.add_interface(...)``. See docs/interfaces.md and docs/examples/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asteros_site.system import AsterOS


class Interface:
    name: str = ""
    type: str = "custom"

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name
        if not self.name:
            self.name = self.__class__.__name__.lower()
        self.os: AsterOS | None = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.name!r} ({self.type})>"

    def start(self, os: AsterOS) -> None:
        """Begin serving. Keep it quick: start threads or tasks here rather than blocking."""
        self.os = os

    def stop(self) -> None:
        """Stop serving and release what ``start`` took."""

    def on_agent_registered(self, agent_id: str, agent: Any) -> None:
        """An agent was registered with the OS (or was before this interface was added)."""

    def on_stars_registered(self, stars_id: str, stars: Any) -> None:
        """A star (team) was registered with the OS."""

    def on_workflow_registered(self, workflow_id: str, workflow: Any) -> None:
        """A workflow was registered with the OS."""
