"""Every HTTP route, from one table: success, bad input, not found, and auth denied.

``ROUTES`` must list every route the URLconf serves under the API prefix, /health and /metrics
(``test_every_route_is_in_the_table`` enumerates them), so a new route cannot ship untested.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.schemas.generators import EndpointEnumerator

from cosmos.kinds import kind_names
from cosmos.models import Interrupt, RunStatus, Session
from cosmos.services import revisions
from tests.factories import (
    make_agent,
    make_delivery,
    make_mcp_server,
    make_remote_agent,
    make_run,
    make_schedule,
    make_star,
    make_template,
    make_webhook,
    make_workflow,
    workflow_definition,
)

from .conftest import assert_error, bearer

PUBLIC = "public"


@dataclass
class World:
    agent: Any
    spare_agent: Any
    worker: Any
    template: Any
    star: Any
    workflow: Any
    session: Any
    run: Any
    active_run: Any
    remote_agent: Any
    mcp_server: Any
    interrupted_run: Any
    interrupt: Any
    schedule: Any
    webhook: Any
    delivery: Any

    def ids(self) -> dict[str, str]:
        """The ``{id}`` of each resource's detail routes."""
        return {
            "agents": self.agent.id,
            "templates": self.template.id,
            "stars": self.star.id,
            "workflows": self.workflow.id,
            "sessions": self.session.id,
            "runs": str(self.run.id),
            "tools": "calculator",
            "remote-agents": self.remote_agent.name,
            "mcp-servers": self.mcp_server.name,
            "interrupts": str(self.interrupt.id),
            "schedules": self.schedule.name,
            "webhooks": str(self.webhook.pk),
        }


@pytest.fixture
def world(db) -> World:
    agent = make_agent()
    worker = make_agent()
    interrupted_run = make_run(target=agent.id, status=RunStatus.INTERRUPTED, checkpoint={"attempt": 1})
    webhook = make_webhook()
    interrupt = Interrupt.objects.create(
        run=interrupted_run,
        root_run=interrupted_run,
        kind="approval",
        request={"toolCallId": "call-1", "tool": "calculator", "arguments": {"expression": "1+1"}},
    )
    world = World(
        agent=agent,
        spare_agent=make_agent(),
        worker=worker,
        template=make_template(),
        star=make_star(leader=agent, workers=[worker]),
        workflow=make_workflow(definition=workflow_definition(agent.id)),
        session=Session.objects.create(id="session-1", kind="agent", target=agent.id),
        run=make_run(target=agent.id, status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "RUN_FINISHED"]),
        active_run=make_run(target=agent.id),
        remote_agent=make_remote_agent(),
        mcp_server=make_mcp_server(),
        interrupted_run=interrupted_run,
        interrupt=interrupt,
        schedule=make_schedule(target=agent.id),
        webhook=webhook,
        delivery=make_delivery(webhook=webhook),
    )
    # Revisions are recorded when a save commits, which a ``db`` test never does: record them.
    for resource, row in (("agent", agent), ("template", world.template), ("star", world.star)):
        revisions.record(resource, row.id)
    revisions.record("workflow", world.workflow.id)
    return world


Body = dict | Callable[[World], dict] | None


@dataclass
class Case:
    scope: str = "read"
    status: int | tuple[int, ...] = 200
    body: Body = None
    bad_body: Body = None
    bad_query: str | None = None
    no_bad_input: str | None = None  # why this route takes no input to get wrong
    target: Callable[[World], str] | None = None  # the {id} of the success call, if not the default
    headers: dict[str, str] = field(default_factory=dict)
    query: str | None = None  # of the success call


def _workflow_status() -> int:
    return 202 if "workflow" in kind_names() else 501


def _star_status() -> int:
    return 202 if "star" in kind_names() else 501


NO_INPUT = "takes no parameters or body"

REVISION_IN_PATH = "the revision number is part of the path: anything else is no route (a 404)"

