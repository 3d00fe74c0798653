"""Star services: membership (join, leave, members), message history, and star runs' state.

Views, the admin and the Python API call these; errors are ``cosmos.services.errors`` so every
edge maps them the same way (Invalid 400, NotFound 404, Conflict 409, NotRunnable 422).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet

from cosmos.models import ACTIVE_STATUSES, Agent, Run
from cosmos.services.errors import Conflict, Invalid, NotFound, NotRunnable
from cosmos.validators import slug_id_validator

from .models import STAR_KIND, Membership, Role, Star, StarMessage
from .team import check_star, get_star, load_team

__all__ = [
    "EVERYONE",
    "USER",
    "active_runs",
    "broadcast_message",
    "check_star",
    "get_star",
    "join",
    "leave",
    "load_team",
    "member_dict",
    "members",
    "message_dict",
    "messages",
    "record_message",
    "send_message",
]

EVERYONE = "*"  # the recipient of a broadcast
USER = "user"  # who gives a star its task and receives its final answer

# --- membership


def join(
    star_id: str,
    agent_id: str,
    role: str = Role.WORKER,
    name: str | None = None,
    *,
    description: str = "",
    notes: str = "",
    order: int | None = None,
) -> Membership:
    """Add an agent to a star.

    Invalid: a bad role or name, or no such agent; NotRunnable: the agent is disabled;
    Conflict: the agent is already a member, the name is taken, or a second leader.
    """
    star = get_star(star_id)
    if role not in Role.values:
        raise Invalid(f"Unknown role {role!r}; choose 'leader' or 'worker'.", code="invalid_role")
    if not isinstance(agent_id, str) or not agent_id:
        raise Invalid("'agent_id' is required.", code="invalid")
    agent = Agent.objects.filter(id=agent_id).first()
    if agent is None:
        raise Invalid(f"No agent with id {agent_id!r}; create the agent first.", code="unknown_agent")
    if not agent.enabled:
        raise NotRunnable(f"Agent {agent_id!r} is disabled; enable it before it joins a star.", code="agent_disabled")
    name = name or agent_id
    try:
        slug_id_validator(name)
    except ValidationError:
        raise Invalid(
            f"Member name {name!r} is not valid: use 1-64 lower-case letters, digits, '-' or '_'.", code="invalid_name"
        ) from None
    try:
        with transaction.atomic():
            others = Membership.objects.select_for_update().filter(star=star)
            _check_conflicts(star, list(others), agent_id, name, role)
            if order is None:
                order = (others.aggregate(m=Max("order"))["m"] or 0) + (1 if others.exists() else 0)
            return Membership.objects.create(
                star=star, agent=agent, name=name, role=role, order=order, description=description, notes=notes
            )
    except IntegrityError:  # a concurrent join won the race: report it as the same conflict
        _check_conflicts(star, list(Membership.objects.filter(star=star)), agent_id, name, role)
        raise Conflict(f"Agent {agent_id!r} could not join star {star_id!r}; try again.") from None


def _check_conflicts(star: Star, others: list[Membership], agent_id: str, name: str, role: str) -> None:
    for other in others:
        if other.agent_id == agent_id:
            raise Conflict(
                f"Agent {agent_id!r} is already a member of star {star.id!r} (as {other.name!r}).",
                code="already_member",
            )
        if other.name == name:
            raise Conflict(f"Star {star.id!r} already has a member named {name!r}.", code="name_taken")
        if role == Role.LEADER and other.role == Role.LEADER:
            raise Conflict(
                f"Star {star.id!r} already has a leader ({other.name!r}); a star has one leader.", code="leader_exists"
            )


def leave(star_id: str, *, agent_id: str | None = None, name: str | None = None) -> Membership:
    """Remove a member, by agent id or member name. Returns the removed (unsaved) membership.

    Removing the leader while the star has an active run is a Conflict (``star_busy``).
    """
    star = get_star(star_id)
    if bool(agent_id) == bool(name):
        raise Invalid("Give exactly one of 'agent_id' or 'name'.", code="invalid")
    with transaction.atomic():
        lookup = {"agent_id": agent_id} if agent_id else {"name": name}
        membership = Membership.objects.select_for_update().filter(star=star, **lookup).first()
        if membership is None:
            message = (
                f"Agent {agent_id!r} is not a member of star {star_id!r}."
                if agent_id
                else f"Star {star_id!r} has no member named {name!r}."
            )
            raise NotFound(message, code="not_a_member")
        if membership.role == Role.LEADER:
            active = active_runs(star_id).values_list("id", flat=True).first()
            if active is not None:
                raise Conflict(
                    f"The leader of star {star_id!r} cannot leave while the star has an active run ({active}); "
                    "wait for it or cancel it first.",
                    code="star_busy",
                )
        membership.delete()
    return membership


def active_runs(star_id: str) -> QuerySet[Run]:
    """The star's queued or running runs (top-level or nested in another star or workflow)."""
    return Run.objects.filter(kind=STAR_KIND, target=star_id, status__in=ACTIVE_STATUSES)


