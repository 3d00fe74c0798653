"""Fuzzing the websocket consumers with Channels' ``WebsocketCommunicator``: text and binary
frames, garbage, JSON of the wrong shape, RunAgentInputs odd and broken, frames over the limit.

Every frame gets a clear answer in the socket's protocol: an ``error`` frame (the socket stays
open), an AG-UI ``RUN_ERROR`` or rejection, or a run's stream to its one final event; a frame
over ``ASTEROS_MAX_BODY_BYTES`` gets ``payload_too_large`` and the close code 1009. No consumer
crashes (the communicator would raise its exception) and no socket closes with 1011. Runs left
behind are whole and end.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from cosmos.services.errors import Conflict
from cosmos.services.runs import cancel_run, start_run
from interfaces.keys.models import APIKey
from interfaces.ws.auth import WebsocketAuthMiddleware
from interfaces.ws.routing import websocket_urlpatterns
from tests.factories import make_agent
from tests.interfaces.agui.test_fuzz import run_inputs
from tests.support.fuzzing import GARBAGE_BODIES, JSON_VALUES, fuzz_settings, settle_runs

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]

APP = WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))
BOUNDED_EXAMPLES = 30
TIMEOUT = 15
LIMIT = 1_048_576  # ASTEROS_MAX_BODY_BYTES's default, which the tests run with
AGUI_END = ("RUN_FINISHED", "RUN_ERROR")


@st.composite
def frames(draw, shaped: st.SearchStrategy) -> tuple[str, Any]:
    """("text", str) or ("bytes", bytes): the socket's own messages, garbage, wrong shapes."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return "text", json.dumps(draw(shaped))
    if choice == 1:
        return "text", json.dumps(draw(JSON_VALUES))
    if choice == 2:
        return "bytes", draw(GARBAGE_BODIES)
    if choice == 3:
        return "text", draw(GARBAGE_BODIES).decode("utf-8", "replace")
    return "bytes", json.dumps(draw(shaped)).encode()


agui_messages = st.one_of(
    run_inputs,
    st.fixed_dictionaries({"type": st.just("run"), "input": run_inputs}),
    st.fixed_dictionaries({"type": st.sampled_from(["cancel", "ping", "run"])}, optional={"input": JSON_VALUES}),
)
run_stream_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["cancel", "ping", "nope"])}, optional={"runId": JSON_VALUES}
)
dashboard_messages = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["start", "cancel", "retry", "snapshot", "ping", "explode"]), JSON_VALUES)},
    optional={
        "kind": st.one_of(st.sampled_from(["agent", "star", "workflow"]), JSON_VALUES),
        "target": JSON_VALUES,
        "input": JSON_VALUES,
        "run": JSON_VALUES,
        "session": JSON_VALUES,
        "ref": st.integers(),
    },
)
OVERSIZED = ("text", "x" * (LIMIT + 1))
NAN_INPUT = (
    '{"threadId": "t", "runId": "r", "messages": [{"id": "m1", "role": "user", "content": "hi"}], "state": {"x": NaN}}'
)


async def send(comm: WebsocketCommunicator, frame: tuple[str, Any]) -> None:
    kind, payload = frame
    # send_input, not send_to: an empty frame is a frame too.
    await comm.send_input({"type": "websocket.receive", kind: payload})


async def answer(comm: WebsocketCommunicator, done) -> list[dict]:
    """The frames that answer one message, up to an error frame, the one ``done`` accepts, or a
    close. Every socket answers bad input with the same error frame; ``payload_too_large`` is
    followed by the close.

    ``receive_output`` re-raises a consumer's crash, which fails the test.
    """
    seen: list[dict] = []
    while True:
        output = await comm.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            assert output.get("code") in (1000, 1009), output
            seen.append({"type": "closed", "code": output.get("code")})
            return seen
        assert output["type"] == "websocket.send", output
        frame = json.loads(output["text"])
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        seen.append(frame)
        if frame["type"] == "error":
            check_error_frame(frame)
            if frame["code"] != "payload_too_large":
                return seen
        elif done(frame):
            return seen


def check_error_frame(frame: dict) -> None:
    assert frame["code"] and frame["message"], frame


def agui_done(frame: dict) -> bool:
    kind = frame["type"]
    if kind == "CUSTOM" and frame.get("name") == "asteros.rejected":
        return True
    if kind in AGUI_END:
        assert frame.get("message", "x") and frame.get("code", "x"), frame
        return True
    return False


def run_stream_done(frame: dict) -> bool:
    return frame["type"] in ("pong", "cancel_requested", "end")


