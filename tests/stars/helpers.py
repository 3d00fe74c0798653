"""Builders for star tests: scripted leaders that delegate, workers with a fixed answer."""

from __future__ import annotations

from typing import Any

from cosmos.models import Agent, Run
from stars.models import Role, Star
from stars.services import message_dict, messages
from tests.factories import make_agent, make_membership, make_star
from tests.support.runs import events


def worker(reply: str, *, ttft_ms: int = 0, **fields: Any) -> Agent:
    """A scripted agent that always answers ``reply`` (after ``ttft_ms``)."""
    parameters = {"reply": reply, **({"ttft_ms": ttft_ms} if ttft_ms else {})}
    return make_agent(parameters=parameters | fields.pop("parameters", {}), **fields)


def failing_worker(message: str = "the worker's model is down", **fields: Any) -> Agent:
    """A scripted agent whose model call fails at once."""
    return make_agent(parameters={"fail": message, "error_code": "model_unavailable"}, **fields)


def delegating_leader(*delegations: tuple[str, str], reply: str | None = None, **fields: Any) -> Agent:
    """A scripted leader that, in its first turn, calls ``delegate`` once per (member, instruction),
    in parallel, then answers with the tool results ("The results are: a; b.")."""
    rules = [
        {"when": ".", "call": "delegate", "arguments": {"member": member, "instruction": instruction}}
        for member, instruction in delegations
    ]
    parameters: dict[str, Any] = {"rules": rules}
    if reply is not None:
        parameters["reply"] = reply
    return make_agent(parameters=parameters, **fields)


def make_team(
    leader: Agent | None, workers: dict[str, Agent], *, leader_name: str = "lead", **star_fields: Any
) -> Star:
    """A star whose members have readable names: ``leader_name`` and the keys of ``workers``."""
    star = make_star(**star_fields)
    if leader is not None:
        make_membership(star, leader, name=leader_name, role=Role.LEADER, order=0)
    for order, (name, agent) in enumerate(workers.items(), start=1):
        make_membership(star, agent, name=name, role=Role.WORKER, order=order, description=f"{name} is good at {name}")
    return star


def children(run_id) -> list[Run]:
    """The run's child runs, oldest first."""
    return list(Run.objects.filter(parent_id=run_id).order_by("created_at"))


def child_of(run_id, member: str) -> list[Run]:
    return [c for c in children(run_id) if c.metadata.get("star_member") == member]


def subagent_events(run_id, type_: str | None = None) -> list[dict]:
    return [e for e in events(run_id) if e["type"].startswith("SUBAGENT_") and (type_ is None or e["type"] == type_)]


def custom_events(run_id, name: str) -> list[dict]:
    return [e["value"] for e in events(run_id) if e["type"] == "CUSTOM" and e["name"] == name]


def conversation(star_id, run_id=None) -> list[tuple[str, str, str]]:
    """The stored messages as (from, to, content)."""
    return [(m["from"], m["to"], m["content"]) for m in map(message_dict, messages(star_id, run_id=run_id))]
