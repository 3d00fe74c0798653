"""The Cosmos manager: the seed's ``cosmos.New`` / ``Create`` / ``Get`` / ``List`` / ``Remove`` /
``Status``, over ``cosmos.services.agents``.

    cosmos = Cosmos()                        # ASTEROS_MAX_AGENTS applies
    agent = cosmos.create("chat-agent", provider="scripted", system_prompt="Be brief.")
    cosmos.status("chat-agent")              # {"status": "idle", "total_runs": 0, ...}

Every method touches the database: call them at run time (a view, a command, a task, a shell),
not at import time. To declare agents in an app's ``asteros.py``, use
``AsterOS.register_agent`` (written to the database when the OS starts).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import Agent, AgentTemplate, Source
from .services import agents as agent_services
from .services.errors import NotFound


class Cosmos:
    """Creates, finds, lists, removes and reports on agents, refusing past ``max_agents``."""

    def __init__(self, *, max_agents: int | None = None) -> None:
        if max_agents is not None and max_agents < 1:
            raise ValueError("max_agents must be at least 1")
        self._max_agents = max_agents

    def __repr__(self) -> str:
        return f"<Cosmos max_agents={self.max_agents}>"

    @property
    def max_agents(self) -> int:
        """The lower of this manager's limit and ASTEROS_MAX_AGENTS."""
        limit = settings.ASTEROS.max_agents
        return min(limit, self._max_agents) if self._max_agents is not None else limit

    def create(self, agent_id: str, *, source: str = Source.DATABASE, **fields: Any) -> Agent:
        """Create an agent (Conflict when it exists or the cosmos is full, Invalid when not valid)."""
        return agent_services.create_agent(agent_id, source=source, max_agents=self._max_agents, **_resolve(fields))

    def upsert(self, agent_id: str, *, source: str = Source.CODE, **fields: Any) -> Agent:
        """Create or update (code registrations, which run at every start)."""
        return agent_services.upsert_agent(agent_id, source=source, max_agents=self._max_agents, **_resolve(fields))

    def get(self, agent_id: str) -> Agent:
        return agent_services.get_agent(agent_id)

    def list(self) -> list[Agent]:
        return list(Agent.objects.select_related("template").order_by("id"))

    def remove(self, agent_id: str) -> None:
        agent_services.remove_agent(agent_id)

    def status(self, agent_id: str) -> dict:
        return agent_services.agent_status(agent_id)

    def count(self) -> int:
        return Agent.objects.count()


def _resolve(fields: dict[str, Any]) -> dict[str, Any]:
    """Accept a template by id as well as by instance."""
    template = fields.get("template")
    if isinstance(template, str):
        try:
            fields = {**fields, "template": AgentTemplate.objects.get(id=template)}
        except AgentTemplate.DoesNotExist:
            raise NotFound(f"No agent template with id {template!r}.") from None
    return fields
