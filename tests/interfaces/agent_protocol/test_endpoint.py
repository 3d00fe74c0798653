"""The Agent Protocol door in process: auth (keys only, scopes, resource limits), bad input of
every kind answered 4xx in the protocol's error shape, and what is left out answered 501."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from cosmos.models import Session
from interfaces.keys.models import APIKey
from tests.factories import make_agent

SETTINGS_KEY = "agent-protocol-settings-key-0123"
BASE = "/agent-protocol"

pytestmark = pytest.mark.django_db(transaction=True)


async def call(method: str, path: str, body=None, raw: bytes | None = None, **headers):
    client = AsyncClient()
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return await client.generic(method, BASE + path, data=data, content_type="application/json", headers=headers)


def refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"detail", "error"} and body["detail"] == body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body


async def test_keys_scopes_and_resource_limits(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    agent = await sync_to_async(make_agent)()
    _, reader = await sync_to_async(APIKey.generate)("reader", ["read"])
    _, runner = await sync_to_async(APIKey.generate)("runner", ["run"])
    _, elsewhere = await sync_to_async(APIKey.generate)("elsewhere", ["run"], ["agents:other-agent"])

    response = await call("POST", "/assistants/search", {})
    refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    refused(await call("POST", "/threads", {}, Authorization="Bearer not-a-key"), 401, "authentication_failed")
    refused(await call("POST", "/threads", {}, Authorization=f"Bearer {reader}"), 403, "permission_denied")
    assert (await call("POST", "/assistants/search", {}, **{"X-API-Key": reader})).status_code == 200
    created = await call("POST", "/threads", {}, **{"X-API-Key": runner})
    assert created.status_code == 200 and created.json()["status"] == "idle"

    # A key limited to another agent neither sees nor runs this one.
    listed = await call("POST", "/assistants/search", {"limit": 100}, Authorization=f"Bearer {elsewhere}")
    assert f"agent:{agent.id}" not in {a["assistant_id"] for a in listed.json()}
    refused(await call("GET", f"/assistants/agent:{agent.id}", Authorization=f"Bearer {elsewhere}"), 403)
    body = {"assistant_id": f"agent:{agent.id}", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    refused(await call("POST", "/runs", body, Authorization=f"Bearer {elsewhere}"), 403, "permission_denied")
    # A staff session is no key: this door takes keys only.
    refused(await call("POST", "/runs", body), 401)


async def test_bad_input_is_a_4xx_in_the_protocols_shape():
    agent = await sync_to_async(make_agent)()
    await sync_to_async(Session.objects.create)(id="t-1")
    refused(await call("POST", "/threads", raw=b"{nope"), 400, "malformed_request")
    refused(await call("POST", "/threads", raw=b'"text"'), 422)
    refused(await call("POST", "/threads", {"thread_id": 7}), 422)
    refused(await call("POST", "/threads", {"if_exists": "shrug"}), 422)
    refused(await call("POST", "/threads", {"thread_id": "t-1"}), 409, "already_exists")
    refused(await call("POST", "/threads/search", {"limit": 0}), 422)
    refused(await call("POST", "/threads/search", {"limit": "ten"}), 422)
    refused(await call("POST", "/threads/search", {"sort_by": "colour"}), 422)
    refused(await call("POST", "/assistants/search", {"graph_id": 3}), 422)
    refused(await call("POST", "/assistants/search", {"metadata": []}), 422)
    refused(await call("GET", "/assistants/agent:missing"), 404, "not_found")
    refused(await call("GET", "/assistants/nothing:missing"), 404, "not_found")
    refused(await call("GET", "/threads/missing"), 404, "not_found")
    refused(await call("GET", "/threads/t-1/runs/not-a-uuid"), 404, "not_found")
    refused(await call("GET", "/threads/t-1/runs?limit=x"), 422)
    refused(await call("GET", "/threads/t-1/runs?status=sleeping"), 422)
    refused(await call("GET", "/threads/t-1/history?limit=x"), 422)
    refused(await call("POST", "/threads/t-1/state", {"values": {"colour": "red"}}), 422)
    refused(await call("PUT", "/threads/t-1"), 405, "method_not_allowed")
    refused(await call("GET", "/threads/a%00b"), 400, "bad_request")  # refused by the edge, in this shape too
    refused(await call("POST", "/threads", raw=b"[" + b" " * 1_100_000 + b"]"), 413)
    run = {"assistant_id": f"agent:{agent.id}", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    refused(await call("POST", "/threads/t-1/runs", {**run, "assistant_id": None}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "assistant_id": "agent:missing"}), 404)
    refused(await call("POST", "/threads/missing/runs", run), 404, "not_found")
    refused(await call("POST", "/threads/t-1/runs/stream", {**run, "stream_mode": "telepathy"}), 422)
    refused(await call("POST", "/threads/t-1/runs/stream", {**run, "stream_mode": [1]}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "multitask_strategy": "maybe"}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "if_not_exists": "perhaps"}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "metadata": "x"}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "input": 5}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "input": None}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "input": {"messages": []}}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "input": {"messages": [{"role": "tool"}]}}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "command": {"resume": True}}), 409, "not_interrupted")
    refused(await call("POST", "/threads/t-1/runs", {**run, "command": "resume"}), 422)
    refused(await call("POST", "/threads/t-1/runs", {**run, "command": {"goto": "x"}}), 501)
    refused(await call("POST", "/threads/t-1/runs", {**run, "interrupt_before": ["agent"]}), 501)
    refused(await call("POST", f"/assistants/agent:{agent.id}/latest", {"version": 0}), 422)
    refused(await call("POST", f"/assistants/agent:{agent.id}/latest", {"version": 99}), 404)
    refused(await call("POST", f"/assistants/agent:{agent.id}/versions", {"limit": -1}), 422)
    refused(await call("POST", "/runs/cancel", {}), 422)
    cron = {"assistant_id": f"agent:{agent.id}", "schedule": "0 9 * * *", "input": run["input"]}
    refused(await call("POST", "/runs/crons", {**cron, "schedule": "every day"}), 422)
    refused(await call("POST", "/runs/crons", {**cron, "schedule": None}), 422)
    refused(await call("POST", "/runs/crons", {**cron, "end_time": "tomorrow"}), 422)
    refused(await call("POST", "/runs/crons", {**cron, "enabled": "yes"}), 422)
    refused(await call("POST", "/runs/crons", {**cron, "assistant_id": "agent:missing"}), 404)
    refused(await call("POST", "/threads/missing/runs/crons", cron), 404)
    refused(await call("POST", "/runs/crons/search", {"thread_id": 5}), 422)
    refused(await call("DELETE", "/runs/crons/missing"), 404)
    refused(await call("POST", "/runs/cancel?action=explode", {"status": "all"}), 422)
    refused(await call("POST", "/threads/t-1/runs/00000000-0000-0000-0000-000000000000/cancel?wait=maybe"), 422)
    refused(
        await call("GET", "/threads/t-1/runs/00000000-0000-0000-0000-000000000000/stream", **{"Last-Event-ID": "x"}),
        400,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/assistants"),
        ("PATCH", "/assistants/agent:x"),
        ("DELETE", "/assistants/agent:x"),
        ("POST", "/threads/prune"),
        ("GET", "/threads/t/state/abc"),
        ("GET", "/threads/t/stream"),
        ("POST", "/runs/batch"),
        ("PATCH", "/runs/crons/abc"),
        ("PUT", "/store/items"),
        ("GET", "/store/items"),
        ("POST", "/store/namespaces"),
    ],
)
async def test_what_is_left_out_is_a_501(method, path):
    refused(await call(method, path, {}), 501, "not_implemented")


def test_the_door_can_be_switched_off_and_moved(settings_options):
    from django.urls import URLResolver

    from asteros_site.routes import build_urlpatterns

    def mounted() -> list[str]:
        return [
            str(p.pattern)
            for p in build_urlpatterns()
            if isinstance(p, URLResolver) and getattr(p.urlconf_module, "app_name", "") == "agent_protocol"
        ]

    assert mounted() == ["agent-protocol/"]
    settings_options(agent_protocol_prefix="/v1/langgraph")
    assert mounted() == ["v1/langgraph/"]
    settings_options(enable_agent_protocol=False)
    assert mounted() == []


ODD_BODIES = [
    b"[]",
    b"1",
    b"null",
    b'"text"',
    b"{}",
    b'{"assistant_id": {}}',
    b'{"assistant_id": "agent:x", "input": {"messages": "hi"}}',
    b'{"assistant_id": "a:b:c", "input": []}',
    b'{"limit": 1e400, "offset": -1}',
    b'{"metadata": {"k": [1, {"x": null}]}, "ids": [1]}',
    b'{"thread_id": "' + b"x" * 300 + b'"}',
    b'{"values": [], "status": null, "sort_order": 5}',
    b'{"command": {"resume": {"not-an-id": 1}}, "assistant_id": "agent:x"}',
]
POSTS = [
    "/assistants/search",
    "/assistants/count",
    "/assistants/agent:x/versions",
    "/threads",
    "/threads/search",
    "/threads/count",
    "/threads/t-1/copy",
    "/threads/t-1/state",
    "/threads/t-1/history",
    "/threads/t-1/runs",
    "/threads/t-1/runs/stream",
    "/threads/t-1/runs/wait",
    "/runs",
    "/runs/stream",
    "/runs/wait",
    "/runs/cancel",
    "/runs/crons",
    "/runs/crons/search",
    "/runs/crons/count",
    "/threads/t-1/runs/crons",
]


async def test_no_body_makes_a_5xx():
    await sync_to_async(Session.objects.create)(id="t-1")
    for path in POSTS:
        for raw in ODD_BODIES:
            response = await call("POST", path, raw=raw)
            assert response.status_code < 500 or response.status_code == 501, (path, raw, response.content[:300])
            if response.status_code >= 400:
                refused(response, response.status_code)
            elif response.streaming:
                response.close()
