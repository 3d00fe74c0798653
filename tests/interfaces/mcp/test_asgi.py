"""``/mcp`` in this process, through the real ASGI application (``asteros_site.asgi``): the gate
(who may do what, Origin, Host, body size), the switch, and where the door shows (banner,
``/health``, the route table). The live tests (``test_live_server``) run the clients."""

from __future__ import annotations

import json

import httpx
import pytest

from asteros_site.asgi import application
from asteros_site.banner import banner
from interfaces.keys.models import APIKey
from tests.factories import make_agent

SETTINGS_KEY = "mcp-asgi-settings-key-0123456789"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "helper", "arguments": {}}}

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def auth_on(settings_options):
    return settings_options(enable_auth=True, api_key=SETTINGS_KEY)


async def post(body: object, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
        return await client.post("/mcp", content=json.dumps(body), headers=HEADERS | headers)


def sse_or_json(response: httpx.Response) -> dict:
    """The JSON-RPC answer, whether it came as JSON or as the one event of an SSE stream."""
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])
    return response.json()


async def test_tools_list_names_the_agents(auth_on):
    await make_agent_async("helper", description="Helps.")
    response = await post(LIST, Authorization=f"Bearer {SETTINGS_KEY}")
    assert response.status_code == 200
    tools = sse_or_json(response)["result"]["tools"]
    assert [(tool["name"], tool["description"]) for tool in tools] == [("helper", "Helps.")]


async def test_the_gate_refuses_in_http_and_json_rpc_terms(auth_on):
    reader = await generate_key(["read"])
    revoked = await generate_key(["admin"], revoked=True)
    anonymous = await post(CALL)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["id"] == 2
    assert (await post(LIST, Authorization=f"Bearer {revoked}")).status_code == 401
    assert (await post(LIST, Authorization=f"Bearer {reader}")).status_code == 200
    refused = await post(CALL, Authorization=f"Bearer {reader}")
    assert refused.status_code == 403
    assert refused.json()["error"]["data"]["code"] == "permission_denied"
    # A notification or a batch needs no more than read; what it is, the SDK decides.
    batch = await post([LIST, LIST], Authorization=f"Bearer {reader}")
    assert 400 <= batch.status_code < 500


async def test_a_resource_limited_key_lists_only_its_tools(auth_on):
    await make_agent_async("helper")
    await make_agent_async("other")
    limited = await generate_key(["run"], resources=["agents:other"])
    response = await post({**LIST, "id": 3}, Authorization=f"Bearer {limited}")
    assert [tool["name"] for tool in sse_or_json(response)["result"]["tools"]] == ["other"]
    unknown = sse_or_json(await post(CALL, Authorization=f"Bearer {limited}"))
    assert unknown["error"]["code"] == -32602


async def test_anonymous_when_auth_is_off():
    await make_agent_async("helper")
    response = await post(LIST, **{"X-Request-ID": "mcp-request-1"})
    assert response.status_code == 200
    assert [tool["name"] for tool in sse_or_json(response)["result"]["tools"]] == ["helper"]
    assert response.headers["x-request-id"] == "mcp-request-1"  # and in the access log


async def test_origin_and_host_are_checked():
    evil = await post(LIST, Origin="http://evil.example")
    assert evil.status_code == 403
    assert evil.json()["error"]["data"]["code"] == "origin_not_allowed"
    loopback = await post(LIST, Origin="http://localhost:3000")  # auth off: loopback pages only
    assert loopback.status_code == 200
    assert loopback.headers["access-control-allow-origin"] == "http://localhost:3000"
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://rebound.example") as client:
        rebound = await client.post("/mcp", content=json.dumps(LIST), headers=HEADERS)
    assert rebound.status_code == 400
    assert rebound.json()["error"]["data"]["code"] == "disallowed_host"


async def test_a_body_over_the_cap_is_a_413(settings_options):
    settings_options(max_body_bytes=1000)
    response = await post({**LIST, "params": {"cursor": "x" * 2000}})
    assert response.status_code == 413
    assert response.json()["error"]["data"]["code"] == "payload_too_large"


async def test_switched_off_mcp_is_not_served(settings_options):
    settings_options(enable_mcp=False)
    response = await post(LIST)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_banner_and_health_say_whether_mcp_is_served(settings_options, client):
    assert "MCP:       http://127.0.0.1:8080/mcp" in banner("127.0.0.1", 8080)
    assert client.get("/health").json()["interfaces"]["mcp"] is True
    settings_options(enable_mcp=False)
    assert "MCP:       off (ASTEROS_ENABLE_MCP)" in banner("127.0.0.1", 8080)
    assert client.get("/health").json()["interfaces"]["mcp"] is False


async def make_agent_async(agent_id: str, **fields):
    from cosmos.db import db_call

    return await db_call(make_agent, agent_id, **fields)


async def generate_key(scopes: list[str], *, resources: list[str] | None = None, revoked: bool = False) -> str:
    from cosmos.db import db_call

    def create() -> str:
        key, raw = APIKey.generate("mcp test", scopes, resources)
        if revoked:
            APIKey.objects.filter(pk=key.pk).update(revoked=True)
        return raw

    return await db_call(create)
