"""Raw protocol checks against the live server: the version header, JSON-RPC errors, strict
ProtoJSON (``ParseDict`` on the SDK's generated types, unknown fields refused), SSE framing,
the HTTP+JSON error shape, trailing slashes and auth."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict
from google.rpc import error_details_pb2

from .conftest import AUTH_KEY

pytestmark = pytest.mark.slow

V1 = {"A2A-Version": "1.0"}


def rpc(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def send_params(text: str = "hi", **message: Any) -> dict[str, Any]:
    return {"message": {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}], **message}}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "result" not in body and body["jsonrpc"] == "2.0"
    return body["error"]


def error_info(details: list[dict[str, Any]]) -> dict[str, Any]:
    infos = [d for d in details if d.get("@type") == "type.googleapis.com/google.rpc.ErrorInfo"]
    assert len(infos) == 1, details
    info = dict(infos[0])
    info.pop("@type")
    ParseDict(info, error_details_pb2.ErrorInfo())  # strict: only ErrorInfo's fields
    return info


def no_legacy_fields(value: Any) -> None:
    """Nothing of 0.3 survives: no ``kind`` or ``final`` anywhere, no lower-case enums."""
    if isinstance(value, dict):
        assert "kind" not in value and "final" not in value, value
        for key, item in value.items():
            if key in ("state", "role"):
                assert item.startswith(("TASK_STATE_", "ROLE_")), item
            no_legacy_fields(item)
    elif isinstance(value, list):
        for item in value:
            no_legacy_fields(item)


def sse_frames(response: httpx.Response) -> list[dict[str, Any]]:
    """Every SSE frame's data, asserting one JSON object per ``data:`` line and one line per frame."""
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = []
    for block in response.text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        data = [line for line in lines if line.startswith("data: ")]
        assert len(data) == 1, block
        frames.append(json.loads(data[0][len("data: ") :]))
    return frames


ECHO = "/a2a/agents/echo"


# --- the version service parameter


@pytest.mark.parametrize(
    ("headers", "requested"),
    [({}, "0.3"), ({"A2A-Version": "0.3"}, "0.3"), ({"A2A-Version": "2.0"}, "2.0"), ({"A2A-Version": "x"}, "x")],
    ids=["missing", "legacy", "unsupported", "garbage"],
)
def test_jsonrpc_refuses_a_missing_or_unsupported_version(http, headers, requested):
    response = http.post(ECHO, json=rpc("GetTask", {"id": str(uuid.uuid4())}, "v"), headers=headers)
    assert response.status_code == 200
    error = error_of(response)
    assert error["code"] == -32009 and response.json()["id"] == "v"
    info = error_info(error["data"])
    assert info["reason"] == "VERSION_NOT_SUPPORTED" and info["domain"] == "a2a-protocol.org"
    assert info["metadata"]["requestedVersion"] == requested and info["metadata"]["supportedVersions"] == "1.0"


