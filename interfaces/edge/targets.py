"""What a door's address points at: ``/<door>/<collection>/<id>``, an agent, a star or a workflow.

The one place a door turns (collection, object id) into a target, through the run-kind
catalogue (``cosmos.kinds``, read on every request: each app registers its kind in
``AppConfig.ready()``). The collection segment is the kind's collection. ``resolve_kind`` finds
the kind only (AG-UI and websockets, whose services look the row up); ``resolve_target`` the
enabled row as well (A2A). Both raise ``UnknownTarget`` (404 ``not_found``) with the door's
own message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from cosmos.db import db_call
from cosmos.kinds import RunKind, all_kinds, find_kind, kind_for_collection
from cosmos.services.errors import NotFound


def enabled() -> bool:
    """The A2A interface serves when ``ASTEROS_ENABLE_A2A`` is on (the default)."""
    return bool(getattr(settings.ASTEROS, "enable_a2a", True))


class UnknownTarget(NotFound):
    """Nothing is served at this address: no such kind, or (A2A) no such enabled row."""


@dataclass(frozen=True)
class Target:
    resource: str  # the kind's collection: agents | stars | workflows
    kind: str  # the kind's name: agent | star | workflow
    id: str
    row: Any = None  # the enabled definition (``resolve_target``); None when only the kind is resolved

    @property
    def path(self) -> str:
        """The A2A base path, e.g. ``/a2a/agents/chat-agent``."""
        return f"/a2a/{self.resource}/{self.id}"


def _servable(kind: RunKind | None) -> bool:
    return kind is not None and kind.target_model is not None


def resolve_kind(collection: str, missing: str, *, by_name: bool = False) -> RunKind:
    """The run kind whose collection is ``collection`` (or, ``by_name``, whose name it is);
    ``UnknownTarget(missing)`` for none."""
    found = kind_for_collection(collection) or (find_kind(collection) if by_name else None)
    if found is None:
        raise UnknownTarget(missing)
    return found


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


async def resolve_target(collection: str, object_id: str, missing: str) -> Target:
    """The enabled target at (collection, object id); ``UnknownTarget(missing)`` for none."""
    target = await db_call(get_target, collection, object_id)
    if target is None:
        raise UnknownTarget(missing)
    return target


def all_targets() -> list[Target]:
    """Every enabled definition of every kind in the catalogue, in a stable order."""
    targets: list[Target] = []
    for kind in all_kinds():
        if not _servable(kind):
            continue
        rows = kind.target_model.objects.filter(enabled=True)  # type: ignore[union-attr]
        targets += [Target(kind.collection, kind.name, row.pk, row) for row in rows]
    return targets
