"""A star's team as one run sees it: a snapshot of its members, mode and limits.

A run loads its team once, when it starts; members who join or leave during the run count from
the next run on.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos.services.errors import NotFound, NotRunnable

from .limits import Limits, parse_limits
from .models import Membership, Role, Star, StarMode

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


def load_team(star_id: str, mode: str | None = None) -> Team:
    """The star's runnable team, or NotFound / NotRunnable saying why it cannot run."""
    star = get_star(star_id)
    if not star.enabled:
        raise NotRunnable(f"Star {star_id!r} is disabled.", code="star_disabled")
    mode = mode or star.mode
    if mode not in MODES:
        raise NotRunnable(f"Unknown star mode {mode!r}; choose one of {', '.join(MODES)}.", code="invalid_mode")
    try:
        parse_limits(star.config)
    except ValueError as exc:
        raise NotRunnable(f"Star {star_id!r} has an invalid config: {exc}", code="invalid_config") from None
    rows = list(Membership.objects.filter(star=star).select_related("agent").order_by("order", "id"))
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
