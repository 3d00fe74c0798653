"""``AGUIInterface``: the AG-UI endpoint as an ``Interface`` plugin (the seed's ``AddInterface``).

Its routes are part of the project's URLconf (``interfaces/agui/urls.py``, included by
``asteros_site/routes.py``) and its websocket consumer is in ``interfaces.ws.routing``, so they serve
whichever ASGI server runs Django; ``start`` and the registration callbacks record and log
where each registered agent, star and workflow can be reached.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cosmos.kinds import all_kinds, collection_of
from interfaces.base import Interface

if TYPE_CHECKING:
    from asteros_site.system import AsterOS

logger = logging.getLogger(__name__)


def endpoint_path(kind: str, object_id: str) -> str:
    """``/agui/<collection>/<id>``: where a definition of ``kind`` is served over HTTP."""
    return f"/agui/{collection_of(kind)}/{object_id}"


class AGUIInterface(Interface):
    name = "agui"
    type = "agui"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.endpoints: dict[str, str] = {}

    def start(self, os: AsterOS) -> None:
        super().start(os)
        paths = sorted(endpoint_path(k.name, "{id}") for k in all_kinds())
        logger.info("AG-UI interface serving", extra={"os": os.name, "paths": paths})

    def stop(self) -> None:
        logger.info("AG-UI interface stopped (its routes stay in the URLconf of this process)")

    def _announce(self, kind: str, object_id: str) -> None:
        path = endpoint_path(kind, object_id)
        self.endpoints[f"{kind}:{object_id}"] = path
        logger.info("AG-UI endpoint", extra={"kind": kind, "id": object_id, "path": path})

    def on_agent_registered(self, agent_id: str, agent: Any) -> None:
        self._announce("agent", agent_id)

    def on_stars_registered(self, stars_id: str, stars: Any) -> None:
        self._announce("star", stars_id)

    def on_workflow_registered(self, workflow_id: str, workflow: Any) -> None:
        self._announce("workflow", workflow_id)
