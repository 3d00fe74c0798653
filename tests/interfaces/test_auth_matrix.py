"""The auth matrix: every HTTP route and every websocket route, and who may use it.

The URLconf is walked (``django.urls.get_resolver()``, the registry's generated API included)
and so are the websocket routes of the real ASGI application. Every route must be classified
below, or ``test_every_http_route_is_classified`` / ``test_every_websocket_route_is_classified``
fail naming it:

- ``HTTP_MATRIX``: the calls a route answers. A ``Call`` is protected: with
  ``ASTEROS_ENABLE_AUTH`` on it refuses an anonymous caller (401), a revoked key (401), a key one
  scope short (403), a key limited to other resources (403, or 404 / a list without the row where
  the product hides rows), a session without its CSRF token on writes, and accepts the key with
  the scope it names. A ``Public`` call is public by design, with the reason next to it.
- ``STAFF_PAGES``: HTML pages for staff sessions (keys do not open them).
- ``STAFF_ENDPOINTS``: the JSON endpoints those pages call: a staff session with its CSRF token
  (keys are not taken: 401), refusals in the one error shape.
- every route of the ``admin`` namespace: the Django admin, checked as a whole (staff, CSRF).
- ``WS_MATRIX``: the websocket routes, the same callers, through ``WebsocketCommunicator``.
- ``ASGI_MATRIX``: the HTTP routes the ASGI router serves before Django (``/mcp``): the JSON-RPC
  requests each answers, the same callers, through the real ASGI application.

Adding a route: add ``"<key>": (Call("GET", "/api/things/{agent}", "read", resource="agents"),)``
to ``HTTP_MATRIX`` (the key is ``namespace:url-name``, the failure message prints it), one
``Call`` per method (for class-based views a method left out fails too), or a ``Public(...)``
with its reason. Placeholders (``{agent}``, ``{run}``, ...) come from ``World``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

# At import, not in a test: importing it runs django.setup(), which reconfigures logging.
from asteros_site.asgi import application
from cosmos.kinds import ExecutionResult, register_kind, unregister_kind
from cosmos.models import Interrupt, Run, RunStatus, Session
from cosmos.services import revisions
from interfaces.connectors.models import MCPServer, RemoteAgent
from interfaces.keys.models import APIKey
from tests.factories import (
    make_agent,
    make_delivery,
    make_run,
    make_schedule,
    make_star,
    make_template,
    make_webhook,
    make_workflow,
    workflow_definition,
)
from workflows.models import Workflow
from workflows.services import get_workflow

SETTINGS_KEY = "matrix-settings-key-0123456789"
FILTERED = "filtered"  # a list answered without the rows the key may not see
SCOPE_BELOW = {"read": [], "run": ["read"], "admin": ["run"]}
OTHER = "not-this-one"  # the one id a resource-limited key may use
A2A_HEADERS = {"A2A-Version": "1.0"}
TIMEOUT = 15


@dataclass(frozen=True)
class Call:
    """A protected call. ``path`` placeholders come from ``World.ids()``."""

    method: str
    path: str
    scope: str  # the least a key needs: read, run or admin
    resource: str | None = None  # per resource: a key limited to other ``<resource>:<id>`` is refused
    restricted: int | str = 404  # what that key gets: 403, 404 (rows are hidden) or FILTERED
    listed: str | None = None  # FILTERED: the World id that must not be in the list
    body: dict | None = None
    protocol: str = "api"  # the refusal's shape: api (the one error shape), a2a (google.rpc.Status), jsonrpc
    session: bool = True  # a staff session counts (writes need its CSRF token); False: keys only
    headers: dict[str, str] = field(default_factory=dict)
    upstream: bool = False  # it asks a server of the user's: accepted, it may answer 502 (unreachable)
    unimplemented: bool = False  # a part of a protocol left out: accepted, it answers 501

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Public:
    """A call anyone may make, auth on or off; ``reason`` says why."""

    method: str
    path: str
    reason: str
    status: tuple[int, ...] = (200,)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def api(method: str, path: str, scope: str, resource: str | None = None, **more: Any) -> Call:
    return Call(method, "/api" + path, scope, resource, **more)


def revision_routes(name: str, placeholder: str) -> dict[str, tuple[Call, ...]]:
    """The revision routes of a definition resource (the world records revision 1 of each)."""
    one = f"/{name}/{{{placeholder}}}/revisions"
    return {
        f"api:{name}-revisions": (api("GET", one, "read", name),),
        f"api:{name}-revision": (api("GET", f"{one}/1", "read", name),),
        f"api:{name}-compare-revisions": (api("GET", f"{one}/compare?from=1&to=1", "read", name),),
        f"api:{name}-restore-revision": (api("POST", f"{one}/1/restore", "admin", name),),
    }


def rest_resource(name: str, placeholder: str) -> dict[str, tuple[Call, ...]]:
    """The list and detail routes the registry generates for a model resource.

    A key limited to some rows gets a list without the others, a 404 for them, and may not add
    rows (a new row is none of its ids).
    """
    one = f"/{name}/{{{placeholder}}}"
    return {
        f"api:{name}-list": (
            api("GET", f"/{name}", "read", name, restricted=FILTERED, listed=placeholder),
            api("POST", f"/{name}", "admin", name, restricted=403),
        ),
        f"api:{name}-detail": (
            api("GET", one, "read", name),
            *(api(method, one, "admin", name) for method in ("PUT", "PATCH", "DELETE")),
        ),
    }


def a2a(method: str, tail: str, scope: str, **more: Any) -> Call:
    return Call(
        method,
        "/a2a/agents/{agent}" + tail,
        scope,
        "agents",
        restricted=403,
        protocol=more.pop("protocol", "a2a"),
        session=False,  # A2A takes API keys only, never the session cookie
        headers=A2A_HEADERS,
        **more,
    )


def ap(method: str, tail: str, scope: str, **more: Any) -> Call:
    """An Agent Protocol call: keys only. A call that would start a run sends a body the door
    refuses after auth (422), so no run is left waiting for a worker. A thread or run it cannot
    find answers 404 (``restricted=403`` here only skips the "not 404 for the right key" check:
    these calls have no resource)."""
    more.setdefault("restricted", 403)
    return Call(method, "/agent-protocol" + tail, scope, protocol="agent_protocol", session=False, **more)


AP_THREAD = "/threads/{session}"
AP_RUN = AP_THREAD + "/runs/{run}"
AP_ASSISTANT = "/assistants/agent:{agent}"
AP_MATRIX: dict[str, tuple[Call, ...]] = {
    "agent_protocol:info": (ap("GET", "/info", "read"),),
    "agent_protocol:assistants": (ap("POST", "/assistants", "run", body={}, unimplemented=True),),
    "agent_protocol:assistants-search": (ap("POST", "/assistants/search", "read", body={}),),
    "agent_protocol:assistants-count": (ap("POST", "/assistants/count", "read", body={}),),
    "agent_protocol:assistant": (
        ap("GET", AP_ASSISTANT, "read", resource="agents"),
        ap("PATCH", AP_ASSISTANT, "admin", body={}, unimplemented=True),
        ap("DELETE", AP_ASSISTANT, "admin", unimplemented=True),
    ),
    "agent_protocol:assistant-graph": (ap("GET", AP_ASSISTANT + "/graph", "read", resource="agents"),),
    "agent_protocol:assistant-schemas": (ap("GET", AP_ASSISTANT + "/schemas", "read", resource="agents"),),
    "agent_protocol:assistant-subgraphs": (ap("GET", AP_ASSISTANT + "/subgraphs", "read", resource="agents"),),
    "agent_protocol:assistant-subgraph": (ap("GET", AP_ASSISTANT + "/subgraphs/tools", "read", resource="agents"),),
    "agent_protocol:assistant-versions": (ap("POST", AP_ASSISTANT + "/versions", "read", resource="agents", body={}),),
    "agent_protocol:assistant-latest": (ap("POST", AP_ASSISTANT + "/latest", "admin", resource="agents", body={}),),
    "agent_protocol:threads": (ap("POST", "/threads", "run", body={}),),
    "agent_protocol:threads-search": (ap("POST", "/threads/search", "read", body={}),),
    "agent_protocol:threads-count": (ap("POST", "/threads/count", "read", body={}),),
    "agent_protocol:threads-prune": (ap("POST", "/threads/prune", "run", body={}, unimplemented=True),),
    "agent_protocol:thread": (
        ap("GET", AP_THREAD, "read"),
        ap("PATCH", AP_THREAD, "run", body={"metadata": {"matrix": 1}}),
        ap("DELETE", "/threads/no-such-thread", "run"),
    ),
    "agent_protocol:thread-copy": (ap("POST", AP_THREAD + "/copy", "run"),),
    "agent_protocol:thread-state": (
        ap("GET", AP_THREAD + "/state", "read"),
        ap("POST", AP_THREAD + "/state", "run", body={}),
    ),
    "agent_protocol:thread-state-checkpoint": (ap("GET", AP_THREAD + "/state/{run}", "read", unimplemented=True),),
    "agent_protocol:thread-history": (
        ap("GET", AP_THREAD + "/history", "read"),
        ap("POST", AP_THREAD + "/history", "read", body={}),
    ),
    "agent_protocol:thread-stream": (ap("GET", AP_THREAD + "/stream", "read", unimplemented=True),),
    "agent_protocol:thread-crons": (ap("POST", AP_THREAD + "/runs/crons", "admin", body={}),),
    "agent_protocol:thread-runs": (
        ap("GET", AP_THREAD + "/runs", "read"),
        ap("POST", AP_THREAD + "/runs", "run", body={}),
    ),
    "agent_protocol:thread-runs-stream": (ap("POST", AP_THREAD + "/runs/stream", "run", body={}),),
    "agent_protocol:thread-runs-wait": (ap("POST", AP_THREAD + "/runs/wait", "run", body={}),),
    "agent_protocol:thread-run": (ap("GET", AP_RUN, "read"), ap("DELETE", AP_RUN, "run")),
    "agent_protocol:thread-run-join": (ap("GET", AP_RUN + "/join", "read"),),
    "agent_protocol:thread-run-stream": (ap("GET", AP_RUN + "/stream", "read"),),
    "agent_protocol:thread-run-cancel": (ap("POST", AP_RUN + "/cancel", "run"),),
    "agent_protocol:runs": (ap("POST", "/runs", "run", body={}),),
    "agent_protocol:runs-stream": (ap("POST", "/runs/stream", "run", body={}),),
    "agent_protocol:runs-wait": (ap("POST", "/runs/wait", "run", body={}),),
    "agent_protocol:runs-cancel": (ap("POST", "/runs/cancel", "run", body={}),),
    "agent_protocol:runs-batch": (ap("POST", "/runs/batch", "run", body={}, unimplemented=True),),
    "agent_protocol:crons": (ap("POST", "/runs/crons", "admin", body={}),),
    "agent_protocol:crons-search": (ap("POST", "/runs/crons/search", "read", body={}),),
    "agent_protocol:crons-count": (ap("POST", "/runs/crons/count", "read", body={}),),
    "agent_protocol:cron": (
        ap("PATCH", "/runs/crons/{schedule}", "admin", body={}, unimplemented=True),
        ap("DELETE", "/runs/crons/no-such-cron", "admin"),
    ),
    "agent_protocol:store": (ap("PUT", "/store/items", "run", body={}, unimplemented=True),),
}

WEBHOOK_BODY = {"name": "matrix", "url": "https://hooks.example.com/matrix"}


def send_message_rpc() -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}


# The OpenAI door's calls that name no particular resource: any answer but 401/403/5xx (a 404
# for a response nobody started, a 400 for a body it refuses) shows the caller was admitted.
OPENAI: dict[str, Any] = {"protocol": "openai", "session": False}  # keys only, as A2A
OPENAI_ANY: dict[str, Any] = {"restricted": 403, **OPENAI}
NO_RESPONSE = "resp_00000000000000000000000000000000"


HTTP_MATRIX: dict[str, tuple[Call | Public, ...]] = {
    # --- the REST API (interfaces/http), generated from the registry
    "asteros-api-root": (api("GET", "", "read"),),
    "api:schema": (Public("GET", "/api/schema", "the OpenAPI schema describes the API and holds no data"),),
    "api:docs": (Public("GET", "/api/docs", "Swagger UI, a page that reads the public schema"),),
    **rest_resource("agents", "agent"),
    "api:agents-run": (api("POST", "/agents/{agent}/run", "run", "agents"),),
    "api:agents-status": (api("GET", "/agents/{agent}/status", "read", "agents"),),
    **revision_routes("agents", "agent"),
    **revision_routes("templates", "template"),
    **revision_routes("stars", "star"),
    **revision_routes("workflows", "workflow"),
    **rest_resource("templates", "template"),
    **rest_resource("stars", "star"),
    "api:stars-run": (api("POST", "/stars/{star}/run", "run", "stars"),),
    "api:stars-join": (api("POST", "/stars/{star}/join", "admin", "stars"),),
    "api:stars-leave": (api("POST", "/stars/{star}/leave", "admin", "stars"),),
    "api:stars-members": (api("GET", "/stars/{star}/members", "read", "stars"),),
    "api:stars-messages": (api("GET", "/stars/{star}/messages", "read", "stars"),),
    **rest_resource("workflows", "workflow"),
    "api:workflows-execute": (api("POST", "/workflows/{workflow}/execute", "run", "workflows"),),
    # A kind an app registers, with no REST resource of its own (the probe kind below)
    "api:kind-run": (api("POST", "/probes/{workflow}/run", "run", "probes"),),
    **rest_resource("sessions", "session"),
    # A run belongs to its target: a key limited to other agents does not see the sample agent's run.
    "api:runs-list": (api("GET", "/runs", "read", "agents", restricted=FILTERED, listed="run"),),
    "api:runs-detail": (api("GET", "/runs/{run}", "read", "agents"),),
    "api:runs-events": (api("GET", "/runs/{run}/events", "read", "agents"),),
    "api:runs-cancel": (api("POST", "/runs/{run}/cancel", "run", "agents"),),
    # Deciding for a run needs what starting and cancelling it need: run on its agent.
    "api:runs-resume": (api("POST", "/runs/{interrupted_run}/resume", "run", "agents", body={"decision": "approve"}),),
    "api:interrupts-list": (api("GET", "/interrupts", "read", "agents", restricted=FILTERED, listed="interrupt"),),
    "api:interrupts-detail": (api("GET", "/interrupts/{interrupt}", "read", "agents"),),
    "api:tools-list": (api("GET", "/tools", "read"),),
    "api:tools-detail": (api("GET", "/tools/{tool}", "read"),),
    **rest_resource("remote-agents", "remote_agent"),
    **rest_resource("mcp-servers", "mcp_server"),
    # Listed live: the sample server answers nothing, so an accepted call is a 502, never a refusal.
    "api:mcp-servers-tools": (api("GET", "/mcp-servers/{mcp_server}/tools", "read", "mcp-servers", upstream=True),),
    **rest_resource("schedules", "schedule"),
    "api:schedules-run": (api("POST", "/schedules/{schedule}/run", "run", "schedules"),),
    "api:schedules-runs": (api("GET", "/schedules/{schedule}/runs", "read", "schedules"),),
    # Webhooks: admin to read too (a subscription says where data goes); a key limited to other
    # resources may not use them at all (a subscription hears of every run).
    "api:webhooks-list": (
        api("GET", "/webhooks", "admin", "webhooks", restricted=403),
        api("POST", "/webhooks", "admin", "webhooks", restricted=403, body=WEBHOOK_BODY),
    ),
    "api:webhooks-detail": tuple(
        api(method, "/webhooks/{webhook}", "admin", "webhooks", restricted=403, body=WEBHOOK_BODY)
        for method in ("GET", "PUT", "PATCH", "DELETE")
    ),
    "api:webhooks-rotate-secret": (
        api("POST", "/webhooks/{webhook}/rotate-secret", "admin", "webhooks", restricted=403),
    ),
    "api:webhooks-test": (api("POST", "/webhooks/{webhook}/test", "admin", "webhooks", restricted=403),),
    "api:webhooks-deliveries": (api("GET", "/webhooks/{webhook}/deliveries", "admin", "webhooks", restricted=403),),
    "api:webhooks-delivery": (
        api("GET", "/webhooks/{webhook}/deliveries/{delivery}", "admin", "webhooks", restricted=403),
    ),
    "api:webhooks-redeliver": (
        api("POST", "/webhooks/{webhook}/deliveries/{delivery}/redeliver", "admin", "webhooks", restricted=403),
    ),
    # The calling key's own usage: a session has no key, so it gets 401 too.
    "api:key-usage": (api("GET", "/keys/me/usage", "read", session=False),),
    # Totals over every key and agent: admin, and not for a key limited to some resources.
    "api:usage": (api("GET", "/usage", "admin", "usage", restricted=403),),
    # --- operations
    "health": (Public("GET", "/health", "liveness for load balancers: only {status}; details need read", (200, 503)),),
    # Public only with ASTEROS_METRICS_PUBLIC (test_public_calls turns it on).
    "metrics": (Call("GET", "/metrics", "read"),),
    # --- A2A (interfaces/a2a): discovery is public (docs/a2a.md), every operation needs a key
    "a2a-root-card": (Public("GET", "/.well-known/agent-card.json", "A2A discovery: the domain's agent card"),),
    "a2a-directory": (Public("GET", "/a2a/", "A2A discovery: the directory of agent cards"),),
    "a2a-cards": (Public("GET", "/a2a/cards", "A2A discovery: every agent card"),),
    "a2a-card": (Public("GET", "/a2a/agents/{agent}/.well-known/agent-card.json", "A2A discovery: the agent card"),),
    "a2a-jsonrpc": (
        Public("GET", "/a2a/agents/{agent}", "A2A discovery: GET on the base URL answers the agent card"),
        a2a("POST", "", "run", body=send_message_rpc(), protocol="jsonrpc"),
    ),
    "a2a-message-send": (a2a("POST", "/message:send", "run"),),
    "a2a-message-stream": (a2a("POST", "/message:stream", "run"),),
    "a2a-tasks": (a2a("GET", "/tasks", "read"),),
    "a2a-task": (a2a("GET", "/tasks/{run}", "read"),),
    "a2a-task-cancel": (a2a("POST", "/tasks/{run}:cancel", "run"),),
    "a2a-task-subscribe": tuple(a2a(m, "/tasks/{run}:subscribe", "read") for m in ("GET", "POST")),
    "a2a-push-configs": (
        a2a("GET", "/tasks/{run}/pushNotificationConfigs", "read"),
        a2a("POST", "/tasks/{run}/pushNotificationConfigs", "run", body={"url": "https://example.com/hook"}),
        a2a("DELETE", "/tasks/{run}/pushNotificationConfigs/matrix-config", "run"),
    ),
    "a2a-extended-card": (a2a("GET", "/extendedAgentCard", "read"),),
    # --- AG-UI (interfaces/agui)
    "agui:index": (Call("GET", "/agui/", "read"),),
    "agui:agui": (Call("GET", "/agui", "read"),),
    "agui:run": (
        Call("GET", "/agui/agents/{agent}", "read", "agents", restricted=403),
        Call("POST", "/agui/agents/{agent}", "run", "agents", restricted=403),
    ),
    # --- the OpenAI-compatible door (interfaces/openai); refusals in OpenAI's error shape
    "openai:models": (Call("GET", "/v1/models", "read", "agents", restricted=FILTERED, listed="agent", **OPENAI),),
    "openai:model": (Call("GET", "/v1/models/agent:{agent}", "read", "agents", **OPENAI),),
    # (bodies the door refuses as bad input once the caller is admitted: no run is started)
    "openai:chat-completions": (
        Call("POST", "/v1/chat/completions", "run", body={"model": "x", "messages": "no"}, **OPENAI_ANY),
    ),
    "openai:responses": (Call("POST", "/v1/responses", "run", body={"model": "x", "input": 5}, **OPENAI_ANY),),
    "openai:response": (Call("GET", f"/v1/responses/{NO_RESPONSE}", "read", **OPENAI_ANY),),
    "openai:cancel": (Call("POST", f"/v1/responses/{NO_RESPONSE}/cancel", "run", **OPENAI_ANY),),
    "openai:not-found": (Call("GET", "/v1/embeddings", "read", **OPENAI_ANY),),
    # --- the Agent Protocol (interfaces/agent_protocol): keys only
    **AP_MATRIX,
    # --- the dashboard (interfaces/dashboard)
    "dashboard:home": (
        Public("GET", "/", "the home page: links to every door; with auth on, runs are shown to staff only"),
    ),
    "dashboard:script": (Public("GET", "/dashboard/dashboard.js", "the dashboard page's script; it holds no data"),),
    # (/static/ is no route: runserver or the web server serves those public files.)
}

# HTML pages for people: a staff session opens them, anyone else is sent to the admin login.
STAFF_PAGES: dict[str, str] = {"dashboard:index": "/dashboard/"}

# JSON endpoints of those pages: (method, path with ``{interrupt}``, a body that is accepted).
STAFF_ENDPOINTS: dict[str, tuple[str, str, dict]] = {
    "dashboard:resolve_interrupt": ("POST", "/dashboard/interrupts/{interrupt}/resolve/", {"decision": "reject"}),
}

# Views that run their own checks on another thread's database connection (async views
# using cosmos.db.db_call) only see committed rows: their tests use a transactional database.
COMMITTED_PREFIXES = ("a2a", "agui", "openai", "agent_protocol")


# --- the world every call is made against


@dataclass
class World:
    agent: Any
    star: Any
    workflow: Any
    template: Any
    session: Any
    run: Any
    remote_agent: Any
    mcp_server: Any
    interrupt: Any
    schedule: Any
    webhook: Any
    delivery: Any

    def ids(self) -> dict[str, str]:
        return {
            "agent": self.agent.id,
            "star": self.star.id,
            "workflow": self.workflow.id,
            "template": self.template.id,
            "session": self.session.id,
            "run": str(self.run.id),
            "tool": "calculator",
            "remote_agent": self.remote_agent.name,
            "mcp_server": self.mcp_server.name,
            "interrupted_run": str(self.interrupt.run_id),
            "interrupt": str(self.interrupt.id),
            "schedule": self.schedule.name,
            "webhook": str(self.webhook.pk),
            "delivery": str(self.delivery.pk),
        }


def make_world() -> World:
    agent = make_agent()
    paused = make_run(target=agent.id, status=RunStatus.INTERRUPTED, checkpoint={"attempt": 1})
    request = {"toolCallId": "call-1", "tool": "calculator", "arguments": {"expression": "1+1"}}
    webhook = make_webhook()
    world = World(
        agent=agent,
        star=make_star(leader=agent, workers=[make_agent()]),
        workflow=make_workflow(definition=workflow_definition(agent.id)),
        template=make_template(),
        session=Session.objects.create(id="matrix-session", kind="agent", target=agent.id),
        run=make_run(target=agent.id, status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "RUN_FINISHED"]),
        remote_agent=RemoteAgent.objects.create(name="matrix_remote", url="http://127.0.0.1:9/a2a"),
        mcp_server=MCPServer.objects.create(name="matrix_mcp", url="http://127.0.0.1:9/mcp", connect_timeout=2),
        interrupt=Interrupt.objects.create(run=paused, root_run=paused, kind="approval", request=request),
        schedule=make_schedule("matrix-schedule", target=agent.id),
        webhook=webhook,
        delivery=make_delivery(webhook),
    )
    # Revisions are recorded when a save commits, which a ``db`` test never does: record them.
    for resource, row in (("agent", agent), ("star", world.star), ("workflow", world.workflow)):
        revisions.record(resource, row.id)
    revisions.record("template", world.template.id)
    return world


async def _execute_probe(context) -> ExecutionResult:
    return ExecutionResult(output="probed")


@pytest.fixture(autouse=True)
def probe_kind() -> Iterator[None]:
    """A fourth run kind ("probe", collection "probes", on the Workflow table), so that the
    routes every registered kind gets are in the matrix too."""
    register_kind("probe", _execute_probe, get_workflow, target_model=Workflow)
    try:
        yield
    finally:
        unregister_kind("probe")


@pytest.fixture
def auth_on(settings_options):
    return settings_options(enable_auth=True, api_key=SETTINGS_KEY)


@dataclass
class Callers:
    """Keys for one call: the right one, one scope short, revoked, limited to other resources."""

    right: str
    right_caller: str  # the right key's ``Run.caller``
    below: str
    revoked: str
    restricted: str | None


def make_callers(scope: str, resource: str | None) -> Callers:
    right_key, right = APIKey.generate("right", [scope])
    below = APIKey.generate("below", SCOPE_BELOW[scope])[1]
    revoked_key, revoked = APIKey.generate("revoked", [scope])
    revoked_key.revoked = True
    revoked_key.save(update_fields=["revoked"])
    # The admin scope: only the resource limit can be the reason for a refusal.
    restricted = APIKey.generate("restricted", ["admin"], [f"{resource}:{OTHER}"])[1] if resource else None
    return Callers(right, f"key:{right_key.prefix}", below, revoked, restricted)


# --- walking the URLconf and the websocket routes


@dataclass(frozen=True)
class Route:
    key: str
    route: str
    callback: Any


def _join(prefix: str, route: str) -> str:
    return route if not prefix else prefix + route.removeprefix("^")


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        route = _join(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            inner = ":".join(filter(None, (namespace, pattern.namespace)))
            yield from _walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            name = pattern.name or route
            yield Route(f"{namespace}:{name}" if namespace else name, route, pattern.callback)


def served_http_routes() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for route in _walk(get_resolver().url_patterns):
        assert route.key not in routes, f"two routes are named {route.key!r}; the matrix needs distinct names"
        routes[route.key] = route
    return routes


def route_key(path: str) -> str:
    match = resolve(path.split("?")[0])
    namespace = ":".join(match.namespaces)
    name = match.url_name or match.route
    return f"{namespace}:{name}" if namespace else name


def is_admin(key: str) -> bool:
    return key.startswith("admin:")


def served_methods(route: Route) -> list[str]:
    """The methods a class-based view answers (a viewset's from its route); [] for functions."""
    actions = getattr(route.callback, "actions", None)
    if actions:  # DRF adds "head" to a viewset's GET routes once served: it is the GET
        return [method.upper() for method in actions if method not in ("head", "options")]
    view_class = getattr(route.callback, "view_class", None)
    return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]


