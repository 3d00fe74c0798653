"""A star's team as one run sees it: a snapshot of its members, mode and limits.

A run loads its team once, when it starts; members who join or leave during the run count from
the next run on.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos.models import Agent
from cosmos.services.errors import Invalid, NotFound, NotRunnable

from .limits import Limits, parse_limits
from .models import STAR_KIND, Membership, Role, Star, StarMode

MODES = tuple(StarMode.values)
MODES_NEEDING_WORKERS = (StarMode.BROADCAST, StarMode.ROUND_ROBIN)


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    agent_id: str
    role: str
    description: str = ""
    order: int = 0
    leads_star: str | None = None  # another enabled star this agent leads: it runs as that star

    @property
    def is_leader(self) -> bool:
        return self.role == Role.LEADER


@dataclass(frozen=True, slots=True)
class Team:
    star_id: str
    name: str
    description: str
    mode: str
    config: dict
    leader: Member
    workers: tuple[Member, ...]

    @property
    def members(self) -> tuple[Member, ...]:
        """Everyone, in the star's order (the leader where its ``order`` puts it)."""
        return tuple(sorted((self.leader, *self.workers), key=lambda m: (m.order, m.is_leader is False, m.name)))

    def worker(self, name_or_agent: str) -> Member | None:
        for member in self.workers:
            if name_or_agent in (member.name, member.agent_id):
                return member
        return None

    def limits(self, **overrides) -> Limits:
        return parse_limits(self.config, **overrides)


def get_star(star_id: str) -> Star:
    try:
        return Star.objects.get(id=star_id)
    except Star.DoesNotExist:
        raise NotFound(f"No star with id {star_id!r}.") from None


# --- revisions: a star's whole definition, its members included


STAR_FIELDS = ("name", "description", "enabled", "mode", "config")
MEMBER_FIELDS = ("name", "role", "order", "description", "notes")


def star_definition(star: Star) -> dict:
    members = Membership.objects.filter(star=star).order_by("order", "id")
    return {
        **{name: getattr(star, name) for name in STAR_FIELDS},
        "members": [{"agent": row.agent_id, **{name: getattr(row, name) for name in MEMBER_FIELDS}} for row in members],
    }


def apply_star_definition(star: Star, definition: dict) -> None:
    for name in STAR_FIELDS:
        if name in definition:
            setattr(star, name, definition[name])


def apply_star_members(star: Star, definition: dict) -> None:
    """Restore: the members become those of the revision (agents deleted since are refused)."""
    members = definition.get("members") or []
    missing = sorted(
        {m["agent"] for m in members}
        - set(Agent.objects.filter(id__in=[m["agent"] for m in members]).values_list("id", flat=True))
    )
    if missing:
        raise Invalid(f"The revision's member agent(s) {', '.join(missing)} no longer exist.")
    Membership.objects.filter(star=star).delete()
    for member in members:
        Membership.objects.create(
            star=star,
            agent_id=member["agent"],
            **{k: member.get(k, "") for k in ("name", "description", "notes")},
            role=member.get("role", Role.WORKER),
            order=member.get("order", 0),
        )


def star_at(star_id: str, number: int) -> tuple[Star, list[Membership]]:
    """An unsaved Star and its unsaved memberships as revision ``number`` describes them."""
    from cosmos.services import revisions

    definition = revisions.definition_at(STAR_KIND, star_id, number)
    star = Star(id=star_id)
    apply_star_definition(star, definition)
    members = definition.get("members") or []
    agents = Agent.objects.in_bulk([m["agent"] for m in members])
    rows = []
    for member in members:
        agent = agents.get(member["agent"])
        if agent is None:
            continue  # deleted since: the team goes on without it, as with a disabled agent
        row = Membership(star=star, agent=agent, **{name: member.get(name) for name in MEMBER_FIELDS if name in member})
        rows.append(row)
    return star, rows


def load_team(star_id: str, mode: str | None = None, revision: int | None = None) -> Team:
    """The star's runnable team (as revision ``revision`` describes it, when given), or
    NotFound / NotRunnable saying why it cannot run."""
    if revision is not None:
        star, rows = star_at(star_id, revision)
    else:
        star = get_star(star_id)
        rows = list(Membership.objects.filter(star=star).select_related("agent").order_by("order", "id"))
    if not star.enabled:
        raise NotRunnable(f"Star {star_id!r} is disabled.", code="star_disabled")
    mode = mode or star.mode
    if mode not in MODES:
        raise NotRunnable(f"Unknown star mode {mode!r}; choose one of {', '.join(MODES)}.", code="invalid_mode")
    try:
        parse_limits(star.config)
    except ValueError as exc:
        raise NotRunnable(f"Star {star_id!r} has an invalid config: {exc}", code="invalid_config") from None
    leaders = [row for row in rows if row.role == Role.LEADER]
    if not leaders:
        raise NotRunnable(f"Star {star_id!r} has no leader; add a member with the role 'leader'.", code="no_leader")
    leader = leaders[0]
    if not leader.agent.enabled:
        raise NotRunnable(
            f"The leader of star {star_id!r}, agent {leader.agent_id!r}, is disabled.", code="leader_disabled"
        )
    workers = [row for row in rows if row.role == Role.WORKER and row.agent.enabled]
    if not workers and mode in MODES_NEEDING_WORKERS:
        disabled = sum(1 for row in rows if row.role == Role.WORKER)
        why = f" (its {disabled} worker(s) are disabled agents)" if disabled else ""
        raise NotRunnable(
            f"Star {star_id!r} has no workers{why}; {mode} mode needs at least one. "
            "Add a member with the role 'worker'.",
            code="no_workers",
        )
    leads = _stars_led_by([row.agent_id for row in workers], exclude=star_id)
    return Team(
        star_id=star.id,
        name=star.name or star.id,
        description=star.description,
        mode=mode,
        config=dict(star.config or {}),
        leader=_member(leader),
        workers=tuple(_member(row, leads.get(row.agent_id)) for row in workers),
    )


def check_star(star_id: str) -> None:
    """The ``check_target`` of the "star" run kind."""
    load_team(star_id)


def _member(row: Membership, leads_star: str | None = None) -> Member:
    return Member(
        name=row.name or row.agent_id,
        agent_id=row.agent_id,
        role=row.role,
        description=row.description or row.agent.description,
        order=row.order,
        leads_star=leads_star,
    )


def _stars_led_by(agent_ids: list[str], *, exclude: str) -> dict[str, str]:
    """For each agent that leads another enabled star, the first such star by id."""
    if not agent_ids:
        return {}
    rows = (
        Membership.objects.filter(agent_id__in=agent_ids, role=Role.LEADER, star__enabled=True)
        .exclude(star_id=exclude)
        .order_by("star_id")
        .values_list("agent_id", "star_id")
    )
    led: dict[str, str] = {}
    for agent_id, star_id in rows:
        led.setdefault(agent_id, star_id)
    return led
