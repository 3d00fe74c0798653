"""What an A2A base URL points at: an agent, a star or a workflow (``/a2a/<resource>/<id>``).

A target exists when its row exists and is enabled, and its run kind has an engine registered
(``cosmos.kinds.kind_names()``, checked on every request: stars and workflows register theirs
in ``AppConfig.ready()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models

from cosmos.kinds import kind_names

# URL segment -> run kind. The segments are also the resource names of API keys' ``resources``.
RESOURCES: dict[str, str] = {"agents": "agent", "stars": "star", "workflows": "workflow"}
KIND_LABELS = {"agent": "agent", "star": "star (team of agents)", "workflow": "workflow"}


def enabled() -> bool:
    """The A2A interface serves when ``ASTEROS_ENABLE_A2A`` is on (the default)."""
    return bool(getattr(settings.ASTEROS, "enable_a2a", True))


def model_for(kind: str) -> type[models.Model]:
    if kind == "agent":
        from cosmos.models import Agent

        return Agent
    if kind == "star":
        from stars.models import Star

        return Star
    from workflows.models import Workflow

    return Workflow


@dataclass(frozen=True)
class Target:
    resource: str  # agents | stars | workflows
    kind: str  # agent | star | workflow
    id: str
    row: Any

    @property
    def path(self) -> str:
        """The base path, e.g. ``/a2a/agents/chat-agent``."""
        return f"/a2a/{self.resource}/{self.id}"


def available_kinds() -> set[str]:
    return set(kind_names())


def get_target(resource: str, object_id: str) -> Target | None:
    """The enabled target behind a base URL, or None. Runs ORM queries: call it in a thread."""
    kind = RESOURCES.get(resource)
    if kind is None or kind not in available_kinds():
        return None
    row = model_for(kind).objects.filter(pk=object_id, enabled=True).first()
    if row is None:
        return None
    return Target(resource, kind, row.pk, row)


def all_targets() -> list[Target]:
    """Every enabled agent, star and workflow whose kind has an engine, in a stable order."""
    kinds = available_kinds()
    targets: list[Target] = []
    for resource, kind in RESOURCES.items():
        if kind not in kinds:
            continue
        targets += [Target(resource, kind, row.pk, row) for row in model_for(kind).objects.filter(enabled=True)]
    return targets