def members(star_id: str) -> list[dict[str, Any]]:
    """Every member with lowercase keys and a live ``status``: ``busy`` while it works in a star run."""
    star = get_star(star_id)
    rows = list(Membership.objects.filter(star=star).select_related("agent").order_by("order", "id"))
    working: dict[str, list[str]] = {}
    children = Run.objects.filter(
        parent__kind=STAR_KIND, parent__target=star.id, status__in=ACTIVE_STATUSES
    ).values_list("id", "metadata")
    for run_id, metadata in children:
        member = (metadata or {}).get("star_member")
        if member:
            working.setdefault(member, []).append(str(run_id))
    return [member_dict(row, working.get(row.name, [])) for row in rows]


def member_dict(membership: Membership, active: list[str] | None = None) -> dict[str, Any]:
    active = active or []
    return {
        "name": membership.name,
        "agent_id": membership.agent_id,
        "agent_name": membership.agent.name or membership.agent_id,
        "agent_enabled": membership.agent.enabled,
        "role": membership.role,
        "order": membership.order,
        "description": membership.description,
        "notes": membership.notes,
        "status": "busy" if active else "idle",
        "active_runs": active,
        "joined_at": membership.created_at.isoformat() if membership.created_at else None,
    }


# --- messages


def messages(star_id: str, *, run_id: str | None = None) -> QuerySet[StarMessage]:
    """The star's message history, oldest first, ordered by ``id`` (a stable cursor).

    ``run_id`` keeps the messages of one star run.
    """
    star = get_star(star_id)
    queryset = StarMessage.objects.filter(star=star)
    if run_id is not None:
        queryset = queryset.filter(run_id=run_id)
    return queryset.order_by("id")


def message_dict(message: StarMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "star": message.star_id,
        "run": str(message.run_id) if message.run_id else None,
        "from": message.sender,
        "to": message.recipient,
        "content": message.content,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def record_message(star_id: str, sender: str, recipient: str, content: str, run_id: str | None = None) -> StarMessage:
    """Store one message of a star run (no checks: the engine knows its members).

    A star deleted while a run of it goes on (on the revision it pinned) took its message history
    with it: the run's messages are then not kept (the run's events still say everything)."""
    fields = {"star_id": star_id, "run_id": run_id, "sender": sender, "recipient": recipient, "content": content}
    try:
        with transaction.atomic():
            return StarMessage.objects.create(**fields)
    except IntegrityError:
        if Star.objects.filter(id=star_id).exists():
            raise
        return StarMessage(**fields)


def send_message(star_id: str, sender: str, recipient: str, text: str) -> StarMessage:
    """Record a message from one member to another (``recipient`` may be ``*``: everyone)."""
    star = get_star(star_id)
    if not isinstance(text, str) or not text.strip():
        raise Invalid("A message needs some text.", code="invalid")
    names = set(Membership.objects.filter(star=star).values_list("name", flat=True))
    for role, who in (("sender", sender), ("recipient", recipient)):
        if who in names or (role == "recipient" and who == EVERYONE):
            continue
        known = ", ".join(sorted(names)) or "none"
        raise Invalid(
            f"Unknown {role} {who!r}: not a member of star {star.id!r} (members: {known}).", code="unknown_member"
        )
    if sender == recipient:
        raise Invalid("A member cannot send a message to itself.", code="invalid")
    return record_message(star.id, sender, recipient, text)


def broadcast_message(star_id: str, sender: str, text: str) -> StarMessage:
    """Record a message from one member to everyone."""
    return send_message(star_id, sender, EVERYONE, text)
