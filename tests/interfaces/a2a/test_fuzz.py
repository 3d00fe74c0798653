"""Fuzzing the A2A bindings: malformed and odd JSON-RPC envelopes, A2A messages and task
requests, on the JSON-RPC endpoint and the HTTP+JSON routes, with auth on.

Every answer is a clear 4xx or an A2A error in the binding's shape (a JSON-RPC error object, or
``google.rpc.Status``), never a 5xx and never ``-32603`` (an internal error dressed as a protocol
error). A request that is refused writes no run; one that starts a task leaves a whole run row,
and every run ends with gapless events and one final event.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from cosmos.models import Run
from interfaces.a2a.jsonrpc import METHODS
from interfaces.a2a.protocol import ROLE_AGENT, ROLE_USER, TASK_STATES
from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_run
from tests.support.fuzzing import (
    GARBAGE_BODIES,
    JSON_VALUES,
    SCALARS,
    assert_no_half_written_run,
    fuzz_settings,
    json_body,
    mostly,
    response_bytes,
    settle_runs,
    sse_frames,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]

BOUNDED_EXAMPLES = 60
INTERNAL_ERROR = -32603
FINISHED_TASK = "finished"  # replaced by the id of a finished task of the agent

# --- strategies: A2A requests, mostly plausible (so that the deeper code runs), often broken


texts = st.text(max_size=20)
ids = st.one_of(texts, st.uuids().map(str), st.just(FINISHED_TASK), JSON_VALUES)
parts = mostly(
    st.fixed_dictionaries({"text": st.text(min_size=1, max_size=20)}),
    st.one_of(
        st.fixed_dictionaries({"text": JSON_VALUES}),
        st.fixed_dictionaries(
            {"raw": st.one_of(st.binary(max_size=16).map(lambda b: b.hex()), texts)}, optional={"mediaType": texts}
        ),
        st.fixed_dictionaries({"url": texts}),
        st.fixed_dictionaries({"data": JSON_VALUES}),
        st.dictionaries(
            st.sampled_from(["text", "raw", "url", "data", "metadata", "filename"]), JSON_VALUES, max_size=3
        ),
        JSON_VALUES,
    ),
)
messages = mostly(
    st.fixed_dictionaries(
        {
            "messageId": mostly(st.uuids().map(str)),
            "role": mostly(st.just(ROLE_USER), st.sampled_from([ROLE_AGENT, 1, "1", "user", None])),
            "parts": mostly(st.lists(parts, min_size=1, max_size=3)),
        },
        optional={
            "contextId": mostly(st.sampled_from(["ctx-1", "ctx-2"]), JSON_VALUES | texts),
            "taskId": ids,
            "metadata": JSON_VALUES,
            "referenceTaskIds": JSON_VALUES,
            "extensions": JSON_VALUES,
        },
    )
)
configurations = st.fixed_dictionaries(
    {},
    optional={
        "acceptedOutputModes": st.one_of(
            st.lists(st.sampled_from(["text/plain", "image/png", "*/*"]) | texts), JSON_VALUES
        ),
        "historyLength": st.one_of(st.integers(), texts, SCALARS),
        "returnImmediately": st.one_of(st.booleans(), SCALARS),
        "taskPushNotificationConfig": JSON_VALUES,
    },
)
send_params = mostly(
    st.fixed_dictionaries({"message": messages}, optional={"configuration": configurations, "metadata": JSON_VALUES})
)
task_params = mostly(st.fixed_dictionaries({"id": ids}, optional={"historyLength": st.one_of(st.integers(), SCALARS)}))
list_params = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "contextId": st.one_of(texts, JSON_VALUES),
            "status": st.one_of(st.sampled_from(TASK_STATES), texts, SCALARS),
            "pageSize": st.one_of(st.integers(), SCALARS),
            "pageToken": st.one_of(texts, SCALARS),
            "historyLength": st.one_of(st.integers(), SCALARS),
            "statusTimestampAfter": st.one_of(st.just("2020-01-01T00:00:00Z"), texts, SCALARS),
            "includeArtifacts": st.one_of(st.booleans(), SCALARS),
        },
    )
)
params_for = {
    "SendMessage": send_params,
    "SendStreamingMessage": send_params,
    "GetTask": task_params,
    "CancelTask": task_params,
    "SubscribeToTask": task_params,
    "ListTasks": list_params,
}


# The methods that run code first (Hypothesis favours early choices), then the "not supported" ones.
METHOD_ORDER = ["SendMessage", "ListTasks", "SendStreamingMessage", "GetTask", "CancelTask", "SubscribeToTask"]
METHOD_ORDER += sorted(set(METHODS) - set(METHOD_ORDER))


@st.composite
def envelopes(draw) -> dict[str, Any]:
    """A well-formed request, then one time in three one member dropped or replaced."""
    method = draw(mostly(st.sampled_from(METHOD_ORDER), texts))
    envelope: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": draw(st.integers() | texts),
        "method": method,
        "params": draw(params_for.get(method, JSON_VALUES)),
    }
    if draw(st.integers(0, 2)) == 2:  # not 0: Hypothesis favours the simplest draw
        member = draw(st.sampled_from(sorted(envelope)))
        if draw(st.booleans()):
            del envelope[member]
        else:
            envelope[member] = draw(JSON_VALUES)
    return envelope


jsonrpc_bodies = mostly(
    envelopes().map(json_body), st.one_of(envelopes().map(lambda e: json_body([e])), GARBAGE_BODIES)
)
versions = st.sampled_from(["1.0", "1.0", "1.0", "1.0", "", "0.3", "2.0", "x"])

NAN_MESSAGE = (
    b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"messageId": "m", '
    b'"role": "ROLE_USER", "parts": [{"text": "hi"}], "metadata": {"x": NaN}}}}'
)

# --- checks


def a2a_setup() -> tuple[Client, str, str]:
    """A client with an admin key, an agent, and the id of one of its finished tasks."""
    _, key = APIKey.generate("a2a-fuzz", ["admin"])
    agent = make_agent(parameters={"reply": "ok: {input}"})
    finished = make_run(
        target=agent.id,
        status="succeeded",
        output="done",
        finished_at=timezone.now(),
        events=["RUN_STARTED", "RUN_FINISHED"],
    )
    client = Client(headers={"Authorization": f"Bearer {key}"})
    return client, agent.id, str(finished.id)


def check_rpc_object(obj: Any, sent_id: Any) -> None:
    assert isinstance(obj, dict) and obj.get("jsonrpc") == "2.0", obj
    assert ("result" in obj) != ("error" in obj), obj
    if "error" in obj:
        error = obj["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["message"], obj
        assert error["code"] != INTERNAL_ERROR, obj
    if obj.get("id") is not None:
        assert obj["id"] == sent_id, (obj["id"], sent_id)


def check_status_body(data: Any, status: int) -> None:
    error = data["error"]
    assert error["code"] == status and isinstance(error["status"], str) and error["message"], data
    assert isinstance(error["details"], list) and error["status"] != "INTERNAL", data


def sent_id_of(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data.get("id") if isinstance(data, dict) else None


def test_jsonrpc_answers_every_request_in_its_protocol(settings_options):
    settings_options(enable_auth=True, api_key="a2a-fuzz-settings-key-0123456789")
    client, agent_id, finished = a2a_setup()
    path = f"/a2a/agents/{agent_id}"
    outcomes: Counter[str] = Counter()

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(body=jsonrpc_bodies, version=versions)
    @example(body=b"x" * 1_100_000, version="1.0")  # over ASTEROS_MAX_BODY_BYTES
    @example(body=NAN_MESSAGE, version="1.0")  # was an internal error: NaN reached the database
    @example(body=NAN_MESSAGE.replace(b"NaN", b'"\\u0000"'), version="1.0")  # PostgreSQL: a NUL
    def check(body: bytes, version: str):
        body = body.replace(FINISHED_TASK.encode(), finished.encode())
        before = Run.objects.count()
        response = client.post(path, body, content_type="application/json", headers={"A2A-Version": version})
        raw = response_bytes(response)
        assert response.status_code < 500, raw[:500]
        if response.status_code == 413:  # the binding's shape, with the request's id when readable
            error = response.json()["error"]
            assert error["data"][0]["reason"] == "PAYLOAD_TOO_LARGE", error
            assert Run.objects.count() == before
            return
        assert response.status_code in (200, 400, 401, 403, 404, 429), (response.status_code, raw[:300])
        sent_id = sent_id_of(body)
        if response["Content-Type"].startswith("text/event-stream"):
            frames = sse_frames(raw)
            assert frames, raw
            for _, frame in frames:
                check_rpc_object(frame, sent_id)
            outcomes["stream"] += 1
        else:
            answer = response.json()
            check_rpc_object(answer, sent_id)
            if "error" in answer:  # a refused request starts nothing
                assert Run.objects.count() == before, answer
            outcomes[f"error {answer['error']['code']}" if "error" in answer else "result"] += 1
        assert_no_half_written_run()

    check()
    assert outcomes["result"] and sum(n for outcome, n in outcomes.items() if outcome.startswith("error")), outcomes
    settle_runs()


rest_calls = st.one_of(
    st.tuples(
        st.just("post"),
        st.sampled_from(["message:send", "message:stream"]),
        st.one_of(send_params.map(json_body), GARBAGE_BODIES),
    ),
    st.tuples(st.just("get"), st.just("tasks"), list_params.filter(lambda p: isinstance(p, dict))),
    st.tuples(
        st.sampled_from(["get", "post"]),
        ids.filter(lambda i: isinstance(i, str)).map(lambda i: f"tasks/{i or 'x'}"),
        st.none(),
    ),
    st.tuples(
        st.just("post"),
        ids.filter(lambda i: isinstance(i, str)).map(lambda i: f"tasks/{i or 'x'}:cancel"),
        st.one_of(JSON_VALUES.map(json_body), GARBAGE_BODIES),
    ),
    st.tuples(
        st.sampled_from(["get", "post"]),
        ids.filter(lambda i: isinstance(i, str)).map(lambda i: f"tasks/{i or 'x'}:subscribe"),
        st.none(),
    ),
    st.tuples(
        st.sampled_from(["get", "put", "delete"]),
        st.sampled_from(["tasks/x/pushNotificationConfigs", "extendedAgentCard", "message:send"]),
        st.none(),
    ),
)


def test_the_http_json_binding_answers_every_request_in_its_protocol(settings_options):
    settings_options(enable_auth=True, api_key="a2a-fuzz-settings-key-0123456789")
    client, agent_id, finished = a2a_setup()
    base = f"/a2a/agents/{agent_id}"
    statuses: Counter[int] = Counter()

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(call=rest_calls, version=versions)
    def check(call: tuple[str, str, Any], version: str):
        method, route, payload = call
        route = route.replace(FINISHED_TASK, finished)
        path = f"{base}/{route}".replace("?", "%3F").replace("#", "%23")
        headers = {"A2A-Version": version}
        before = Run.objects.count()
        if method == "get":
            query = {k: str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
            response = getattr(client, method)(path, query, headers=headers)
        else:
            body = payload.replace(FINISHED_TASK.encode(), finished.encode()) if payload else b""
            response = getattr(client, method)(path, body, content_type="application/json", headers=headers)
        raw = response_bytes(response)
        statuses[response.status_code] += 1
        assert response.status_code < 500, raw[:500]
        if 400 <= response.status_code < 500 and not response["Content-Type"].startswith("application/a2a+json"):
            # Refused at the edge before any A2A view: a path no route matches (404), a NUL in the
            # URL (400); in the API's one error shape.
            assert set(response.json()["error"]) == {"code", "message", "details"}, raw[:300]
            assert Run.objects.count() == before
            return
        if response["Content-Type"].startswith("text/event-stream"):
            for name, frame in sse_frames(raw):
                if name == "error":
                    check_status_body(frame, frame["error"]["code"])
                else:
                    assert isinstance(frame, dict) and len(frame) == 1, frame  # one StreamResponse member
        elif response.status_code >= 400:
            check_status_body(response.json(), response.status_code)
            assert Run.objects.count() == before
        else:
            assert isinstance(response.json(), dict)
        assert_no_half_written_run()

    check()
    assert statuses[200] and sum(n for status, n in statuses.items() if status >= 400), statuses
    settle_runs()


def test_a_valid_message_still_works_after_the_fuzzing_strategies_are_built(settings_options):
    """The strategies reach the happy path too: a plain message starts and finishes a task."""
    settings_options(enable_auth=True, api_key="a2a-fuzz-settings-key-0123456789")
    client, agent_id, _ = a2a_setup()
    message = {"messageId": str(uuid.uuid4()), "role": ROLE_USER, "parts": [{"text": "hello"}]}
    envelope = {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": {"message": message}}
    response = client.post(
        f"/a2a/agents/{agent_id}", envelope, content_type="application/json", headers={"A2A-Version": "1.0"}
    )
    task = response.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    settle_runs()