def _suggestion(route: Route) -> str:
    """An entry to start from: the methods the view answers, the route as the path to fill in."""
    calls = ", ".join(f'Call("{m}", "/{route.route}", "<scope>")' for m in served_methods(route) or ["GET"])
    return f'    "{route.key}": ({calls},),'


def test_every_http_route_is_classified():
    served = served_http_routes()
    known = set(HTTP_MATRIX) | set(STAFF_PAGES) | set(STAFF_ENDPOINTS)
    missing = [route for key, route in sorted(served.items()) if key not in known and not is_admin(key)]
    stale = sorted(known - set(served))
    assert not missing, (
        "routes served but missing from the auth matrix; add each to HTTP_MATRIX in "
        f"{__name__.replace('.', '/')}.py with the calls it answers and the scope they need "
        "(fill in the path with {agent}, {run}, ... and resource= if a key can be limited to it), "
        "or a Public(...) with the reason it is public:\n" + "\n".join(_suggestion(r) for r in missing)
    )
    assert not stale, f"entries of the auth matrix that no route serves any more; remove them: {stale}"
    unlisted = {
        key: sorted(set(served_methods(route)) - {call.method for call in HTTP_MATRIX[key]})
        for key, route in served.items()
        if key in HTTP_MATRIX
    }
    unlisted = {key: methods for key, methods in unlisted.items() if methods}
    assert not unlisted, f"methods served but missing from their route's entry in HTTP_MATRIX: {unlisted}"


