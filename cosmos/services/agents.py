"""Agents: the Cosmos manager's create/get/list/remove/status, and building runtime specs."""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum

from ..models import ACTIVE_STATUSES, AGENT_KIND, Agent, AgentTemplate, Run, RunStatus, Source
from ..runtime.agent import AgentSpec
from ..runtime.errors import MODEL_AUTH, RunFailed
from ..secrets import SecretReferenceError, resolve_credential
from .costs import COST_PLACES, TOKEN_FIELDS
from .errors import Conflict, Invalid, NotFound, NotRunnable, conflict_on_integrity

AGENT_FIELDS = (
    "name",
    "description",
    "template",
    "system_prompt",
    "provider",
    "model",
    "parameters",
    "tools",
    "base_url",
    "api_key",
    "metadata",
    "enabled",
    "approvals",
    "interrupt_timeout_seconds",
    "on_interrupt_timeout",
)


# What an agent's revision holds besides its template (cosmos.services.revisions).
AGENT_OWN_FIELDS = tuple(name for name in AGENT_FIELDS if name != "template")
TEMPLATE_FIELDS = ("name", "system_prompt", "provider", "model", "parameters", "tools", "base_url", "api_key")


def get_agent(agent_id: str) -> Agent:
    try:
        return Agent.objects.select_related("template").get(id=agent_id)
    except Agent.DoesNotExist:
        raise NotFound(f"No agent with id {agent_id!r}.") from None


def check_runnable(agent_id: str) -> None:
    # One column, no join: every run start asks this.
    enabled = Agent.objects.filter(id=agent_id).values_list("enabled", flat=True).first()
    if enabled is None:
        raise NotFound(f"No agent with id {agent_id!r}.")
    if not enabled:
        raise NotRunnable(f"Agent {agent_id!r} is disabled.", code="agent_disabled")


def create_agent(agent_id: str, *, source: str = Source.DATABASE, max_agents: int | None = None, **fields) -> Agent:
    """Create an agent, refusing past ASTEROS_MAX_AGENTS (or the lower ``max_agents``): 409
    ``cosmos_full``; 409 ``already_exists`` when the id is taken, by a concurrent create too."""
    unknown = set(fields) - set(AGENT_FIELDS)
    if unknown:
        raise Invalid(f"Unknown agent field(s): {', '.join(sorted(unknown))}.")
    duplicate = f"An agent with id {agent_id!r} already exists."
    with transaction.atomic(), conflict_on_integrity(duplicate):
        _serialize_agent_creates()
        if Agent.objects.filter(id=agent_id).exists():
            raise Conflict(duplicate, code="already_exists")
        ensure_capacity(max_agents)
        agent = Agent(id=agent_id, source=source, **fields)
        _full_clean(agent)
        agent.save(force_insert=True)
    return agent


def upsert_agent(agent_id: str, *, source: str = Source.CODE, max_agents: int | None = None, **fields) -> Agent:
    """Create or update (used by code registration, which may run at every start)."""
    for attempt in range(2):
        with transaction.atomic():
            agent = Agent.objects.select_for_update().filter(id=agent_id).first()
            if agent is None:
                try:
                    return create_agent(agent_id, source=source, max_agents=max_agents, **fields)
                except Conflict as exc:
                    if exc.code != "already_exists" or attempt:
                        raise
                    continue  # created by a concurrent upsert a moment ago: update it instead
            for key, value in fields.items():
                setattr(agent, key, value)
            agent.source = source
            _full_clean(agent)
            agent.save()
            return agent
    raise AssertionError("unreachable")


# pg_advisory_xact_lock key of agent creates (any 64-bit number no other lock of the project uses).
AGENT_CREATE_LOCK = 0x61737465726F7301


