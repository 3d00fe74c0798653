"""Plain factory functions for tests: valid rows with unique ids, any field overridable.

``build_*`` returns an unsaved instance (for validation tests); ``make_*`` validates it with
``full_clean()`` and saves it, as the admin and the services would. Examples::

    agent = make_agent(tools=["calculator"])
    star = make_star(leader=agent, workers=[make_agent()])
    run = make_run(target=agent.id, status="succeeded", events=["RUN_STARTED", "RUN_FINISHED"])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from cosmos.models import AGENT_KIND, Agent, AgentTemplate, Run, RunEvent, RunStatus
from interfaces.connectors.models import MCPServer, RemoteAgent
from interfaces.schedules.models import Schedule
from interfaces.webhooks.models import Delivery, PushConfig, Webhook
from interfaces.webhooks.signing import new_secret
from stars.models import Membership, Role, Star
from workflows.models import Workflow

_ids = itertools.count(1)


def unique_id(prefix: str) -> str:
    """A slug id no other factory call in this process has returned."""
    return f"{prefix}-{next(_ids)}"


def _saved(instance):
    instance.full_clean()
    instance.save()
    return instance


def build_template(id: str | None = None, **fields: Any) -> AgentTemplate:
    defaults = {"provider": "scripted", "model": "scripted-offline", "system_prompt": "You are helpful."}
    return AgentTemplate(id=id or unique_id("template"), **(defaults | fields))


def make_template(id: str | None = None, **fields: Any) -> AgentTemplate:
    return _saved(build_template(id, **fields))


def build_agent(id: str | None = None, **fields: Any) -> Agent:
    """An offline agent (scripted provider) unless ``provider``/``template`` say otherwise."""
    defaults = {} if "template" in fields else {"provider": "scripted", "model": "scripted-offline"}
    return Agent(id=id or unique_id("agent"), **(defaults | fields))


def make_agent(id: str | None = None, **fields: Any) -> Agent:
    return _saved(build_agent(id, **fields))


def build_star(id: str | None = None, **fields: Any) -> Star:
    return Star(id=id or unique_id("star"), **fields)


def make_star(
    id: str | None = None, *, leader: Agent | None = None, workers: Iterable[Agent] = (), **fields: Any
) -> Star:
    """A saved star; ``leader`` and ``workers`` become its members, in that order."""
    star = _saved(build_star(id, **fields))
    if leader is not None:
        make_membership(star, leader, role=Role.LEADER, order=0)
    for order, agent in enumerate(workers, start=1):
        make_membership(star, agent, role=Role.WORKER, order=order)
    return star


def build_membership(star: Star, agent: Agent, **fields: Any) -> Membership:
    return Membership(star=star, agent=agent, **({"role": Role.WORKER} | fields))


def make_membership(star: Star, agent: Agent, **fields: Any) -> Membership:
    return _saved(build_membership(star, agent, **fields))


def build_remote_agent(name: str | None = None, **fields: Any) -> RemoteAgent:
    """A remote A2A agent row; its URL names nothing that answers unless ``url`` is given."""
    defaults = {"url": "http://127.0.0.1:9/a2a/agents/nowhere"}
    return RemoteAgent(name=name or unique_id("remote"), **(defaults | fields))


def make_remote_agent(name: str | None = None, **fields: Any) -> RemoteAgent:
    return _saved(build_remote_agent(name, **fields))


def build_mcp_server(name: str | None = None, **fields: Any) -> MCPServer:
    """An MCP server row; its URL names nothing that answers (quickly) unless ``url`` is given."""
    defaults = {"url": "http://127.0.0.1:9/mcp", "connect_timeout": 2.0}
    return MCPServer(name=name or unique_id("mcp"), **(defaults | fields))


def make_mcp_server(name: str | None = None, **fields: Any) -> MCPServer:
    return _saved(build_mcp_server(name, **fields))


def workflow_definition(*agent_ids: str) -> dict:
    """A valid definition with one agent step per agent id (a fresh agent when none is given)."""
    return {
        "steps": [
            {"name": f"step-{index}", "type": "agent", "agent": agent_id, "prompt": "{{ input }}"}
            for index, agent_id in enumerate(agent_ids or (make_agent().id,), start=1)
        ]
    }


def build_workflow(id: str | None = None, **fields: Any) -> Workflow:
    if "definition" not in fields:
        fields["definition"] = workflow_definition()
    return Workflow(id=id or unique_id("workflow"), **fields)


def make_workflow(id: str | None = None, **fields: Any) -> Workflow:
    return _saved(build_workflow(id, **fields))


def make_run(
    kind: str = AGENT_KIND,
    target: str | None = None,
    *,
    events: Iterable[str | dict] = (),
    **fields: Any,
) -> Run:
    """A run row written directly (no dispatch, no worker), with optional events.

    ``target`` defaults to a freshly made agent for agent runs. ``events`` are event types or
    full event dicts; they get seq 1, 2, 3, ... Pass ``status=...`` and any other field to shape
    a finished or failed run.
    """
    if target is None:
        target = make_agent().id if kind == AGENT_KIND else unique_id(kind)
    defaults = {"input": {"message": "hello"}, "origin": "api", "status": RunStatus.QUEUED}
    run = Run.objects.create(kind=kind, target=target, **(defaults | fields))
    for event in events:
        add_event(run, event)
    return run


def add_event(run: Run, event: str | dict) -> RunEvent:
    """Append one event to a run with the next sequence number."""
    data = {"type": event} if isinstance(event, str) else dict(event)
    seq = run.events.count() + 1
    return RunEvent.objects.create(run=run, seq=seq, type=data["type"], data=data)


def build_schedule(name: str | None = None, **fields: Any) -> Schedule:
    """A schedule of a fresh agent (unless ``target`` is given), every minute unless told."""
    defaults: dict[str, Any] = {"kind": AGENT_KIND, "input": {"message": "tick"}}
    if "cron" not in fields and "interval_seconds" not in fields:
        defaults["interval_seconds"] = 60
    if "target" not in fields:
        defaults["target"] = make_agent().id
    return Schedule(name=name or unique_id("schedule"), **(defaults | fields))


def make_schedule(name: str | None = None, **fields: Any) -> Schedule:
    return _saved(build_schedule(name, **fields))


def make_webhook(url: str = "https://hooks.example.com/asteros", **fields: Any) -> Webhook:
    """A validated, enabled subscription to every event, with a fresh secret."""
    defaults = {"name": unique_id("hook"), "events": [], "secret": new_secret()}
    return _saved(Webhook(url=url, **(defaults | fields)))


def make_delivery(webhook: Webhook | None = None, **fields: Any) -> Delivery:
    """A pending delivery row (no task sent) of a ``webhook.test`` event."""
    webhook = webhook or make_webhook()
    defaults = {
        "message_id": unique_id("msg"),
        "event": "webhook.test",
        "payload": {"type": "webhook.test", "timestamp": "2026-01-01T00:00:00+00:00", "data": {}},
    }
    return Delivery.objects.create(webhook=webhook, **(defaults | fields))


def make_push_config(run: Run | None = None, **fields: Any) -> PushConfig:
    run = run or make_run()
    defaults = {"config_id": unique_id("push"), "url": "https://client.example.com/push"}
    return PushConfig.objects.create(run=run, **(defaults | fields))