def test_every_matrix_call_reaches_its_route(db):
    ids = make_world().ids()
    for key, calls in HTTP_MATRIX.items():
        for call in calls:
            reached = route_key(call.path.format(**ids))
            assert reached == key, f"{call} is listed under {key!r} but reaches {reached!r}"
    for key, path in STAFF_PAGES.items():
        assert route_key(path) == key
    for key, (_method, path, _body) in STAFF_ENDPOINTS.items():
        assert route_key(path.format(interrupt="0eb28b35-26ca-4e0f-9de8-d4fca8b380cb")) == key


# --- HTTP: the callers


def _request(client: Client, call: Call | Public, ids: dict[str, str], headers: dict[str, str] | None = None):
    body = getattr(call, "body", None)
    response = client.generic(
        call.method,
        call.path.format(**ids),
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers={**getattr(call, "headers", {}), **(headers or {})},
    )
    if response.streaming:  # an accepted stream: its status is enough
        response.close()
    return response


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_refused(response, status: int, call: Call, who: str) -> None:
    """Refused with ``status`` in the error shape of the call's protocol."""
    where = f"{call} as {who}"
    assert response.status_code == status, (where, response.status_code, response.content[:300])
    body = response.json()
    if call.protocol == "jsonrpc":
        assert body["jsonrpc"] == "2.0" and set(body["error"]) >= {"code", "message"}, (where, body)
    elif call.protocol == "openai":
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, (where, body)
    elif call.protocol == "a2a":
        assert set(body["error"]) == {"code", "status", "message", "details"}, (where, body)
        assert body["error"]["code"] == status, (where, body)
    elif call.protocol == "agent_protocol":  # the protocol's detail, with the one error shape beside it
        assert set(body) == {"detail", "error"} and set(body["error"]) == {"code", "message", "details"}, (where, body)
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, (where, body)
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer"), where