def _serialize_agent_creates() -> None:
    """Hold the agent-creates lock until the current transaction ends (PostgreSQL; a second
    call in one transaction is free). SQLite's IMMEDIATE transactions are serialized already."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AGENT_CREATE_LOCK])


def ensure_capacity(max_agents: int | None = None) -> None:
    """Refuse a new agent past the limit. Call it inside the transaction that inserts the agent:
    it serializes agent creates until that transaction ends, so concurrent creates never pass
    the limit together (PostgreSQL: a transaction-scoped advisory lock; SQLite: its IMMEDIATE
    transactions admit one writer at a time already)."""
    limit = settings.ASTEROS.max_agents if max_agents is None else min(max_agents, settings.ASTEROS.max_agents)
    _serialize_agent_creates()
    if Agent.objects.count() >= limit:
        raise Conflict(f"cosmos is full (max {limit} agents)", code="cosmos_full")


def remove_agent(agent_id: str) -> None:
    """Delete an agent: 409 while it is a star member. Its runs in flight (queued ones too) go on
    with the revision they pinned; new runs are refused (404) from the commit on.

    Its row is locked first (``SELECT ... FOR UPDATE``): a run start holding it (see
    ``RunKind.hold_target``) commits first, and a run start that comes after waits for this
    delete and then finds no agent (404).
    """
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(id=agent_id).first()
        if agent is None:
            raise NotFound(f"No agent with id {agent_id!r}.")
        if agent.memberships.exists():
            raise Conflict(
                f"Agent {agent_id!r} is a member of a star; remove it from the star first.", code="agent_in_star"
            )
        agent.delete()
        _spec_cache.pop(agent_id, None)


def agent_status(agent_id: str) -> dict:
    """idle or busy, active runs, totals of runs, errors, tokens (cached ones included) and cost, last activity."""
    get_agent(agent_id)
    runs = Run.objects.filter(kind=AGENT_KIND, target=agent_id)
    totals = runs.aggregate(
        runs=Count("id"),
        errors=Count("id", filter=Q(status=RunStatus.FAILED)),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cache_read_tokens=Sum("cache_read_tokens"),
        cache_write_tokens=Sum("cache_write_tokens"),
        cost=Sum("cost"),
        last_activity=Max("updated_at"),
    )
    active = [str(i) for i in runs.filter(status__in=ACTIVE_STATUSES).values_list("id", flat=True)[:100]]
    return {
        "id": agent_id,
        "status": "busy" if active else "idle",
        "active_runs": active,
        "total_runs": totals["runs"],
        "total_errors": totals["errors"],
        "total_tokens": sum(totals[name] or 0 for name in TOKEN_FIELDS),
        "total_cost": Decimal(totals["cost"] or 0).quantize(COST_PLACES),  # USD
        "last_activity": totals["last_activity"],
    }


def agent_spec(agent: Agent) -> AgentSpec:
    """Merge the template with the agent's overrides into the runtime's spec."""
    template = agent.template
    parameters = {**(template.parameters if template else {}), **agent.parameters}
    tools = list(template.tools if template else []) + [
        t for t in agent.tools if not template or t not in template.tools
    ]
    return AgentSpec(
        id=agent.id,
        name=agent.name or agent.id,
        description=agent.description,
        system_prompt=agent.system_prompt or (template.system_prompt if template else ""),
        provider=agent.provider or (template.provider if template else "") or "scripted",
        model=agent.model or (template.model if template else ""),
        parameters=parameters,
        tools=tuple(tools),
        max_turns=int(parameters.get("max_turns", 10)),
        approvals=dict(agent.approvals or {}),
        base_url=agent.base_url or (template.base_url if template else "") or None,
        api_key_ref=agent.api_key or (template.api_key if template else ""),
    )


# Under load many runs start for the same agent each second: one query per agent per
# SPEC_CACHE_SECONDS instead of one per run. An edit reaches new runs within that time.
SPEC_CACHE_SECONDS = 1.0
_spec_cache: dict[str, tuple[float, AgentSpec]] = {}


def cached_agent_spec(agent_id: str) -> AgentSpec:
    now = time.monotonic()
    hit = _spec_cache.get(agent_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    spec = agent_spec(get_agent(agent_id))
    _spec_cache[agent_id] = (now + SPEC_CACHE_SECONDS, spec)
    return spec


def revision_spec(agent_id: str, number: int) -> AgentSpec:
    """The spec of revision ``number`` of an agent (what a run that pinned it executes)."""
    from . import revisions

    now = time.monotonic()
    key = f"{agent_id}@{number}"
    hit = _spec_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    spec = agent_spec(agent_from_definition(agent_id, revisions.definition_at(AGENT_KIND, agent_id, number)))
    _spec_cache[key] = (now + SPEC_CACHE_SECONDS, spec)
    return spec


def spec_for_run(run: Run) -> AgentSpec:
    return revision_spec(run.target, run.revision) if run.revision else cached_agent_spec(run.target)


# --- revisions: an agent's whole definition, its template's included


def template_definition(template: AgentTemplate) -> dict:
    return {name: getattr(template, name) for name in TEMPLATE_FIELDS}


def agent_definition(agent: Agent) -> dict:
    """The agent as a revision keeps it: its own fields, and its template's as they are now."""
    definition = {name: getattr(agent, name) for name in AGENT_OWN_FIELDS}
    definition["template"] = agent.template_id
    definition["template_definition"] = template_definition(agent.template) if agent.template_id else None
    return definition


def apply_agent_definition(agent: Agent, definition: dict) -> None:
    for name in AGENT_OWN_FIELDS:
        if name in definition:
            setattr(agent, name, definition[name])
    agent.template_id = definition.get("template")


def apply_template_definition(template: AgentTemplate, definition: dict) -> None:
    for name in TEMPLATE_FIELDS:
        if name in definition:
            setattr(template, name, definition[name])


def agent_from_definition(agent_id: str, definition: dict) -> Agent:
    """An unsaved Agent (with its unsaved template) as a revision describes it."""
    agent = Agent(id=agent_id)
    apply_agent_definition(agent, definition)
    agent.template_id = None
    if template := definition.get("template_definition"):
        agent.template = AgentTemplate(id=definition.get("template") or "", **template)
    return agent


def agents_of_template(template: AgentTemplate) -> list[tuple[str, str]]:
    """A template's agents: their revisions embed it, so a template edit revises them too."""
    return [(AGENT_KIND, agent_id) for agent_id in Agent.objects.filter(template=template).values_list("id", flat=True)]


def with_credentials(spec: AgentSpec) -> AgentSpec:
    """A copy of the spec with its API key read now, in this (worker) process, from the
    environment variable its reference names; the spec itself is returned when it names none.

    Raises RunFailed ``model_auth`` for a refused reference or an unset variable: a definition
    that names a key never falls back to the server-wide ANTHROPIC_API_KEY / OPENAI_API_KEY.
    """
    reference = spec.api_key_ref
    if not reference:
        return spec
    try:
        value = resolve_credential(reference)
    except SecretReferenceError as exc:
        raise RunFailed(MODEL_AUTH, f"The agent's API key reference is refused: {exc}") from None
    if value is None:
        name = reference.removeprefix("env:")
        raise RunFailed(
            MODEL_AUTH,
            f"The agent's API key reference {reference} names a variable that is not set where the run "
            f"executes: set {name} in the environment of the workers (or change the agent's API key reference).",
        )
    return dataclasses.replace(spec, api_key=value)


def _full_clean(agent: Agent) -> None:
    try:
        agent.full_clean()
    except ValidationError as exc:
        raise Invalid("The agent is not valid.", details=exc.message_dict) from None
