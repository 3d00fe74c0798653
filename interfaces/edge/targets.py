"""What an A2A base URL points at: an agent, a star or a workflow (``/a2a/<resource>/<id>``).

A target exists when its row exists and is enabled, and its run kind is in the catalogue
(``cosmos.kinds``, read on every request: each app registers its kind in ``AppConfig.ready()``).
The ``<resource>`` segment is the kind's collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from cosmos.kinds import RunKind, all_kinds, kind_for_collection


def enabled() -> bool:
    """The A2A interface serves when ``ASTEROS_ENABLE_A2A`` is on (the default)."""
    return bool(getattr(settings.ASTEROS, "enable_a2a", True))


@dataclass(frozen=True)
class Target:
    resource: str  # the kind's collection: agents | stars | workflows
    kind: str  # the kind's name: agent | star | workflow
    id: str
    row: Any

    @property
    def path(self) -> str:
        """The base path, e.g. ``/a2a/agents/chat-agent``."""
        return f"/a2a/{self.resource}/{self.id}"


def _servable(kind: RunKind | None) -> bool:
    return kind is not None and kind.target_model is not None


def get_target(resource: str, object_id: str) -> Target | None:
    """The enabled target behind a base URL, or None. Runs ORM queries: call it in a thread."""
    kind = kind_for_collection(resource)
    if not _servable(kind):
        return None
    assert kind is not None and kind.target_model is not None
    row = kind.target_model.objects.filter(pk=object_id, enabled=True).first()  # type: ignore[attr-defined]
    if row is None:
        return None
    return Target(resource, kind.name, row.pk, row)


def all_targets() -> list[Target]:
    """Every enabled definition of every kind in the catalogue, in a stable order."""
    targets: list[Target] = []
    for kind in all_kinds():
        if not _servable(kind):
            continue
        rows = kind.target_model.objects.filter(enabled=True)  # type: ignore[union-attr]
        targets += [Target(kind.collection, kind.name, row.pk, row) for row in rows]
    return targets
