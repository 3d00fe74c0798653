"""The catalogue of run kinds (``cosmos.kinds``): a fourth kind is one ``register_kind`` call,
and every door that serves the three built-in kinds serves it too (MCP included).

The fourth kind here ("probe", collection "probes") reuses the ``Workflow`` table as its
definitions so that the test needs no model of its own; it is registered for one test, then
removed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import AsyncClient, Client

from cosmos import kinds
from cosmos.kinds import ExecutionResult, register_kind, unregister_kind
from cosmos.models import Run
from cosmos.services.errors import NotFound
from cosmos.services.runs import start_run
from interfaces.console.services import targets as dashboard_targets
from interfaces.edge.auth import kind_resource
from interfaces.edge.targets import all_targets, get_target
from interfaces.keys.models import APIKey
from interfaces.ws.auth import WebsocketAuthMiddleware
from interfaces.ws.routing import websocket_urlpatterns
from tests.factories import make_agent, make_workflow, workflow_definition
from workflows.models import Workflow

WS_APP = WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))


async def execute_probe(context) -> ExecutionResult:
    return ExecutionResult(output=f"probed {context.run.target}")


def check_probe(target: str) -> None:
    if not Workflow.objects.filter(id=target).exists():
        raise NotFound(f"No probe {target!r}.")


@pytest.fixture
def probe_kind() -> Iterator[kinds.RunKind]:
    kind = register_kind("probe", execute_probe, check_probe, target_model=Workflow, description="probe (a test kind)")
    try:
        yield kind
    finally:
        unregister_kind("probe")


def test_the_three_kinds_are_in_the_catalogue_with_all_their_facts():
    facts = [(k.name, k.collection, k.label, k.target_model._meta.label) for k in kinds.all_kinds()]
    assert facts == [
        ("agent", "agents", "Agents", "cosmos.Agent"),
        ("star", "stars", "Stars", "stars.Star"),
        ("workflow", "workflows", "Workflows", "workflows.Workflow"),
    ]
    assert all(k.execute is not None and k.check_target is not None for k in kinds.all_kinds())
    assert [kind_resource(k) for k in ("agent", "star", "workflow", "nope")] == ["agents", "stars", "workflows", None]


def test_a_fourth_kind_is_found_by_name_collection_and_model(probe_kind):
    assert kinds.find_kind("probe") is probe_kind
    assert kinds.kind_for_collection("probes") is probe_kind
    assert "probe" in kinds.kind_names() and ("probe", "Probe") in kinds.kind_choices()
    assert kinds.get_kind("probe").execute is execute_probe
    assert kind_resource("probe") == "probes"
    assert (probe_kind.collection, probe_kind.label) == ("probes", "Probes")
    # the first kind registered for a model keeps it
    assert kinds.kind_for_model(Workflow).name == "workflow"


def test_a_kind_may_not_take_another_kinds_name_or_collection(probe_kind):
    with pytest.raises(ValueError, match="already taken"):
        register_kind("agents", execute_probe, check_probe)
    with pytest.raises(ValueError, match="already taken"):
        register_kind("other", execute_probe, check_probe, collection="probes")
    assert kinds.find_kind("agents") is None and kinds.find_kind("other") is None


def test_an_unregistered_kind_is_gone_from_the_catalogue(probe_kind):
    unregister_kind("probe")
    assert kinds.find_kind("probe") is None and kinds.kind_for_collection("probes") is None
    assert kind_resource("probe") is None


@pytest.mark.django_db(transaction=True)  # the async views read in their own threads
def test_a2a_dashboard_and_agui_describe_a_fourth_kind(probe_kind):
    workflow = make_workflow(definition=workflow_definition(make_agent().id))
    target = get_target("probes", workflow.id)
    assert target is not None and (target.kind, target.resource, target.path) == (
        "probe",
        "probes",
        f"/a2a/probes/{workflow.id}",
    )
    assert ("probes", "probe", workflow.id) in [(t.resource, t.kind, t.id) for t in all_targets()]
    card = Client().get(f"/a2a/probes/{workflow.id}/.well-known/agent-card.json")
    assert card.status_code == 200, card.content
    assert card.json()["skills"][0]["tags"] == ["probe"]
    assert ("probe", "Probes", workflow.id) in [(c["kind"], c["label"], c["id"]) for c in dashboard_targets()]

    described = Client().get(f"/agui/probes/{workflow.id}")
    assert described.status_code == 200, described.content
    body = described.json()
    assert (body["kind"], body["endpoint"], body["websocket"]) == (
        "probe",
        f"/agui/probes/{workflow.id}",
        f"/ws/agui/probes/{workflow.id}/",
    )
    listed = Client().get("/agui/").json()
    entries = listed if isinstance(listed, list) else next(v for v in listed.values() if isinstance(v, list))
    assert f"/agui/probes/{workflow.id}" in [e["endpoint"] for e in entries]

    unregister_kind("probe")
    gone = Client().get(f"/agui/probes/{workflow.id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert get_target("probes", workflow.id) is None


@pytest.mark.django_db
def test_a_key_limited_to_a_fourth_kinds_collection_sees_its_runs_only(probe_kind):
    workflow = make_workflow(definition=workflow_definition(make_agent().id))
    probe_run, _ = start_run("probe", workflow.id, "hi", origin="cli", dispatch=False)
    start_run("workflow", workflow.id, "hi", origin="cli", dispatch=False)
    key = APIKey.generate("probes-only", ["read"], [f"probes:{workflow.id}"])[1]
    response = Client().get("/api/runs", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [str(probe_run.id)]
    assert Client().get(f"/api/runs/{probe_run.id}", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_agui_over_http_and_websocket_runs_a_fourth_kind(probe_kind, embedded_worker):
    if settings.ASTEROS.distributed:
        pytest.skip("the worker subprocess does not have the kind this test registers")
    workflow = await sync_to_async(make_workflow)(
        definition=workflow_definition((await sync_to_async(make_agent)()).id)
    )
    body = {
        "threadId": "t-probe",
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "u1", "role": "user", "content": "hi"}],
    }
    response = await AsyncClient().post(
        f"/agui/probes/{workflow.id}", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert '"RUN_FINISHED"' in raw, raw
    run = await Run.objects.aget(id=body["runId"])
    assert (run.kind, run.target, run.output) == ("probe", workflow.id, f"probed {workflow.id}")

    for segment in ("probes", "probe"):
        comm = WebsocketCommunicator(WS_APP, f"/ws/agui/{segment}/{workflow.id}/")
        connected, _ = await comm.connect(timeout=15)
        assert connected
        assert await comm.receive_nothing(timeout=0.2), "a known kind's socket stays open, no refusal"
        await comm.disconnect()

    await sync_to_async(unregister_kind)("probe")
    comm = WebsocketCommunicator(WS_APP, f"/ws/agui/probes/{workflow.id}/")
    assert (await comm.connect(timeout=15))[0]
    refused = await comm.receive_json_from(timeout=15)
    assert refused["type"] == "error" and refused["code"] == "not_found", refused


def test_a_kind_whose_name_or_collection_cannot_be_a_url_segment_is_refused():
    with pytest.raises(ValueError, match="must match"):
        register_kind("probe", execute_probe, check_probe, collection="Probes/all")
    assert kinds.find_kind("probe") is None


@pytest.mark.django_db
def test_rest_runs_a_fourth_kind_at_its_collection(probe_kind, settings_options):
    workflow = make_workflow(definition=workflow_definition(make_agent().id))
    client = Client()
    started = client.post(f"/api/probes/{workflow.id}/run", {"input": "hi"}, content_type="application/json")
    assert started.status_code == 202, started.content
    run = Run.objects.get(id=started.json()["id"])
    assert (run.kind, run.target, run.origin) == ("probe", workflow.id, "api")
    assert started["Location"].endswith(f"/api/runs/{run.id}")

    missing = client.post("/api/probes/no-such-workflow/run", {"input": "hi"}, content_type="application/json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # Kinds with a REST resource keep their own routes only; paths naming no kind stay 404.
    for path in (f"/api/workflows/{workflow.id}/run", "/api/templates/x/run", "/api/nothing/x/run"):
        answer = client.post(path, {"input": "hi"}, content_type="application/json")
        assert answer.status_code == 404, (path, answer.status_code)

    settings_options(enable_auth=True, api_key="s" * 32)
    mine = APIKey.generate("probe-runner", ["run"], [f"probes:{workflow.id}"])[1]
    other = APIKey.generate("other-runner", ["run"], ["probes:another"])[1]
    reader = APIKey.generate("reader", ["read"])[1]
    url = f"/api/probes/{workflow.id}/run"
    assert client.post(url, {"input": "hi"}, content_type="application/json").status_code == 401
    assert (
        client.post(url, {"input": "hi"}, content_type="application/json", headers=_bearer(reader)).status_code == 403
    )
    assert client.post(url, {"input": "hi"}, content_type="application/json", headers=_bearer(other)).status_code == 404
    assert client.post(url, {"input": "hi"}, content_type="application/json", headers=_bearer(mine)).status_code == 202

    unregister_kind("probe")
    assert client.post(url, {"input": "hi"}, content_type="application/json", headers=_bearer(mine)).status_code == 404


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.django_db
def test_runs_of_a_fourth_kind_are_filtered_by_kind_in_the_api_and_the_admin(probe_kind, staff_client):
    workflow = make_workflow(definition=workflow_definition(make_agent().id))
    probe_run, _ = start_run("probe", workflow.id, "hi", origin="cli", dispatch=False)
    workflow_run, _ = start_run("workflow", workflow.id, "hi", origin="cli", dispatch=False)

    listed = Client().get("/api/runs", {"kind": "probe"})
    assert listed.status_code == 200, listed.content
    assert [r["id"] for r in listed.json()["results"]] == [str(probe_run.id)]
    unknown = Client().get("/api/runs", {"kind": "nope"})
    assert unknown.status_code == 400 and "probe" in json.dumps(unknown.json()["error"]), unknown.content

    page = staff_client.get("/admin/cosmos/run/")
    kind_filter = next(spec for spec in page.context["cl"].filter_specs if spec.title == "kind")
    offered = [choice["display"] for choice in kind_filter.choices(page.context["cl"])]
    assert offered[1:] == ["Agent", "Star", "Workflow", "Probe"]
    filtered = staff_client.get("/admin/cosmos/run/", {"kind__exact": "probe"})
    assert [run.id for run in filtered.context["cl"].result_list] == [probe_run.id]
    assert workflow_run.id not in [run.id for run in filtered.context["cl"].result_list]


@pytest.mark.django_db(transaction=True)
async def test_mcp_lists_and_calls_a_fourth_kind(probe_kind, embedded_worker):
    if settings.ASTEROS.distributed:
        pytest.skip("the worker subprocess does not have the kind this test registers")
    import httpx

    from asteros_site.asgi import application

    workflow = await sync_to_async(make_workflow)(
        definition=workflow_definition((await sync_to_async(make_agent)()).id)
    )
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async def rpc(method: str, params: dict) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080", timeout=30) as client:
            response = await client.post("/mcp", content=body, headers=headers)
        assert response.status_code == 200, response.text
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1]) if data else response.json()

    tools = (await rpc("tools/list", {}))["result"]["tools"]
    # The same row is a workflow and a probe (the probe borrows the workflows' table): the kind
    # registered later is the one whose tool name carries its kind.
    names = {tool["name"]: tool["_meta"]["dev.asteros/target"] for tool in tools}
    assert names[workflow.id] == {"kind": "workflow", "id": workflow.id}
    assert names[f"probe.{workflow.id}"] == {"kind": "probe", "id": workflow.id}
    called = await rpc("tools/call", {"name": f"probe.{workflow.id}", "arguments": {"message": "hi"}})
    assert called["result"]["content"][0]["text"] == f"probed {workflow.id}", called


@pytest.mark.django_db(transaction=True)
async def test_the_agent_protocol_serves_and_runs_a_fourth_kind(probe_kind, embedded_worker):
    if settings.ASTEROS.distributed:
        pytest.skip("the worker subprocess does not have the kind this test registers")
    workflow = await sync_to_async(make_workflow)(
        definition=workflow_definition((await sync_to_async(make_agent)()).id)
    )
    client = AsyncClient()
    found = await client.post(
        "/agent-protocol/assistants/search", {"graph_id": "probe"}, content_type="application/json"
    )
    assert [a["assistant_id"] for a in found.json()] == [f"probe:{workflow.id}"]
    body = {"assistant_id": f"probe:{workflow.id}", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    response = await client.post("/agent-protocol/runs/wait", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["messages"][-1]["content"] == f"probed {workflow.id}"