def dashboard_done(frame: dict) -> bool:
    return frame["type"] in ("started", "cancelled", "retried", "pong") or "ref" in frame


def auth_headers(settings_options) -> list[tuple[bytes, bytes]]:
    settings_options(enable_auth=True, api_key="ws-fuzz-settings-key-0123456789")
    _, key = APIKey.generate("ws-fuzz", ["admin"])
    return [(b"authorization", f"Bearer {key}".encode())]


def test_the_agui_socket_answers_every_frame(settings_options):
    headers = auth_headers(settings_options)
    agent = make_agent(tools=["calculator"], parameters={"reply": "ok: {input}"})
    path = f"/ws/agui/agents/{agent.id}/"
    outcomes: Counter[str] = Counter()

    async def session(sequence: list[tuple[str, Any]]) -> None:
        comm = WebsocketCommunicator(APP, path, headers=headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        for frame in sequence:
            await send(comm, frame)
            answered = await answer(comm, agui_done)
            if answered[-1]["type"] == "closed":
                assert frame == OVERSIZED and answered[-2]["code"] == "payload_too_large", answered
                return
            if answered[0]["type"] == "RUN_STARTED":  # a run: its stream, one final event last
                types = [f["type"] for f in answered]
                assert sum(t in AGUI_END for t in types) == 1, types
            outcomes["stream" if answered[0]["type"] == "RUN_STARTED" else answered[0]["type"]] += 1
        await comm.disconnect()

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(sequence=st.lists(frames(agui_messages), min_size=1, max_size=3))
    @example(sequence=[OVERSIZED])
    @example(sequence=[("text", NAN_INPUT)])
    @example(sequence=[("bytes", b"[" * 5000 + b"]" * 5000), ("text", "{}"), ("bytes", b"\xff")])
    def check(sequence):
        async_to_sync(session)(sequence)

    check()
    assert outcomes["stream"] and outcomes["error"] and outcomes["RUN_ERROR"], outcomes
    settle_runs()


def test_the_run_stream_socket_answers_every_frame(settings_options):
    headers = auth_headers(settings_options)
    agent = make_agent(parameters={"ttft_ms": 60_000})  # running all along, until a cancel frame

    async def session(run_id: str, sequence: list[tuple[str, Any]]) -> None:
        comm = WebsocketCommunicator(APP, f"/ws/runs/{run_id}/?after=0", headers=headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        for frame in sequence:
            await send(comm, frame)
            answered = [f for f in await answer(comm, run_stream_done) if f["type"] != "event"]
            if answered[-1]["type"] == "closed":
                return
            if answered[-1]["type"] in ("cancel_requested", "end"):
                break  # the run is over: its stream ends and the socket closes
        await comm.disconnect()

    @fuzz_settings(BOUNDED_EXAMPLES // 2)
    @given(sequence=st.lists(frames(run_stream_messages), min_size=1, max_size=3))
    @example(sequence=[OVERSIZED])
    @example(sequence=[("text", "null"), ("bytes", b""), ("text", '{"type": "ping"}'), ("text", '{"type": "cancel"}')])
    def check(sequence):
        run, _ = start_run("agent", agent.id, "wait for me", origin="cli")
        try:
            async_to_sync(session)(str(run.id), sequence)
        finally:
            with contextlib.suppress(Conflict):  # already over: a cancel frame got there first
                cancel_run(run.id)

    check()
    settle_runs()


def test_the_dashboard_socket_answers_every_frame(django_user_model):
    staff = django_user_model.objects.create_user(username="fuzz-boss", password="pw-12345678", is_staff=True)
    client = Client()
    client.force_login(staff)
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    make_agent(id="dash-agent", parameters={"reply": "ok"})

    async def session(sequence: list[tuple[str, Any]]) -> None:
        comm = WebsocketCommunicator(APP, "/ws/dashboard/", headers=headers)
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "snapshot"
        for frame in sequence:
            await send(comm, frame)
            answered = await answer(comm, dashboard_done)
            if answered[-1]["type"] == "closed":
                return
        await comm.disconnect()

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(sequence=st.lists(frames(dashboard_messages), min_size=1, max_size=3))
    @example(sequence=[OVERSIZED])
    @example(
        sequence=[("text", json.dumps({"action": "start", "kind": "agent", "target": "dash-agent", "input": "hi"}))]
    )
    @example(sequence=[("text", '{"action": "start", "kind": ["agent"]}')])  # was a crash: unhashable kind
    def check(sequence):
        async_to_sync(session)(sequence)

    check()
    settle_runs()
