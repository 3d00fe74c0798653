"""The seed's Python API for stars, kept::

    team = Stars(cosmos, "ChatTeam")                 # the star "chat-team", marked as from code
    team.add_member("leader", "agent-1", "leader")
    team.add_member("writer", "agent-2", "worker", description="Writes clear prose.")
    run = team.run("Write a haiku about Django")    # a Run (queued); run.id opens its stream

Declarations are kept in memory until the star is first saved: by ``save()``, by
``AsterOS.register_stars(id, team)``, or by any call that needs the database (``join``,
``members``, ``run``, ...). So an ``asteros.py`` module can declare a star at import time without
touching the database. Saving upserts the row with ``source="code"`` and the declared members; it
is idempotent, so it can run at every start.
"""

from __future__ import annotations

import re
import time
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from cosmos.models import TERMINAL_STATUSES, Run, Source
from cosmos.services import revisions
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict, Invalid, NotFound, conflict_on_integrity

from . import services
from .models import STAR_KIND, Membership, Role, Star, StarMessage, StarMode


def star_id_for(name: str) -> str:
    """Turn "ChatTeam" into "chat-team": words of a CamelCase or spaced name, joined by hyphens."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name)
    slug = slugify(words)[:64].strip("-_")
    if not slug:
        raise Invalid(f"Cannot make a star id from the name {name!r}; pass id=... as well.", code="invalid")
    return slug


class Stars:
    """A star declared in code: ``Stars(cosmos, name)``; see the module docstring."""

    def __init__(
        self,
        cosmos: Any = None,
        name: str = "",
        *,
        id: str | None = None,
        description: str = "",
        mode: str = StarMode.DELEGATE,
        config: dict[str, Any] | None = None,
        enabled: bool = True,
    ) -> None:
        if not name and not id:
            raise Invalid("A star needs a name (or an id).", code="invalid")
        if mode not in StarMode.values:
            raise Invalid(
                f"Unknown star mode {mode!r}; choose one of {', '.join(StarMode.values)}.", code="invalid_mode"
            )
        self.cosmos = cosmos  # the Cosmos manager the members' agents live in (kept for the seed's shape)
        self.name = name or str(id)
        self.id = id or star_id_for(self.name)
        self.description = description
        self.mode = mode
        self.config = dict(config or {})
        self.enabled = enabled
        self._declared: dict[str, dict[str, Any]] = {}  # member name -> membership fields
        self._saved_as: str | None = None

    def __repr__(self) -> str:
        return f"<Stars {self.id} ({len(self._declared)} declared member(s))>"

    # --- declaration

    def add_member(
        self, name: str, agent_id: str, role: str = Role.WORKER, *, description: str = "", notes: str = ""
    ) -> Stars:
        """Declare a member; saved now if the star is, else at the first save. Returns self."""
        if role not in Role.values:
            raise Invalid(f"Unknown role {role!r}; choose 'leader' or 'worker'.", code="invalid_role")
        if role == Role.LEADER:
            other = next((n for n, m in self._declared.items() if m["role"] == Role.LEADER and n != name), None)
            if other:
                raise Conflict(f"Star {self.id!r} already has a leader ({other!r}).", code="leader_exists")
        fields = {"agent_id": agent_id, "role": role, "description": description, "notes": notes}
        fields["order"] = self._declared.get(name, {}).get("order", len(self._declared))
        self._declared[name] = fields
        if self._saved_as is not None:
            self._save_member(name, fields)
        return self

    def remove_member(self, name: str) -> None:
        """Remove a member by name (refused for the leader while the star has an active run)."""
        declared = self._declared.pop(name, None)
        if not Star.objects.filter(id=self.id).exists():
            if declared is None:
                raise NotFound(f"Star {self.id!r} has no member named {name!r}.", code="not_a_member")
            return
        self._ensure_saved()
        if declared is None or Membership.objects.filter(star_id=self.id, name=name).exists():
            services.leave(self.id, name=name)

    def save(self, star_id: str | None = None) -> Star:
        """Upsert the star (``source="code"``) and its declared members. Idempotent."""
        if star_id and star_id != self.id:
            self.id = star_id
            self._saved_as = None
        with transaction.atomic():
            star = Star.objects.filter(id=self.id).first() or Star(id=self.id)
            star.name, star.description, star.mode = self.name, self.description, self.mode
            star.config, star.enabled, star.source = self.config, self.enabled, Source.CODE
            try:
                star.full_clean(validate_unique=False)
            except Exception as exc:
                raise Invalid(
                    f"Star {self.id!r} is not valid.", details=getattr(exc, "message_dict", str(exc))
                ) from None
            # A new star is an INSERT; a concurrent registration of the same id makes it a 409.
            with conflict_on_integrity(f"Star {self.id!r} was created by a concurrent registration; try again."):
                star.save(force_insert=star._state.adding)
            self._saved_as = self.id
            # Leaders first, so a changed leader is seen before the workers that may replace it.
            for name, fields in sorted(self._declared.items(), key=lambda item: item[1]["role"] != Role.LEADER):
                self._save_member(name, fields)
        return star

    def _save_member(self, name: str, fields: dict[str, Any]) -> Membership:
        existing = Membership.objects.filter(star_id=self.id, name=name).first()
        if existing is not None and existing.agent_id == fields["agent_id"]:
            changed = {k: v for k, v in fields.items() if k not in ("agent_id", "order") and getattr(existing, k) != v}
            if changed.get("role") == Role.LEADER:
                leader = Membership.objects.filter(star_id=self.id, role=Role.LEADER).exclude(pk=existing.pk).first()
                if leader is not None:
                    raise Conflict(f"Star {self.id!r} already has a leader ({leader.name!r}).", code="leader_exists")
            if changed:
                Membership.objects.filter(pk=existing.pk).update(**changed)
                existing.refresh_from_db()
                revisions.changed(STAR_KIND, self.id)  # an update() sends no post_save
            return existing
        if existing is not None:  # the same name now means another agent
            services.leave(self.id, name=name)
        return services.join(
            self.id,
            fields["agent_id"],
            fields["role"],
            name,
            description=fields["description"],
            notes=fields["notes"],
            order=fields["order"],
        )

    def _ensure_saved(self) -> None:
        if self._saved_as != self.id:
            self.save()

    # --- membership at run time (validated like the API)

    def join(self, agent_id: str, role: str = Role.WORKER, name: str | None = None, *, description: str = "") -> dict:
        self._ensure_saved()
        membership = services.join(self.id, agent_id, role, name, description=description)
        return services.member_dict(membership)

    def leave(self, agent_id: str | None = None, *, name: str | None = None) -> None:
        self._ensure_saved()
        membership = services.leave(self.id, agent_id=agent_id, name=name)
        self._declared.pop(membership.name, None)

    def members(self) -> list[dict[str, Any]]:
        self._ensure_saved()
        return services.members(self.id)

    # --- messages

    def send(self, sender: str, recipient: str, text: str) -> StarMessage:
        """Record a message from one member to another (the seed's ``Send(from, to, text)``)."""
        self._ensure_saved()
        return services.send_message(self.id, sender, recipient, text)

    def broadcast(self, sender: str, text: str) -> StarMessage:
        """Record a message from one member to everyone."""
        self._ensure_saved()
        return services.broadcast_message(self.id, sender, text)

    def messages(self, run_id: str | None = None) -> list[dict[str, Any]]:
        self._ensure_saved()
        return [services.message_dict(m) for m in services.messages(self.id, run_id=run_id)]

    # --- running

    def run(
        self,
        task: str,
        *,
        mode: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        wait: float | None = None,
    ) -> Run:
        """Start a star run and return it (queued), or with ``wait`` seconds, once it ended or the time is up.

        A worker executes it: the embedded one in a served process, or ``celery worker``.
        """
        self._ensure_saved()
        raw: dict[str, Any] = {"message": task}
        if mode is not None:
            raw["mode"] = mode
        run, _ = run_services.start_run("star", self.id, raw, origin="code", session_id=session_id, metadata=metadata)
        if wait:
            deadline = time.monotonic() + wait
            while run.status not in TERMINAL_STATUSES and time.monotonic() < deadline:
                time.sleep(0.1)
                run.refresh_from_db()
        return run
