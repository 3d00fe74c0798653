"""Starting runs over HTTP (202 + links, idempotency, ?wait, SSE), events, cancel, 501s."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from cosmos import kinds
from cosmos.models import Run, RunStatus
from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_run, make_star, make_workflow, workflow_definition
from tests.support.runs import run_links, wait_for_run

from .conftest import assert_error, bearer


def parse_sse(raw: bytes) -> list[tuple[int, dict]]:
    """(seq, event) of each frame; asserts LF-only framing and one ``data:`` line per event."""
    assert b"\r" not in raw
    text = raw.decode()
    assert text.endswith("\n\n")
    frames = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            continue  # a heartbeat comment
        assert [line.split(":", 1)[0] for line in lines] == ["id", "data"], lines
        frames.append((int(lines[0][4:]), json.loads(lines[1][6:])))
    return frames


@pytest.mark.django_db
def test_a_run_request_answers_202_with_the_run_and_its_links(api_client):
    agent = make_agent()
    response = api_client.post(f"/api/agents/{agent.id}/run", {"message": "hi", "metadata": {"k": 1}}, format="json")
    assert response.status_code == 202
    run = response.json()
    assert run["kind"] == "agent" and run["target"] == agent.id and run["status"] == "queued"
    assert run["input"] == {"message": "hi"} and run["metadata"] == {"k": 1}
    base = f"http://testserver/api/runs/{run['id']}"
    assert run["links"] == run_links(run["id"])
    assert response["Location"] == base and response["X-Run-ID"] == run["id"]


@pytest.mark.django_db
def test_public_url_shapes_the_links(api_client, settings_options):
    settings_options(public_url="https://asteros.example.com")
    agent = make_agent()
    links = api_client.post(f"/api/agents/{agent.id}/run", {"input": "hi"}, format="json").json()["links"]
    assert links["self"].startswith("https://asteros.example.com/api/runs/")
    assert links["websocket"].startswith("wss://asteros.example.com/ws/runs/")


@pytest.mark.django_db
def test_the_same_idempotency_key_from_the_same_caller_returns_the_same_run(api_client, keys, auth_on):
    agent = make_agent()
    url = f"/api/agents/{agent.id}/run"
    first = api_client.post(url, {"input": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="abc", **bearer(keys.run))
    again = api_client.post(url, {"input": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="abc", **bearer(keys.run))
    other_caller = api_client.post(
        url, {"input": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="abc", **bearer(keys.admin)
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other_caller.json()["id"]
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    prefix = APIKey.objects.get(name="runner").prefix
    assert Run.objects.get(id=first.json()["id"]).caller == f"key:{prefix}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "query", "code"),
    [
        ({}, "", "invalid"),
        ({"input": "a", "message": "b"}, "", "invalid"),
        ({"input": ""}, "", "invalid"),
        ({"input": "hi", "session_id": ""}, "", "invalid"),
        ({"input": "hi", "metadata": [1]}, "", "invalid"),
        ({"input": "hi"}, "wait=0", "invalid"),
        ({"input": "hi"}, "wait=301", "invalid"),
        ({"input": "hi"}, "wait=soon", "invalid"),
    ],
)
def test_bad_run_requests_are_400(api_client, body, query, code):
    agent = make_agent()
    assert_error(api_client.post(f"/api/agents/{agent.id}/run?{query}", body, format="json"), 400, code)


@pytest.mark.django_db
def test_malformed_json_is_a_400_that_says_so(api_client):
    agent = make_agent()
    response = api_client.post(f"/api/agents/{agent.id}/run", "{nope", content_type="application/json")
    error = assert_error(response, 400, "malformed_json")
    assert "not valid JSON" in error["message"]


@pytest.mark.django_db
def test_a_disabled_agent_is_not_runnable(api_client):
    agent = make_agent(enabled=False)
    assert_error(api_client.post(f"/api/agents/{agent.id}/run", {"input": "hi"}, format="json"), 422, "agent_disabled")


@pytest.mark.django_db
def test_star_and_workflow_runs_answer_501_until_their_engine_registers(api_client, monkeypatch):
    agent = make_agent()
    star = make_star(leader=agent)
    workflow = make_workflow(definition=workflow_definition(agent.id))
    monkeypatch.setattr(kinds, "_kinds", {k: v for k, v in kinds._kinds.items() if k == "agent"})
    error = assert_error(api_client.post(f"/api/stars/{star.id}/run", {"input": "go"}, format="json"), 501)
    assert error["code"] == "not_implemented" and "star" in error["message"]
    assert error["details"]["kind"] == "star"
    assert_error(api_client.post(f"/api/workflows/{workflow.id}/execute", {"input": "go"}, format="json"), 501)
    # bad input is still a 400, an unknown star still a 404
    assert_error(api_client.post(f"/api/stars/{star.id}/run", {}, format="json"), 400)
    assert_error(api_client.post("/api/stars/nope/run", {"input": "go"}, format="json"), 404)
    # once the engine registers the kind, the route lights up (checked per request)
    monkeypatch.setattr(kinds, "_kinds", {**kinds._kinds, "workflow": kinds.RunKind("workflow", None, lambda _t: None)})
    response = api_client.post(f"/api/workflows/{workflow.id}/execute", {"input": "go"}, format="json")
    assert response.status_code == 202 and response.json()["kind"] == "workflow"


@pytest.mark.django_db
def test_events_as_json_pages_after_n(api_client):
    run = make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "STEP_STARTED", "STEP_FINISHED", "RUN_FINISHED"])
    page = api_client.get(f"/api/runs/{run.id}/events?limit=2").json()
    assert [e["seq"] for e in page["results"]] == [1, 2] and page["last_seq"] == 2
    assert page["results"][0] == {"seq": 1, "type": "RUN_STARTED", "event": {"type": "RUN_STARTED"}}
    assert page["next"].endswith(f"/api/runs/{run.id}/events?after=2&limit=2")
    rest = api_client.get(page["next"]).json()
    assert [e["seq"] for e in rest["results"]] == [3, 4] and rest["next"]
    done = api_client.get(rest["next"]).json()
    assert done["results"] == [] and done["next"] is None and done["last_seq"] == 4


@pytest.mark.django_db
def test_a_running_run_always_has_a_next_page(api_client):
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])
    page = api_client.get(f"/api/runs/{run.id}/events").json()
    assert page["status"] == "running" and page["next"]


@pytest.mark.django_db(transaction=True)  # the stream reads the database from other threads
def test_events_as_sse_resume_after_last_event_id(api_client):
    run = make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "STEP_STARTED", "STEP_FINISHED", "RUN_FINISHED"])
    response = api_client.get(f"/api/runs/{run.id}/events", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="2")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    assert not response.has_header("Content-Encoding")
    frames = parse_sse(b"".join(_drain(response)))
    assert [seq for seq, _ in frames] == [3, 4] and frames[-1][1]["type"] == "RUN_FINISHED"
    # ?format=sse (the "stream" link) is the same stream; a bad Last-Event-ID is a 400
    again = api_client.get(f"/api/runs/{run.id}/events?format=sse&after=3")
    assert [seq for seq, _ in parse_sse(b"".join(_drain(again)))] == [4]
    bad = api_client.get(f"/api/runs/{run.id}/events", HTTP_ACCEPT="text/event-stream", HTTP_LAST_EVENT_ID="x")
    assert_error(bad, 400)


def _drain(response) -> list[bytes]:
    import warnings

    with warnings.catch_warnings():  # the sync test client consumes the async stream
        warnings.simplefilter("ignore")
        return list(response)


@pytest.mark.django_db
def test_cancel_a_queued_run_and_refuse_a_finished_one(api_client):
    queued = make_run()
    response = api_client.post(f"/api/runs/{queued.id}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    assert_error(api_client.post(f"/api/runs/{queued.id}/cancel"), 409, "not_cancelable")


@pytest.mark.django_db
def test_runs_filter_by_status_kind_target_session_and_parent_with_cursor_pages(api_client):
    agent = make_agent()
    parent = make_run(target=agent.id, status=RunStatus.RUNNING)
    child = make_run(target=agent.id, parent=parent, status=RunStatus.SUCCEEDED)
    other = make_run(status=RunStatus.FAILED)

    def ids(query: str) -> list[str]:
        return [r["id"] for r in api_client.get(f"/api/runs?{query}").json()["results"]]

    assert ids("status=failed") == [str(other.id)]
    assert set(ids(f"target={agent.id}")) == {str(parent.id), str(child.id)}
    assert ids(f"parent={parent.id}") == [str(child.id)]
    assert ids("kind=agent&status=running") == [str(parent.id)]
    assert ids("status=running&status=failed") == [str(other.id), str(parent.id)]
    assert ids(f"session=none-{uuid.uuid4().hex[:6]}") == []
    first = api_client.get("/api/runs?limit=2").json()
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    second = api_client.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [str(parent.id)]


@pytest.mark.django_db
def test_a_key_limited_to_some_resources_sees_only_them(api_client, auth_on):
    mine, theirs = make_agent(), make_agent()
    my_run, _their_run = make_run(target=mine.id), make_run(target=theirs.id)
    _key, raw = APIKey.generate("limited", ["run"], resources=[f"agents:{mine.id}"])
    listed = api_client.get("/api/agents", **bearer(raw)).json()["results"]
    assert [a["id"] for a in listed] == [mine.id]
    assert_error(api_client.get(f"/api/agents/{theirs.id}", **bearer(raw)), 404)
    assert_error(api_client.post(f"/api/agents/{theirs.id}/run", {"input": "x"}, format="json", **bearer(raw)), 404)
    assert (
        api_client.post(f"/api/agents/{mine.id}/run", {"input": "x"}, format="json", **bearer(raw)).status_code == 202
    )
    runs = {r["target"] for r in api_client.get("/api/runs", **bearer(raw)).json()["results"]}
    assert runs == {mine.id} and str(my_run.id)
    assert_error(api_client.get("/api/stars", **bearer(raw)), 403, "permission_denied")


# --- with a worker: ?wait and the SSE answer


@pytest.mark.django_db(transaction=True)
def test_wait_blocks_until_the_run_is_done(api_client, embedded_worker):
    agent = make_agent(parameters={"reply": "done: {input}"})
    response = api_client.post(f"/api/agents/{agent.id}/run?wait=30", {"input": "hi"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded" and response.json()["output"] == "done: hi"


@pytest.mark.django_db(transaction=True)
def test_wait_answers_202_when_the_time_is_up(api_client, embedded_worker):
    agent = make_agent(parameters={"ttft_ms": 3000})
    response = api_client.post(f"/api/agents/{agent.id}/run?wait=0.3", {"input": "hi"}, format="json")
    assert response.status_code == 202 and response.json()["status"] in ("queued", "running")
    wait_for_run(response.json()["id"])


@pytest.mark.django_db(transaction=True)
async def test_stream_true_answers_with_the_sse_stream_of_the_run(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply_tokens": 5})
    client = AsyncClient()
    response = await client.post(
        f"/api/agents/{agent.id}/run", {"input": "hi", "stream": True}, content_type="application/json"
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/event-stream")
    chunks = [chunk async for chunk in response.streaming_content]
    frames = parse_sse(b"".join(chunks))
    assert [seq for seq, _ in frames] == list(range(1, len(frames) + 1))
    assert frames[0][1]["type"] == "RUN_STARTED" and frames[-1][1]["type"] == "RUN_FINISHED"
    assert len(chunks) >= len(frames)  # one chunk per event: nothing is buffered into one body
    run = await sync_to_async(Run.objects.get)(id=response["X-Run-ID"])
    assert run.status == RunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
async def test_accept_event_stream_answers_with_the_sse_stream(embedded_worker):
    agent = await sync_to_async(make_agent)()
    client = AsyncClient()
    response = await client.post(
        f"/api/agents/{agent.id}/run",
        {"input": "hi"},
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )
    frames = parse_sse(b"".join([chunk async for chunk in response.streaming_content]))
    assert frames[-1][1]["type"] == "RUN_FINISHED"