def assert_accepted(response, call: Call, who: str) -> None:
    assert response.status_code not in (401, 403), (f"{call} as {who}", response.status_code, response.content[:300])
    allowed = ((502,) if call.upstream else ()) + ((501,) if call.unimplemented else ())
    assert response.status_code < 500 or response.status_code in allowed, (
        f"{call} as {who}",
        response.status_code,
        response.content[:300],
    )


def listed_ids(response) -> set[str]:
    body = response.json()
    rows = body.get("results", body.get("data")) if isinstance(body, dict) else body
    return {str(row.get("id", row.get("name"))) for row in rows}


def session_client(user) -> tuple[Client, str]:
    """A client logged in as ``user`` that enforces CSRF, and its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")  # sets the CSRF cookie
    client.force_login(user)
    return client, client.cookies["csrftoken"].value


@dataclass
class Sessions:
    """Clients enforcing CSRF, logged in as a staff user and as a user who is not staff."""

    staff: Client
    staff_token: str
    plain: Client
    plain_token: str


def make_sessions(django_user_model) -> Sessions:
    staff = django_user_model.objects.create_superuser("matrix-staff", password="pw-12345678")
    plain = django_user_model.objects.create_user("matrix-plain", password="pw-12345678")
    return Sessions(*session_client(staff), *session_client(plain))


def check_protected_call(call: Call, world: World, sessions: Sessions) -> None:
    ids = world.ids()
    keys = make_callers(call.scope, call.resource)
    Run.objects.filter(pk=world.run.pk).update(caller=keys.right_caller)  # A2A shows a key its own tasks
    client = Client()

    assert_refused(_request(client, call, ids), 401, call, "anonymous")
    assert_refused(_request(client, call, ids, bearer(keys.revoked)), 401, call, "a revoked key")
    assert_refused(_request(client, call, ids, {"X-API-Key": keys.revoked}), 401, call, "a revoked X-API-Key")
    assert_refused(_request(client, call, ids, bearer(keys.below)), 403, call, "a key one scope short")
    if keys.restricted is not None:
        response = _request(client, call, ids, bearer(keys.restricted))
        if call.restricted == FILTERED:
            assert response.status_code == 200, (str(call), response.status_code, response.content[:300])
            assert ids[call.listed] not in listed_ids(response), f"{call}: a limited key sees a row it may not"
        else:
            assert_refused(response, call.restricted, call, "a key limited to other resources")
    accepted = _request(client, call, ids, bearer(keys.right))
    assert_accepted(accepted, call, "the right key")
    # So that the limited key's 404 or shorter list came from the limit, not from a missing row:
    if call.restricted == 404:
        assert accepted.status_code != 404, (f"{call} as the right key", accepted.content[:300])
    if call.restricted == FILTERED:
        assert ids[call.listed] in listed_ids(accepted), f"{call}: the right key's list misses the row"

    if call.method not in ("GET", "HEAD", "OPTIONS"):
        # Another site's page can make the browser send the session cookie, never the token.
        refused = _request(sessions.staff, call, ids)
        assert refused.status_code in (401, 403), (f"{call}: a session without its CSRF token", refused.status_code)
    if call.session:
        staff = _request(sessions.staff, call, ids, {"X-CSRFToken": sessions.staff_token})
        assert_accepted(staff, call, "a staff session")
        plain = _request(sessions.plain, call, ids, {"X-CSRFToken": sessions.plain_token})
        assert_refused(plain, 403, call, "a session of a user who is not staff")
    else:
        staff = _request(sessions.staff, call, ids, {"X-CSRFToken": sessions.staff_token})
        assert_refused(staff, 401, call, "a staff session (keys only)")


def _calls(kind: type) -> Iterator[tuple[str, Any]]:
    for key, calls in HTTP_MATRIX.items():
        yield from ((key, call) for call in calls if isinstance(call, kind))


# One test per call; the calls of views that need committed rows share one transactional test
# per interface, as flushing the database after each would cost more than the calls.
PROTECTED = [
    pytest.param([(key, call)], id=f"{key} {call.method}")
    for key, call in _calls(Call)
    if not key.startswith(COMMITTED_PREFIXES)
]
COMMITTED = [
    pytest.param([(key, call) for key, call in _calls(Call) if key.startswith(prefix)], id=f"every {prefix} call")
    for prefix in COMMITTED_PREFIXES
]


@pytest.mark.parametrize("calls", PROTECTED)
@pytest.mark.django_db
def test_protected_call(calls, auth_on, django_user_model):
    sessions = make_sessions(django_user_model)
    for _key, call in calls:
        check_protected_call(call, make_world(), sessions)


@pytest.mark.parametrize("calls", COMMITTED)
@pytest.mark.django_db(transaction=True)
def test_protected_calls_of_async_views(calls, auth_on, django_user_model):
    assert calls, "the interface has routes"
    sessions = make_sessions(django_user_model)
    world = make_world()
    for _key, call in calls:
        check_protected_call(call, world, sessions)


@pytest.mark.django_db(transaction=True)
def test_public_calls(auth_on, settings_options):
    ids = make_world().ids()
    for _key, call in _calls(Public):
        response = _request(Client(), call, ids)
        assert response.status_code in call.status, (str(call), response.status_code, response.content[:300])
    assert set(Client().get("/health").json()) == {"status"}, "anonymous callers get liveness only"
    settings_options(metrics_public=True)  # ASTEROS_METRICS_PUBLIC: /metrics for anyone
    assert Client().get("/metrics").status_code == 200


# --- staff pages and the admin


@pytest.mark.django_db
def test_staff_pages_are_for_staff_sessions_only(auth_on, django_user_model):
    key = APIKey.generate("admin-key", ["admin"])[1]
    staff = django_user_model.objects.create_superuser("page-staff", password="pw-12345678")
    plain = django_user_model.objects.create_user("page-plain", password="pw-12345678")
    for path in STAFF_PAGES.values():
        for who, client, headers in (
            ("anonymous", Client(), {}),
            ("an admin key", Client(), bearer(key)),
            ("a user who is not staff", session_client(plain)[0], {}),
        ):
            response = client.get(path, headers=headers)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (path, who)
        assert session_client(staff)[0].get(path).status_code == 200, path


def waiting_interrupt() -> Interrupt:
    run = make_run(status=RunStatus.INTERRUPTED)
    request = {"toolCallId": "call-1", "tool": "calculator", "arguments": {"expression": "6*7"}}
    return Interrupt.objects.create(run=run, root_run=run, kind="approval", request=request)


@pytest.mark.django_db
def test_staff_endpoints_are_for_staff_sessions_with_their_token(auth_on, django_user_model):
    key = APIKey.generate("admin-key", ["admin"])[1]
    staff = django_user_model.objects.create_superuser("endpoint-staff", password="pw-12345678")
    plain = django_user_model.objects.create_user("endpoint-plain", password="pw-12345678")
    for method, path, body in STAFF_ENDPOINTS.values():
        call = Call(method, path.format(interrupt=waiting_interrupt().id), "admin", body=body)
        assert_refused(_request(Client(), call, {}), 401, call, "anonymous")
        assert_refused(_request(Client(), call, {}, bearer(key)), 401, call, "an admin key")
        plain_client, plain_token = session_client(plain)
        assert_refused(_request(plain_client, call, {}, {"X-CSRFToken": plain_token}), 403, call, "not staff")
        staff_client, token = session_client(staff)
        assert_refused(_request(staff_client, call, {}), 403, call, "a staff session without its CSRF token")
        accepted = _request(staff_client, call, {}, {"X-CSRFToken": token})
        assert accepted.status_code == 200, (str(call), accepted.status_code, accepted.content[:300])


# Values for the parameters of admin URLs; nothing is looked up before the staff check.
ADMIN_SAMPLES = {
    "object_id": "1",
    "id": "1",
    "content_type_id": "1",
    "app_label": "cosmos",
    "url": "no-such-page/",
    "number": "1",
}


def admin_urls() -> dict[str, str]:
    """A sample URL for every route of the admin namespace, checked to resolve to that route."""
    urls = {}
    for key, route in served_http_routes().items():
        if not is_admin(key):
            continue
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: ADMIN_SAMPLES[m[1]], route.route)  # regex groups
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: ADMIN_SAMPLES[m[1]], path)  # path converters
        path = "/" + path.replace("^", "").replace("$", "")
        assert resolve(path).func is route.callback, f"no sample URL for {key}; teach ADMIN_SAMPLES its parameters"
        urls[key] = path
    return urls


PUBLIC_ADMIN = {"admin:login": "the login form"}


@pytest.mark.django_db
def test_every_admin_page_sends_anonymous_and_non_staff_users_to_the_login(django_user_model):
    urls = admin_urls()
    assert len(urls) > 50, "the admin's routes were found"
    plain = Client()
    plain.force_login(django_user_model.objects.create_user("admin-plain", password="pw-12345678"))
    wrong = []
    for key, url in urls.items():
        if key in PUBLIC_ADMIN:
            assert Client().get(url).status_code == 200, key
            continue
        # admin:logout sends anonymous callers to the index, which sends them to the login.
        expected = ("/admin/login/", "/admin/") if key == "admin:logout" else ("/admin/login/",)
        for who, client in (("anonymous", Client()), ("not staff", plain)):
            response = client.get(url)
            location = response.get("Location", "").split("?")[0]
            if response.status_code != 302 or location not in expected:
                wrong.append((key, url, who, response.status_code, location))
    assert not wrong, f"admin pages that do not send the caller to the login: {wrong}"


@pytest.mark.django_db
def test_every_admin_post_needs_the_csrf_token(staff_user):
    staff, token = session_client(staff_user)  # the browser has the CSRF cookie; another site cannot read it
    wrong = []
    for key, url in admin_urls().items():
        response = staff.post(url, {"name": "x"})
        if response.status_code != 403 or b"CSRF" not in response.content:
            wrong.append((key, url, response.status_code))
    assert not wrong, f"admin pages that accept a POST without the CSRF token: {wrong}"
    # The same POST with the token gets past the check (the staff user is let in).
    response = staff.post("/admin/password_change/", {}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and b"CSRF" not in response.content


# --- websockets


@dataclass(frozen=True)
class WsCall:
    path: str
    scope: str
    resource: str | None
    probe: dict | None  # sent after connecting; None: the server speaks first
    answer: str  # the ``type`` of the first frame of an accepted connection

    def __str__(self) -> str:
        return self.path


WS_MATRIX: dict[str, WsCall] = {
    "ws-run": WsCall("/ws/runs/{run}/", "read", "agents", None, "event"),
    # An AG-UI socket answers a message that is not a RunAgentInput with RUN_ERROR invalid_input.
    "ws-agui": WsCall("/ws/agui/agents/{agent}/", "run", "agents", {"type": "hello"}, "RUN_ERROR"),
    # The dashboard shows every run: a key limited to some resources may not open it.
    "ws-dashboard": WsCall("/ws/dashboard/", "read", "agents", None, "snapshot"),
}


def asgi_websocket_router() -> Any:
    """The URLRouter inside the real ASGI application's websocket middleware stack (under the
    start-up layer, ``asteros_site.serving.StartBeforeServing``)."""
    app = application.application.application_mapping["websocket"]
    while not hasattr(app, "routes"):
        app = app.inner
    return app


def served_websocket_routes() -> dict[str, Any]:
    routes = {}
    for route in asgi_websocket_router().routes:
        assert isinstance(route, URLPattern), f"nested websocket routers are not walked yet: {route}"
        routes[route.name or str(route.pattern)] = route
    return routes


# Routes that serve nothing: the catch-all refuses every connection (close 4404), key or not.
WS_REFUSING = {"ws-not-found"}


def test_every_websocket_route_is_classified():
    served = {name: route for name, route in served_websocket_routes().items() if name not in WS_REFUSING}
    missing = sorted(set(served) - set(WS_MATRIX))
    stale = sorted(set(WS_MATRIX) - set(served))
    assert not missing, (
        f"websocket routes missing from WS_MATRIX in {__name__.replace('.', '/')}.py; add "
        f'"<name>": WsCall("/ws/...", "<scope>", "<resource or None>", probe, "<first frame type>"): {missing}'
    )
    assert not stale, f"WS_MATRIX entries no route serves any more; remove them: {stale}"


def communicator(path: str, headers: list, subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver"), *headers]
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)


def key_header(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


def session_header(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def ws_refused(path: str, headers: list, code: int, who: str, subprotocols: list[str] | None = None) -> None:
    comm = communicator(path, headers, subprotocols)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected, f"{path} as {who}: refusals accept first so that the close code reaches the client"
    frame = await comm.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"], (path, who, frame)
    closed = await comm.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": code}, (path, who, closed)


async def ws_accepted(call: WsCall, path: str, headers: list, who: str) -> None:
    comm = communicator(path, headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected, f"{path} as {who}"
    if call.probe is not None:
        await comm.send_json_to(call.probe)
    frame = await comm.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == call.answer, (path, who, frame)
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_every_websocket_route(auth_on, django_user_model):
    world = await database_sync_to_async(make_world)()
    create_user = database_sync_to_async(django_user_model.objects.create_user)
    staff = await create_user("ws-staff", password="pw", is_staff=True)
    plain = await create_user("ws-plain", password="pw")
    staff_session = await database_sync_to_async(session_header)(staff)
    plain_session = await database_sync_to_async(session_header)(plain)
    for call in WS_MATRIX.values():
        path = call.path.format(**world.ids())
        keys = await database_sync_to_async(make_callers)(call.scope, call.resource)
        await ws_refused(path, [], 4401, "anonymous")
        await ws_refused(path, key_header(keys.revoked), 4401, "a revoked key")
        revoked_protocol = ["asteros", f"asteros.key.{keys.revoked}"]
        await ws_refused(path, [], 4401, "a revoked key in the subprotocols", revoked_protocol)
        await ws_refused(path, key_header(keys.below), 4403, "a key one scope short")
        if keys.restricted is not None:
            await ws_refused(path, key_header(keys.restricted), 4403, "a key limited to other resources")
        await ws_refused(path, plain_session, 4403, "a user who is not staff")
        await ws_accepted(call, path, key_header(keys.right), "the right key")
        await ws_accepted(call, path, staff_session, "a staff session")


# --- routes of the ASGI router (before Django): /mcp


@dataclass(frozen=True)
class RpcCall:
    """A JSON-RPC request the route answers, the scope it needs, and the resource a key may be
    limited to (a limited key is answered without what it may not use: ``limited`` says how)."""

    body: dict
    scope: str
    resource: str | None
    limited: str  # "filtered": listed without the row; "unknown": refused as an unknown tool


ASGI_MATRIX: dict[str, tuple[RpcCall, ...]] = {
    "mcp": (
        RpcCall({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}, "read", "agents", FILTERED),
        RpcCall(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "{agent}", "arguments": {}}},
            "run",
            "agents",
            "unknown",
        ),
        RpcCall(
            {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "asteros://runs/{run}"}},
            "read",
            "agents",
            "unknown",
        ),
    ),
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_every_asgi_route_is_classified():
    from asteros_site.route_table import asgi_routes

    served = {route.name for route in asgi_routes()}
    assert served == set(ASGI_MATRIX), f"ASGI routes and ASGI_MATRIX differ: {served ^ set(ASGI_MATRIX)}"


async def rpc(body: dict, key: str | None) -> tuple[int, dict]:
    import httpx

    headers = MCP_HEADERS | ({"Authorization": f"Bearer {key}"} if key else {})
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/mcp", content=json.dumps(body), headers=headers)
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return response.status_code, json.loads(data[-1])
    return response.status_code, response.json()


@pytest.mark.django_db(transaction=True)
async def test_every_asgi_route(auth_on):
    world = await database_sync_to_async(make_world)()
    ids = world.ids()
    for calls in ASGI_MATRIX.values():
        for call in calls:
            body = json.loads(json.dumps(call.body).replace("{agent}", ids["agent"]).replace("{run}", ids["run"]))
            keys = await database_sync_to_async(make_callers)(call.scope, call.resource)
            method = body["method"]
            for who, key, status in (("anonymous", None, 401), ("a revoked key", keys.revoked, 401)):
                assert (await rpc(body, key))[0] == status, (method, who)
            assert (await rpc(body, keys.below))[0] == 403, (method, "a key one scope short")
            # The right key gets an answer (a call without its arguments: a tool error, not a refusal).
            status, answer = await rpc(body, keys.right)
            assert status == 200 and "result" in answer, (method, answer)
            if keys.restricted is not None:
                status, answer = await rpc(body, keys.restricted)
                if call.limited == FILTERED:
                    assert ids["agent"] not in json.dumps(answer["result"]), (method, answer)
                else:
                    assert answer["error"]["code"] == -32602, (method, answer)
