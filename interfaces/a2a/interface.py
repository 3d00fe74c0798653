"""The A2A ``Interface`` plugin: every registered agent, star and workflow is an A2A 1.0 server.

The routes (``interfaces/a2a/urls.py``) are part of the project's URLconf and serve rows from the
database, so a registration needs no callback to be reachable; the plugin logs where each one is
served and keeps that map (``served``) for banners and tests. ``ASTEROS_ENABLE_A2A=false``
turns the routes off (they answer 404). Add it with ``ASTEROS_INTERFACES=interfaces.a2a.A2AInterface``
or ``os.add_interface("interfaces.a2a.A2AInterface")``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

from cosmos.kinds import collection_of
from interfaces.base import Interface
from interfaces.edge.targets import enabled

if TYPE_CHECKING:
    from asteros_site.system import AsterOS

logger = logging.getLogger(__name__)


class A2AInterface(Interface):
    name = "a2a"
    type = "a2a"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.served: dict[str, str] = {}  # "agents/chat-agent" -> its base path

    def start(self, os: AsterOS) -> None:
        super().start(os)
        if enabled():
            logger.info("A2A interface serving at /a2a/", extra={"os": os.name})
        else:
            logger.info("A2A interface added but turned off (ASTEROS_ENABLE_A2A=false)", extra={"os": os.name})

    def stop(self) -> None:
        self.served.clear()

    def _announce(self, resource: str, object_id: str) -> None:
        path = f"/a2a/{resource}/{object_id}"
        self.served[f"{resource}/{object_id}"] = path
        base = (settings.ASTEROS.public_url or "").rstrip("/")
        logger.info("A2A agent card at %s%s/.well-known/agent-card.json", base, path)

    def on_agent_registered(self, agent_id: str, agent: Any) -> None:
        self._announce(collection_of("agent"), agent_id)

    def on_stars_registered(self, stars_id: str, stars: Any) -> None:
        self._announce(collection_of("star"), stars_id)

    def on_workflow_registered(self, workflow_id: str, workflow: Any) -> None:
        self._announce(collection_of("workflow"), workflow_id)
