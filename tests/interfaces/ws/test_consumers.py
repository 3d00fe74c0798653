"""The websocket consumers through the same stack the server uses (auth middleware + router),
driven by Channels' ``WebsocketCommunicator``; runs execute on the embedded worker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from cosmos.models import RunStatus
from cosmos.services.runs import start_run
from interfaces.keys.models import APIKey
from interfaces.ws.auth import WebsocketAuthMiddleware
from interfaces.ws.routing import websocket_urlpatterns
from tests.factories import make_agent
from tests.support.runs import events as stored_events
from tests.support.runs import wait_for_run

APP = WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))
SETTINGS_KEY = "ws-settings-key-0123456789abcdef"
TIMEOUT = 15


def communicator(path: str, *, headers: list | None = None, subprotocols: list | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(APP, path, headers=headers or [], subprotocols=subprotocols)


async def until(comm: WebsocketCommunicator, predicate, limit: int = 2000) -> list[dict]:
    """Frames up to and including the first one ``predicate`` accepts."""
    frames = []
    for _ in range(limit):
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"no matching frame in {limit}: {frames[-5:]}")


async def expect_refused(comm: WebsocketCommunicator, code: int, error: str) -> dict:
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected, "refusals accept first so that the close code reaches the client"
    frame = await comm.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == error, frame
    closed = await comm.receive_output(timeout=TIMEOUT)
    assert closed == {"type": "websocket.close", "code": code}, closed
    return frame


def session_cookie(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


# --- ws/runs/{id}/


@pytest.mark.django_db(transaction=True)
async def test_replay_and_live_across_a_reconnect_lose_nothing_and_repeat_nothing(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply_tokens": 40, "tokens_per_second": 80})
    run, _ = await sync_to_async(start_run)("agent", agent.id, "hi", origin="cli")

    first = communicator(f"/ws/runs/{run.id}/?after=0")
    assert (await first.connect(timeout=TIMEOUT))[0]
    seen = await until(first, lambda f: f["type"] == "event" and f["event"]["type"] == "TEXT_MESSAGE_CONTENT")
    await first.disconnect()
    last = seen[-1]["seq"]

    second = communicator(f"/ws/runs/{run.id}?after={last}")
    assert (await second.connect(timeout=TIMEOUT))[0]
    rest = await until(second, lambda f: f["type"] == "end")
    assert rest[-1] == {"type": "end", "runId": str(run.id), "status": "succeeded"}
    assert (await second.receive_output(timeout=TIMEOUT))["type"] == "websocket.close"

    frames = [f for f in seen + rest if f["type"] == "event"]
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert len(rest) > 2, "the second connection got live events, not only a replay"
    assert [f["event"] for f in frames] == await sync_to_async(stored_events)(run.id)
    assert frames[0]["event"]["type"] == "RUN_STARTED" and frames[-1]["event"]["type"] == "RUN_FINISHED"


@pytest.mark.django_db(transaction=True)
async def test_a_finished_run_replays_and_closes(embedded_worker):
    agent = await sync_to_async(make_agent)()
    run, _ = await sync_to_async(start_run)("agent", agent.id, "hi", origin="cli")
    await sync_to_async(wait_for_run)(run.id)
    comm = communicator(f"/ws/runs/{run.id}/?after=2")
    assert (await comm.connect(timeout=TIMEOUT))[0]
    frames = await until(comm, lambda f: f["type"] == "end")
    assert frames[0]["seq"] == 3 and frames[-1]["status"] == "succeeded"


@pytest.mark.django_db(transaction=True)
async def test_cancel_over_the_socket(embedded_worker):
    agent = await sync_to_async(make_agent)(parameters={"reply_tokens": 400, "tokens_per_second": 20})
    run, _ = await sync_to_async(start_run)("agent", agent.id, "hi", origin="cli")
    comm = communicator(f"/ws/runs/{run.id}/")
    assert (await comm.connect(timeout=TIMEOUT))[0]
    await until(comm, lambda f: f.get("event", {}).get("type") == "TEXT_MESSAGE_CONTENT")
    await comm.send_json_to({"type": "cancel"})
    frames = await until(comm, lambda f: f["type"] == "end")
    assert any(f["type"] == "cancel_requested" for f in frames)
    finished = [f["event"] for f in frames if f["type"] == "event" and f["event"]["type"] == "RUN_FINISHED"]
    assert finished and finished[0]["outcome"] == "cancelled"
    assert frames[-1]["status"] == RunStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
async def test_unknown_runs_and_bad_after_are_refused():
    await expect_refused(communicator(f"/ws/runs/{uuid.uuid4()}/"), 4404, "not_found")
    run = await sync_to_async(lambda: start_run("agent", make_agent().id, "x", dispatch=False)[0])()
    await expect_refused(communicator(f"/ws/runs/{run.id}/?after=-1"), 4400, "invalid_after")


# --- auth


@pytest.fixture
def auth_on(settings_options):
    return settings_options(enable_auth=True, api_key=SETTINGS_KEY)


@pytest.mark.django_db(transaction=True)
async def test_auth_denied_closes_with_a_clear_code(auth_on):
    run = await sync_to_async(lambda: start_run("agent", make_agent().id, "x", dispatch=False)[0])()
    _, reader = await sync_to_async(APIKey.generate)("reader", ["read"])
    _, limited = await sync_to_async(APIKey.generate)("limited", ["admin"], resources=["agents:someone-else"])

    await expect_refused(communicator(f"/ws/runs/{run.id}/"), 4401, "not_authenticated")
    bad = [(b"authorization", b"Bearer not-a-key")]
    await expect_refused(communicator(f"/ws/runs/{run.id}/", headers=bad), 4401, "authentication_failed")
    read_key = [(b"x-api-key", reader.encode())]
    await expect_refused(communicator(f"/ws/agui/agents/{run.target}/", headers=read_key), 4403, "permission_denied")
    limited_key = [(b"authorization", f"Bearer {limited}".encode())]
    await expect_refused(communicator(f"/ws/runs/{run.id}/", headers=limited_key), 4403, "permission_denied")

    # A key in Sec-WebSocket-Protocol (browsers): accepted, and the answer never echoes the key.
    comm = communicator(f"/ws/runs/{run.id}/", subprotocols=["asteros", f"asteros.key.{reader}"])
    connected, subprotocol = await comm.connect(timeout=TIMEOUT)
    assert connected and subprotocol == "asteros"
    await comm.send_json_to({"type": "cancel"})  # a read key may watch but not cancel
    frame = await until(comm, lambda f: f["type"] == "error")
    assert frame[-1]["code"] == "permission_denied"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_dashboard_socket_is_for_staff(django_user_model):
    await expect_refused(communicator("/ws/dashboard/"), 4401, "not_authenticated")
    user = await sync_to_async(django_user_model.objects.create_user)(username="someone", password="pw-12345678")
    await expect_refused(
        communicator("/ws/dashboard/", headers=await sync_to_async(session_cookie)(user)), 4403, "permission_denied"
    )
    staff = await sync_to_async(django_user_model.objects.create_user)(
        username="boss", password="pw-12345678", is_staff=True
    )
    # Another site's page cannot use the staff session: with auth off it may not connect at all.
    foreign = [
        *await sync_to_async(session_cookie)(staff),
        (b"origin", b"https://evil.example"),
        (b"host", b"testserver"),
    ]
    await expect_refused(communicator("/ws/dashboard/", headers=foreign), 4403, "origin_not_allowed")


# --- ws/agui/{kind}/{id}/


def agui_input(text: str, **extra: Any) -> dict:
    return {
        "threadId": extra.pop("threadId", f"thread-{uuid.uuid4().hex[:8]}"),
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "m1", "role": "user", "content": text}],
        **extra,
    }


@pytest.mark.django_db(transaction=True)
async def test_agui_over_a_socket_runs_and_cancels(embedded_worker):
    quick = await sync_to_async(make_agent)(parameters={"reply": "pong: {input}"})
    comm = communicator(f"/ws/agui/agents/{quick.id}/")
    assert (await comm.connect(timeout=TIMEOUT))[0]

    await comm.send_json_to({"threadId": "t"})  # no runId, no messages: nothing starts
    refused = await comm.receive_json_from(timeout=TIMEOUT)
    assert refused["type"] == "RUN_ERROR" and refused["code"] == "invalid_input"

    request = agui_input("ping", state={"mode": "socket"})
    await comm.send_json_to(request)
    events = await until(comm, lambda e: e["type"] in ("RUN_FINISHED", "RUN_ERROR"))
    assert events[0] == {
        "type": "RUN_STARTED",
        "threadId": request["threadId"],
        "runId": request["runId"],
        "protocolVersion": "1.0",
        "metadata": {"asteros": {"runId": request["runId"]}},
    }
    assert events[1] == {"type": "STATE_SNAPSHOT", "snapshot": {"mode": "socket"}}
    text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == "pong: ping"
    assert events[-1]["type"] == "RUN_FINISHED" and events[-1]["outcome"] == {"type": "success"}

    await comm.disconnect()

    slow = await sync_to_async(make_agent)(parameters={"reply_tokens": 500, "tokens_per_second": 20})
    comm = communicator(f"/ws/agui/agent/{slow.id}")  # the singular kind works too
    assert (await comm.connect(timeout=TIMEOUT))[0]
    await comm.send_json_to({"type": "run", "input": agui_input("slow")})
    events = await until(comm, lambda e: e["type"] == "TEXT_MESSAGE_CONTENT")
    await comm.send_json_to(agui_input("again"))  # one run at a time per socket
    await comm.send_json_to({"type": "cancel"})
    events += await until(comm, lambda e: e["type"] in ("RUN_FINISHED", "RUN_ERROR"))
    assert any(e.get("name") == "asteros.rejected" for e in events)
    assert events[-1]["type"] == "RUN_FINISHED" and events[-1]["outcome"] == {"type": "cancelled"}
    assert "result" not in events[-1]
    opened = {e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_START"}
    closed = {e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_END"}
    assert opened == closed, "every message is closed before the end"
    await comm.disconnect()


# --- ws/dashboard/


@pytest.mark.django_db(transaction=True)
async def test_dashboard_snapshot_start_lifecycle_and_summary(embedded_worker, django_user_model):
    staff = await sync_to_async(django_user_model.objects.create_user)(
        username="boss", password="pw-12345678", is_staff=True
    )
    agent = await sync_to_async(make_agent)(parameters={"reply_tokens": 20, "tokens_per_second": 100})
    comm = communicator("/ws/dashboard/", headers=await sync_to_async(session_cookie)(staff))
    assert (await comm.connect(timeout=TIMEOUT))[0]
    snapshot = await comm.receive_json_from(timeout=TIMEOUT)
    assert snapshot["type"] == "snapshot"
    assert {"runs", "targets", "summary"} <= snapshot.keys()
    card = next(c for c in snapshot["targets"] if c["id"] == agent.id)
    assert card["kind"] == "agent" and card["active"] == 0

    await comm.send_json_to({"action": "start", "kind": "agent", "target": agent.id, "input": "hello", "ref": 7})
    frames = await until(comm, lambda f: f["type"] == "started")
    started = frames[-1]
    assert started["ref"] == 7 and started["run"]["target"] == agent.id and started["run"]["input"] == "hello"
    run_id = started["run"]["id"]

    statuses: list[str] = []
    summaries: list[dict] = []

    def done(frame: dict) -> bool:
        if frame["type"] == "summary":
            summaries.append(frame["summary"])
        for row in frame.get("runs", ()):
            if row["id"] == run_id:
                statuses.append(row["status"])
        return "succeeded" in statuses and bool(summaries)

    await until(comm, done)
    assert statuses[-1] == "succeeded" and "running" in statuses
    assert {"activeRuns", "runsPerMinute", "tokensPerMinute", "errorsPerMinute", "latencyMs"} <= summaries[-1].keys()

    await comm.send_json_to({"action": "cancel", "run": run_id, "ref": "c"})
    refused = await until(comm, lambda f: f["type"] == "error")
    assert refused[-1]["code"] == "not_cancelable" and refused[-1]["ref"] == "c"
    await comm.send_json_to({"action": "start", "kind": "agent", "target": "no-such-agent"})
    refused = await until(comm, lambda f: f["type"] == "error")
    assert refused[-1]["code"] == "not_found"
    await comm.disconnect()
    await asyncio.sleep(0)