ROUTES: dict[tuple[str, str], Case] = {
    ("GET", "/api/agents/{id}/revisions"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/agents/{id}/revisions/{number}"): Case(no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/agents/{id}/revisions/compare"): Case(query="from=1&to=1", bad_query="from=1&to=first"),
    ("POST", "/api/agents/{id}/revisions/{number}/restore"): Case(scope="admin", no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/templates/{id}/revisions"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/templates/{id}/revisions/{number}"): Case(no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/templates/{id}/revisions/compare"): Case(query="from=1&to=1", bad_query="from=1&to=first"),
    ("POST", "/api/templates/{id}/revisions/{number}/restore"): Case(scope="admin", no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/stars/{id}/revisions"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/stars/{id}/revisions/{number}"): Case(no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/stars/{id}/revisions/compare"): Case(query="from=1&to=1", bad_query="from=1&to=first"),
    ("POST", "/api/stars/{id}/revisions/{number}/restore"): Case(scope="admin", no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/workflows/{id}/revisions"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/workflows/{id}/revisions/{number}"): Case(no_bad_input=REVISION_IN_PATH),
    ("GET", "/api/workflows/{id}/revisions/compare"): Case(query="from=1&to=1", bad_query="from=1&to=first"),
    ("POST", "/api/workflows/{id}/revisions/{number}/restore"): Case(scope="admin", no_bad_input=REVISION_IN_PATH),
    ("GET", "/api"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/schema"): Case(scope=PUBLIC, no_bad_input=NO_INPUT),
    ("GET", "/api/docs"): Case(scope=PUBLIC, no_bad_input=NO_INPUT),
    ("GET", "/health"): Case(scope=PUBLIC, status=(200, 503), no_bad_input=NO_INPUT),
    ("GET", "/metrics"): Case(no_bad_input=NO_INPUT),
    # agents
    ("GET", "/api/agents"): Case(bad_query="enabled=maybe"),
    ("POST", "/api/agents"): Case(
        scope="admin", status=201, body={"id": "made-agent", "provider": "scripted"}, bad_body={"id": "Not A Slug!"}
    ),
    ("GET", "/api/agents/{id}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/agents/{id}"): Case(
        scope="admin", body={"provider": "scripted", "name": "Renamed"}, bad_body={"provider": "no-such-provider"}
    ),
    ("PATCH", "/api/agents/{id}"): Case(scope="admin", body={"name": "Renamed"}, bad_body={"tools": ["no-such-tool"]}),
    ("DELETE", "/api/agents/{id}"): Case(
        scope="admin", status=204, no_bad_input=NO_INPUT, target=lambda w: w.spare_agent.id
    ),
    ("POST", "/api/agents/{id}/run"): Case(scope="run", status=202, body={"input": "hello"}, bad_body={"stream": True}),
    ("GET", "/api/agents/{id}/status"): Case(no_bad_input=NO_INPUT),
    # templates
    ("GET", "/api/templates"): Case(bad_query="provider=" + "x" * 40),
    ("POST", "/api/templates"): Case(
        scope="admin",
        status=201,
        body={"id": "made-template", "provider": "scripted"},
        bad_body={"id": "t", "tools": 3},
    ),
    ("GET", "/api/templates/{id}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/templates/{id}"): Case(scope="admin", body={"provider": "openai"}, bad_body={"parameters": [1]}),
    ("PATCH", "/api/templates/{id}"): Case(scope="admin", body={"name": "T"}, bad_body={"provider": "nope"}),
    ("DELETE", "/api/templates/{id}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    # stars
    ("GET", "/api/stars"): Case(bad_query="mode=dictatorship"),
    ("POST", "/api/stars"): Case(
        scope="admin", status=201, body={"id": "made-star"}, bad_body={"id": "s", "mode": "x"}
    ),
    ("GET", "/api/stars/{id}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/stars/{id}"): Case(scope="admin", body={"mode": "broadcast"}, bad_body={"config": [1]}),
    ("PATCH", "/api/stars/{id}"): Case(scope="admin", body={"description": "d"}, bad_body={"enabled": "perhaps"}),
    ("DELETE", "/api/stars/{id}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    ("POST", "/api/stars/{id}/run"): Case(scope="run", status=_star_status(), body={"input": "go"}, bad_body={}),
    ("POST", "/api/stars/{id}/join"): Case(
        scope="admin", status=201, body=lambda w: {"agent_id": w.spare_agent.id}, bad_body={"role": "boss"}
    ),
    ("POST", "/api/stars/{id}/leave"): Case(
        scope="admin", status=204, body=lambda w: {"agent_id": w.worker.id}, bad_body={}
    ),
    ("GET", "/api/stars/{id}/members"): Case(no_bad_input="paginates only (limit/offset fall back to defaults)"),
    ("GET", "/api/stars/{id}/messages"): Case(bad_query="run=not-a-run-id"),
    # workflows
    ("GET", "/api/workflows"): Case(bad_query="enabled=maybe"),
    ("POST", "/api/workflows"): Case(
        scope="admin",
        status=201,
        body=lambda w: {"id": "made-workflow", "definition": workflow_definition(w.agent.id)},
        bad_body={"id": "made-workflow", "definition": {"steps": []}},
    ),
    ("GET", "/api/workflows/{id}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/workflows/{id}"): Case(
        scope="admin", body=lambda w: {"definition": workflow_definition(w.agent.id)}, bad_body={"definition": 1}
    ),
    ("PATCH", "/api/workflows/{id}"): Case(scope="admin", body={"name": "W"}, bad_body={"definition": {}}),
    ("DELETE", "/api/workflows/{id}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    ("POST", "/api/workflows/{id}/execute"): Case(
        scope="run", status=_workflow_status(), body={"input": "x"}, bad_body={}
    ),
    # sessions
    ("GET", "/api/sessions"): Case(bad_query="policy=whenever"),
    ("POST", "/api/sessions"): Case(scope="admin", status=201, body={"id": "made-session"}, bad_body={"id": ""}),
    ("GET", "/api/sessions/{id}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/sessions/{id}"): Case(scope="admin", body={"policy": "reject"}, bad_body={"policy": "whenever"}),
    ("PATCH", "/api/sessions/{id}"): Case(scope="admin", body={"state": {"a": 1}}, bad_body={"kind": "k" * 40}),
    ("DELETE", "/api/sessions/{id}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    # runs
    ("GET", "/api/runs"): Case(bad_query="parent=not-a-uuid"),
    ("GET", "/api/runs/{id}"): Case(no_bad_input=NO_INPUT),
    ("GET", "/api/runs/{id}/events"): Case(bad_query="after=-1"),
    ("POST", "/api/runs/{id}/cancel"): Case(
        scope="run", status=202, no_bad_input=NO_INPUT, target=lambda w: str(w.active_run.id)
    ),
    ("POST", "/api/runs/{id}/resume"): Case(
        scope="run",
        status=202,
        body={"decision": "approve"},
        bad_body={"decision": "maybe"},
        target=lambda w: str(w.interrupted_run.id),
    ),
    # interrupts
    ("GET", "/api/interrupts"): Case(bad_query="status=waiting"),
    ("GET", "/api/interrupts/{id}"): Case(no_bad_input=NO_INPUT),
    # tools
    ("GET", "/api/tools"): Case(no_bad_input="paginates only (limit/offset fall back to defaults)"),
    ("GET", "/api/tools/{name}"): Case(no_bad_input=NO_INPUT),
    # remote A2A agents (the card is read after commit: never in these tests)
    ("GET", "/api/remote-agents"): Case(bad_query="enabled=maybe"),
    ("POST", "/api/remote-agents"): Case(
        scope="admin",
        status=201,
        body={"name": "made_remote", "url": "http://127.0.0.1:9/a2a/agents/x"},
        bad_body={"name": "calculator", "url": "ftp://example.com/agent"},
    ),
    ("GET", "/api/remote-agents/{name}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/remote-agents/{name}"): Case(
        scope="admin", body={"url": "http://127.0.0.1:9/a2a/agents/y"}, bad_body={"url": "http://u:p@example.com/"}
    ),
    ("PATCH", "/api/remote-agents/{name}"): Case(
        scope="admin", body={"enabled": False}, bad_body={"auth_secret": "env:SECRET_KEY"}
    ),
    ("DELETE", "/api/remote-agents/{name}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    # MCP servers (tools are listed after commit: never in these tests; the sample answers nothing)
    ("GET", "/api/mcp-servers"): Case(bad_query="transport=carrier-pigeon"),
    ("POST", "/api/mcp-servers"): Case(
        scope="admin",
        status=201,
        body={"name": "made_mcp", "url": "http://127.0.0.1:9/mcp"},
        bad_body={"name": "made_mcp", "transport": "stdio", "command": "demo"},
    ),
    ("GET", "/api/mcp-servers/{name}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/mcp-servers/{name}"): Case(
        scope="admin", body={"url": "http://127.0.0.1:9/other"}, bad_body={"headers": {"Authorization": "token"}}
    ),
    ("PATCH", "/api/mcp-servers/{name}"): Case(
        scope="admin", body={"enabled": False}, bad_body={"headers": {"X-Key": "env:SECRET_KEY"}}
    ),
    ("DELETE", "/api/mcp-servers/{name}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    ("GET", "/api/mcp-servers/{name}/tools"): Case(status=502, no_bad_input="takes no input; it asks the server"),
    # schedules
    ("GET", "/api/schedules"): Case(bad_query="enabled=maybe"),
    ("POST", "/api/schedules"): Case(
        scope="admin",
        status=201,
        body=lambda w: (
            {"name": "made-schedule", "kind": "agent", "target": w.agent.id, "cron": "0 9 * * *"}
            | {"input": {"message": "hi"}}
        ),
        bad_body=lambda w: {"name": "made-schedule", "kind": "agent", "target": w.agent.id, "cron": "0 25 * * *"},
    ),
    ("GET", "/api/schedules/{name}"): Case(no_bad_input=NO_INPUT),
    ("PUT", "/api/schedules/{name}"): Case(
        scope="admin",
        body=lambda w: {"kind": "agent", "target": w.agent.id, "interval_seconds": 60, "input": {"message": "hi"}},
        bad_body=lambda w: {"kind": "agent", "target": w.agent.id, "interval_seconds": 60, "cron": "* * * * *"},
    ),
    ("PATCH", "/api/schedules/{name}"): Case(
        scope="admin", body={"enabled": False}, bad_body={"timezone": "Nowhere/Never"}
    ),
    ("DELETE", "/api/schedules/{name}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    ("POST", "/api/schedules/{name}/run"): Case(
        scope="run", status=202, no_bad_input="takes no body: the schedule's input"
    ),
    ("GET", "/api/schedules/{name}/runs"): Case(bad_query="cursor=not-a-cursor"),
    # webhooks: the admin scope even to read (a subscription says where data goes)
    ("GET", "/api/webhooks"): Case(scope="admin", bad_query="enabled=maybe"),
    ("POST", "/api/webhooks"): Case(
        scope="admin",
        status=201,
        body={"name": "made", "url": "https://hooks.example.com/made", "events": ["run.failed"]},
        bad_body={"name": "made", "url": "http://169.254.169.254/latest/meta-data"},
    ),
    ("GET", "/api/webhooks/{id}"): Case(scope="admin", no_bad_input=NO_INPUT),
    ("PUT", "/api/webhooks/{id}"): Case(
        scope="admin",
        body={"name": "renamed", "url": "https://hooks.example.com/other"},
        bad_body={"name": "renamed", "url": "https://hooks.example.com/other", "events": ["run.exploded"]},
    ),
    ("PATCH", "/api/webhooks/{id}"): Case(scope="admin", body={"enabled": False}, bad_body={"resource_kind": "planet"}),
    ("DELETE", "/api/webhooks/{id}"): Case(scope="admin", status=204, no_bad_input=NO_INPUT),
    ("POST", "/api/webhooks/{id}/rotate-secret"): Case(scope="admin", no_bad_input=NO_INPUT),
    ("POST", "/api/webhooks/{id}/test"): Case(scope="admin", status=202, no_bad_input=NO_INPUT),
    ("GET", "/api/webhooks/{id}/deliveries"): Case(scope="admin", bad_query="status=lost"),
    ("GET", "/api/webhooks/{id}/deliveries/{delivery}"): Case(scope="admin", no_bad_input=NO_INPUT),
    ("POST", "/api/webhooks/{id}/deliveries/{delivery}/redeliver"): Case(
        scope="admin", status=202, no_bad_input=NO_INPUT
    ),
    # keys: 200 for a key; with auth off and no key, 401 api_key_required (test_quotas.py has the rest)
    ("GET", "/api/keys/me/usage"): Case(status=(200, 401), no_bad_input=NO_INPUT),
    # usage: every key and agent, so admin (test_usage.py has the rest)
    ("GET", "/api/usage"): Case(scope="admin", bad_query="group=weekday"),
}


def _served_routes() -> set[tuple[str, str]]:
    routes = set()
    for path, method, _callback in EndpointEnumerator().get_api_endpoints():
        if path.startswith(("/api", "/health", "/metrics")) and method not in ("HEAD", "OPTIONS"):
            routes.add((method, path))
    return routes


def test_every_route_is_in_the_table():
    served = _served_routes()
    missing = sorted(served - set(ROUTES))
    stale = sorted(set(ROUTES) - served)
    assert not missing, f"routes served but not tested here; add them to ROUTES: {missing}"
    assert not stale, f"routes in ROUTES that are not served any more: {stale}"


def test_the_seed_routes_are_served_exactly():
    seed = {
        ("GET", "/api/agents"),
        ("POST", "/api/agents/{id}/run"),
        ("GET", "/api/agents/{id}/status"),
        ("GET", "/api/stars"),
        ("POST", "/api/stars/{id}/run"),
        ("POST", "/api/stars/{id}/join"),
        ("POST", "/api/stars/{id}/leave"),
        ("GET", "/api/stars/{id}/members"),
        ("GET", "/api/workflows"),
        ("POST", "/api/workflows/{id}/execute"),
        ("GET", "/health"),
        ("GET", "/metrics"),
    }
    assert seed <= _served_routes()


def _url(path: str, world: World, case: Case | None = None, missing: bool = False) -> str:
    if "{" not in path:
        return path
    resource = path.split("/")[2]
    if missing:
        value = str(uuid.uuid4()) if resource in ("runs", "interrupts", "webhooks") else "does-not-exist"
    elif case is not None and case.target is not None:
        value = case.target(world)
    else:
        value = world.ids()[resource]
    url = path.replace("{id}", value).replace("{name}", value).replace("{delivery}", str(world.delivery.pk))
    url = url.replace("{number}", "1")
    return f"{url}?{case.query}" if case is not None and case.query and not missing else url


def _body(body: Body, world: World) -> dict | None:
    return body(world) if callable(body) else body


def _call(client, method: str, url: str, body: dict | None = None, **extra):
    kwargs: dict[str, Any] = {"format": "json"} if body is not None else {}
    if body is not None:
        kwargs["data"] = body
    return getattr(client, method.lower())(url, **kwargs, **extra)


def _expected(case: Case) -> tuple[int, ...]:
    return case.status if isinstance(case.status, tuple) else (case.status,)


ROUTE_IDS = [f"{method} {path}" for method, path in ROUTES]


@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=ROUTE_IDS)
def test_success(api_client, world, method, path):
    case = ROUTES[(method, path)]
    response = _call(api_client, method, _url(path, world, case), _body(case.body, world))
    assert response.status_code in _expected(case), (response.status_code, response.content[:500])
    if response.status_code == 501:  # the run kind's engine is not installed yet
        assert_error(response, 501, "not_implemented")


@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=ROUTE_IDS)
def test_success_with_the_least_scope_when_auth_is_on(api_client, world, keys, auth_on, method, path):
    case = ROUTES[(method, path)]
    extra = {} if case.scope == PUBLIC else bearer(getattr(keys, case.scope))
    response = _call(api_client, method, _url(path, world, case), _body(case.body, world), **extra)
    assert response.status_code in _expected(case), (response.status_code, response.content[:500])


BAD = [(m, p) for (m, p), c in ROUTES.items() if c.no_bad_input is None]


@pytest.mark.parametrize(("method", "path"), BAD, ids=[f"{m} {p}" for m, p in BAD])
def test_bad_input(api_client, world, method, path):
    case = ROUTES[(method, path)]
    assert case.bad_body is not None or case.bad_query is not None, "give bad_body, bad_query or no_bad_input"
    url = _url(path, world, case).split("?")[0]  # the bad query instead of the good one
    if case.bad_query:
        url = f"{url}?{case.bad_query}"
    response = _call(api_client, method, url, _body(case.bad_body, world) if case.bad_body is not None else None)
    assert_error(response, 400)


def test_routes_without_bad_input_say_why():
    for (method, path), case in ROUTES.items():
        assert case.no_bad_input or case.bad_body is not None or case.bad_query, f"{method} {path}"


DETAIL = [(m, p) for (m, p) in ROUTES if "{" in p]


@pytest.mark.parametrize(("method", "path"), DETAIL, ids=[f"{m} {p}" for m, p in DETAIL])
def test_not_found(api_client, world, method, path):
    case = ROUTES[(method, path)]
    response = _call(api_client, method, _url(path, world, missing=True), _body(case.body, world))
    assert_error(response, 404, "not_found")


PROTECTED = [(m, p) for (m, p), c in ROUTES.items() if c.scope != PUBLIC]


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest.mark.parametrize("who", ["anonymous", "wrong key", "wrong scope"])
def test_auth_denied(api_client, world, keys, auth_on, method, path, who):
    case = ROUTES[(method, path)]
    extra = {
        "anonymous": {},
        "wrong key": bearer("ak_0000_not-a-real-key"),
        "wrong scope": bearer(keys.below(case.scope)),
    }[who]
    response = _call(api_client, method, _url(path, world, case), _body(case.body, world), **extra)
    if who == "wrong scope":
        assert_error(response, 403, "permission_denied")
    else:
        error = assert_error(response, 401, "not_authenticated" if who == "anonymous" else "authentication_failed")
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "ak_0000" not in error["message"]


PUBLIC_ROUTES = [(m, p) for (m, p), c in ROUTES.items() if c.scope == PUBLIC]


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES, ids=[f"{m} {p}" for m, p in PUBLIC_ROUTES])
def test_public_routes_answer_anonymous_callers(api_client, world, auth_on, method, path):
    case = ROUTES[(method, path)]
    response = _call(api_client, method, _url(path, world, case))
    assert response.status_code in _expected(case)