@pytest.mark.parametrize("headers", [{}, {"A2A-Version": "0.3"}], ids=["missing", "legacy"])
def test_rest_refuses_a_missing_or_unsupported_version(http, headers):
    response = http.get(f"{ECHO}/tasks", headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "FAILED_PRECONDITION"
    assert error_info(error["details"])["reason"] == "VERSION_NOT_SUPPORTED"


def test_the_version_may_be_a_patch_version_or_a_query_parameter(http):
    assert http.get(f"{ECHO}/tasks", headers={"A2A-Version": "1.0.3"}).status_code == 200
    assert http.get(f"{ECHO}/tasks", params={"A2A-Version": "1.0"}).status_code == 200


# --- JSON-RPC errors


def test_unknown_method(http):
    error = error_of(http.post(ECHO, json=rpc("tasks/get", {"id": "x"}), headers=V1))
    assert error["code"] == -32601 and error_info(error["data"])["reason"] == "METHOD_NOT_FOUND"


def test_malformed_json(http):
    response = http.post(
        ECHO, content=b'{"jsonrpc": "2.0", "id": 1, "method": ', headers=V1 | {"Content-Type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["id"] is None
    assert error_of(response)["code"] == -32700


@pytest.mark.parametrize(
    "body",
    [{"id": 1, "method": "GetTask"}, {"jsonrpc": "2.0", "method": "GetTask"}, [rpc("GetTask")], "text"],
    ids=["no-jsonrpc", "no-id", "batch", "not-an-object"],
)
def test_invalid_requests(http, body):
    assert error_of(http.post(ECHO, json=body, headers=V1))["code"] == -32600


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("SendMessage", {}, "message"),
        ("SendMessage", {"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}}, "message.messageId"),
        ("SendMessage", send_params(parts=[]), "message.parts"),
        ("SendMessage", send_params(role="ROLE_AGENT"), "message.role"),
        ("SendMessage", send_params(parts=[{"text": "a", "data": {}}]), "message.parts[0]"),
        ("GetTask", {}, "id"),
        ("GetTask", {"id": "x", "historyLength": -1}, "historyLength"),
        ("ListTasks", {"pageSize": 500}, "pageSize"),
        ("ListTasks", {"status": "TASK_STATE_RUNNING"}, "status"),
        ("CancelTask", "not an object", "params"),
    ],
)
def test_invalid_params(http, method, params, field):
    error = error_of(http.post(ECHO, json=rpc(method, params), headers=V1))
    assert error["code"] == -32602, error
    assert error_info(error["data"])["reason"] == "INVALID_PARAMS"
    violations = [d for d in error["data"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert violations and violations[0]["fieldViolations"][0]["field"] == field


def test_a2a_errors_carry_error_info(http):
    missing = str(uuid.uuid4())
    error = error_of(http.post(ECHO, json=rpc("GetTask", {"id": missing}), headers=V1))
    assert error["code"] == -32001
    info = error_info(error["data"])
    assert info["reason"] == "TASK_NOT_FOUND" and info["metadata"]["taskId"] == missing
    for method in ("CreateTaskPushNotificationConfig", "ListTaskPushNotificationConfigs"):
        params = {"taskId": missing, "url": "https://example.com/hook"}
        error = error_of(http.post(ECHO, json=rpc(method, params), headers=V1))
        assert error["code"] == -32001 and error_info(error["data"])["reason"] == "TASK_NOT_FOUND"
    push = send_params()
    push["configuration"] = {"taskPushNotificationConfig": {"url": "http://10.1.2.3/hook"}}
    error = error_of(http.post(ECHO, json=rpc("SendMessage", push), headers=V1))
    assert error["code"] == -32602 and "ASTEROS_OUTBOUND_ALLOWLIST" in error["message"]
    modes = send_params()
    modes["configuration"] = {"acceptedOutputModes": ["image/png"]}
    assert error_of(http.post(ECHO, json=rpc("SendMessage", modes), headers=V1))["code"] == -32005
    files = send_params()
    files["message"]["parts"] = [{"url": "https://example.com/a.pdf", "mediaType": "application/pdf"}]
    assert error_of(http.post(ECHO, json=rpc("SendMessage", files), headers=V1))["code"] == -32005


# --- strict ProtoJSON of what we answer


def test_results_parse_strictly_as_the_sdk_types(http):
    card = http.get(f"{ECHO}/.well-known/agent-card.json").json()
    ParseDict(card, pb.AgentCard())
    no_legacy_fields(card)

    sent = http.post(ECHO, json=rpc("SendMessage", send_params("strict")), headers=V1).json()["result"]
    ParseDict(sent, pb.SendMessageResponse())
    no_legacy_fields(sent)
    task_id = sent["task"]["id"]
    assert sent["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert sent["task"]["status"]["timestamp"].endswith("Z")

    got = http.post(ECHO, json=rpc("GetTask", {"id": task_id, "historyLength": 5}), headers=V1).json()["result"]
    ParseDict(got, pb.Task())
    listed = http.post(ECHO, json=rpc("ListTasks", {"includeArtifacts": True}), headers=V1).json()["result"]
    ParseDict(listed, pb.ListTasksResponse())
    assert set(listed) == {"tasks", "nextPageToken", "pageSize", "totalSize"}

    rest_task = http.get(f"{ECHO}/tasks/{task_id}", headers=V1)
    assert rest_task.headers["content-type"].startswith("application/a2a+json")
    ParseDict(rest_task.json(), pb.Task())
    ParseDict(http.get(f"{ECHO}/tasks", headers=V1).json(), pb.ListTasksResponse())


# --- SSE


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
def test_streams_are_sse_with_one_json_per_data_line(http, binding):
    if binding == "JSONRPC":
        response = http.post(ECHO, json=rpc("SendStreamingMessage", send_params("what is 6*7"), "s"), headers=V1)
        frames = sse_frames(response)
        assert all(f["jsonrpc"] == "2.0" and f["id"] == "s" for f in frames)
        results = [f["result"] for f in frames]
    else:
        response = http.post(f"{ECHO}/message:stream", json=send_params("what is 6*7"), headers=V1)
        results = sse_frames(response)
    assert response.status_code == 200
    for result in results:
        ParseDict(result, pb.StreamResponse())
        no_legacy_fields(result)
    assert next(iter(results[0])) == "task"
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    statuses = [r["statusUpdate"]["status"] for r in results if "statusUpdate" in r]
    tool_data = [p["data"] for s in statuses if "message" in s for p in s["message"]["parts"] if "data" in p]
    assert {"toolCall": {"id": "call_0_0", "name": "calculator", "arguments": {"expression": "6*7"}}} in tool_data
    assert any("toolResult" in d and d["toolResult"]["content"] == "42" for d in tool_data)
    updates = [r["artifactUpdate"] for r in results if "artifactUpdate" in r]
    text = "".join(p["text"] for u in updates for p in u["artifact"]["parts"])
    assert text == "The result is 42."


def test_subscribing_to_a_finished_task_is_an_error_not_a_stream(http):
    task_id = http.post(ECHO, json=rpc("SendMessage", send_params()), headers=V1).json()["result"]["task"]["id"]
    rest = http.post(f"{ECHO}/tasks/{task_id}:subscribe", headers=V1)
    assert rest.status_code == 400 and error_info(rest.json()["error"]["details"])["reason"] == "UNSUPPORTED_OPERATION"
    assert http.get(f"{ECHO}/tasks/{task_id}:subscribe", headers=V1).status_code == 400
    rpc_error = error_of(http.post(ECHO, json=rpc("SubscribeToTask", {"id": task_id}), headers=V1))
    assert rpc_error["code"] == -32004


# --- routes


def test_trailing_slashes_work_for_post(http):
    response = http.post(ECHO + "/", json=rpc("SendMessage", send_params("slash")), headers=V1)
    assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    response = http.post(f"{ECHO}/message:send/", json=send_params("slash"), headers=V1)
    assert response.status_code == 200 and response.json()["task"]["id"]


def test_rest_errors_are_google_rpc_status(http):
    missing = str(uuid.uuid4())
    response = http.get(f"{ECHO}/tasks/{missing}", headers=V1)
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert error_info(error["details"])["reason"] == "TASK_NOT_FOUND"
    bad = http.post(f"{ECHO}/message:send", content=b"{nope", headers=V1 | {"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    push = http.post(f"{ECHO}/tasks/{missing}/pushNotificationConfigs", json={"url": "https://x"}, headers=V1)
    assert push.status_code == 404
    assert error_info(push.json()["error"]["details"])["reason"] == "TASK_NOT_FOUND"
    assert http.get(f"{ECHO}/extendedAgentCard", headers=V1).status_code == 400
    assert http.delete(f"{ECHO}/message:send", headers=V1).status_code == 405


def test_unknown_and_disabled_agents_are_not_found(http):
    for path in ("/a2a/agents/nobody", "/a2a/agents/hidden", "/a2a/gadgets/echo"):
        assert http.get(f"{path}/.well-known/agent-card.json").status_code == 404
    response = http.post("/a2a/agents/hidden", json=rpc("GetTask", {"id": "x"}), headers=V1)
    assert response.status_code == 404 and error_of(response)["code"] == -32601


def test_directory_and_cards(http, a2a_server):
    directory = http.get("/a2a/").json()
    entries = {(e["kind"], e["id"]): e for e in directory["agents"]}
    assert ("agent", "echo") in entries and ("agent", "hidden") not in entries
    assert entries[("agent", "echo")]["agentCardUrl"] == f"{a2a_server.url}{ECHO}/.well-known/agent-card.json"
    cards = http.get("/a2a/cards").json()["agentCards"]
    assert len(cards) == len(entries)
    for card in cards:
        ParseDict(card, pb.AgentCard())
        assert all(i["url"].startswith(a2a_server.url) for i in card["supportedInterfaces"])
        assert "securitySchemes" not in card, "auth is off"
    card = http.get(f"{ECHO}/.well-known/agent-card.json")
    assert card.headers["Cache-Control"].startswith("public") and card.headers["ETag"]
    assert (
        http.get(f"{ECHO}/.well-known/agent-card.json", headers={"If-None-Match": card.headers["ETag"]}).status_code
        == 304
    )


# --- auth


def test_auth_applies_to_a2a_but_cards_stay_public(a2a_auth_server):
    with httpx.Client(base_url=a2a_auth_server.url, timeout=30) as http:
        card = http.get(f"{ECHO}/.well-known/agent-card.json")
        assert card.status_code == 200
        parsed = ParseDict(card.json(), pb.AgentCard())
        assert set(parsed.security_schemes) == {"bearer", "apiKey"}
        assert parsed.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
        assert parsed.security_schemes["apiKey"].api_key_security_scheme.name == "X-API-Key"
        assert len(parsed.security_requirements) == 2
        assert http.get("/a2a/").status_code == 200

        for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": "nope"}):
            response = http.post(ECHO, json=rpc("SendMessage", send_params()), headers=V1 | headers)
            assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            assert error_info(error_of(response)["data"])["reason"] == "UNAUTHENTICATED"
            rest = http.get(f"{ECHO}/tasks", headers=V1 | headers)
            assert rest.status_code == 401 and rest.json()["error"]["status"] == "UNAUTHENTICATED"
            stream = http.post(f"{ECHO}/message:stream", json=send_params(), headers=V1 | headers)
            assert stream.status_code == 401

        for headers in ({"Authorization": f"Bearer {AUTH_KEY}"}, {"X-API-Key": AUTH_KEY}):
            response = http.post(ECHO, json=rpc("SendMessage", send_params("authorized")), headers=V1 | headers)
            assert response.status_code == 200
            assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
