"""One refusal, every door: the edge pipeline classifies it once and each door renders it.

Each row of ``CASES`` arranges one refusal (an unknown target, no key, a key without the scope,
a used-up quota, a body that is not JSON, a body that is not valid JSON, an unexpected exception
in the code that starts the run) and says what each door answers on its wire, as (status, code):

- ``api`` (REST, through DRF), ``agui`` and ``agent_protocol``: the HTTP status and the one error
  shape's ``code`` (the Agent Protocol adds its ``detail`` beside it);
- ``a2a`` (HTTP+JSON, a ``google.rpc.Status``) and ``jsonrpc``: the HTTP status and the
  ``ErrorInfo`` reason (JSON-RPC errors travel in a 200 unless they are about who is calling or
  where: 401, 403, 404, 413, 415, 429);
- ``ws`` (the AG-UI websocket): the close code of a refused handshake, or ``RUN_ERROR`` /
  ``error`` for a refusal on the open socket, and the frame's ``code``;
- ``openai`` (``/v1/chat/completions``): the HTTP status and OpenAI's error shape's ``code``.

The REST and AG-UI columns are the classification itself (``interfaces.edge.errors.classify``);
the others are its translation. Every door runs every case (``DOORS`` by ``CASES``): one test
body, no copy per door.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import IntegrityError, OperationalError
from django.http import Http404
from django.test import AsyncClient
from rest_framework import exceptions

from cosmos.services import runs
from cosmos.services.errors import Conflict, NotFound
from interfaces.a2a.errors import JSONParseError
from interfaces.edge.auth import AccessDenied, principal_for_key
from interfaces.edge.errors import AUTHENTICATE_HEADER as BEARER
from interfaces.edge.errors import MethodNotAllowed, classify
from interfaces.keys.models import APIKey
from interfaces.keys.quotas import QuotaExceeded
from interfaces.ws.auth import WebsocketAuthMiddleware
from interfaces.ws.routing import websocket_urlpatterns
from tests.factories import make_agent

SETTINGS_KEY = "pipeline-settings-key-0123456789"
SECRET = "s3cret-connection-string"  # what an unexpected exception says: no door may show it
TIMEOUT = 15
JSON = "application/json"


@dataclass(frozen=True)
class World:
    """What a case arranged: the agent to call, the key to send (None: none), the body."""

    agent: str
    key: str | None
    body: str | None = None  # None: a valid request body for the door
    content_type: str = JSON


Answer = tuple[Any, Any]


@dataclass(frozen=True)
class Case:
    name: str
    arrange: Callable[[Any], World]  # gets pytest's monkeypatch
    api: Answer
    a2a: Answer
    jsonrpc: Answer
    agui: Answer
    ws: Answer | None  # None: the websocket has no such request (a frame has no media type)
    openai: Answer  # the OpenAI-compatible door: the status and OpenAI's error ``code``
    agent_protocol: Answer


def _key(*scopes: str, **limits: Any) -> str:
    return APIKey.generate("pipeline", list(scopes), **limits)[1]


def unknown_target(monkeypatch) -> World:
    return World("no-such-agent", _key("run"))


def no_key(monkeypatch) -> World:
    return World(make_agent().id, None)


def key_without_the_scope(monkeypatch) -> World:
    return World(make_agent().id, _key("read"))


def quota_used_up(monkeypatch) -> World:
    raw = _key("run", requests_per_minute=1)
    principal_for_key(raw)  # the minute's one request
    return World(make_agent().id, raw)


def not_a_json_body(monkeypatch) -> World:
    return World(make_agent().id, _key("run"), body="hello", content_type="text/plain")


def malformed_json(monkeypatch) -> World:
    return World(make_agent().id, _key("run"), body='{"input": ')


def unexpected_exception(monkeypatch) -> World:
    def broken_check(caller: str) -> None:
        raise RuntimeError(f"lost the database at {SECRET}")

    # A check every run start calls (where the key quotas plug in): a bug deep in a handler.
    monkeypatch.setattr(runs, "_admission_checks", [broken_check])
    return World(make_agent().id, _key("run"))


CASES = [
    Case(
        "unknown target",
        unknown_target,
        api=(404, "not_found"),
        a2a=(404, "AGENT_NOT_FOUND"),
        jsonrpc=(404, "AGENT_NOT_FOUND"),
        agui=(404, "not_found"),
        ws=("RUN_ERROR", "not_found"),
        openai=(404, "model_not_found"),
        agent_protocol=(404, "not_found"),
    ),
    Case(
        "no key",
        no_key,
        api=(401, "not_authenticated"),
        a2a=(401, "UNAUTHENTICATED"),
        jsonrpc=(401, "UNAUTHENTICATED"),
        agui=(401, "not_authenticated"),
        ws=(4401, "not_authenticated"),
        openai=(401, "not_authenticated"),
        agent_protocol=(401, "not_authenticated"),
    ),
    Case(
        "a key without the scope",
        key_without_the_scope,
        api=(403, "permission_denied"),
        a2a=(403, "PERMISSION_DENIED"),
        jsonrpc=(403, "PERMISSION_DENIED"),
        agui=(403, "permission_denied"),
        ws=(4403, "permission_denied"),
        openai=(403, "permission_denied"),
        agent_protocol=(403, "permission_denied"),
    ),
    Case(
        "a used-up quota",
        quota_used_up,
        api=(429, "quota_exceeded"),
        a2a=(429, "QUOTA_EXCEEDED"),
        jsonrpc=(429, "QUOTA_EXCEEDED"),
        agui=(429, "quota_exceeded"),
        ws=(4429, "quota_exceeded"),
        openai=(429, "quota_exceeded"),
        agent_protocol=(429, "quota_exceeded"),
    ),
    Case(
        "a body that is not JSON",
        not_a_json_body,
        api=(415, "unsupported_media_type"),
        a2a=(415, "UNSUPPORTED_MEDIA_TYPE"),
        jsonrpc=(415, "UNSUPPORTED_MEDIA_TYPE"),
        agui=(415, "unsupported_media_type"),
        ws=None,
        openai=(415, "unsupported_media_type"),
        agent_protocol=(415, "unsupported_media_type"),
    ),
    Case(
        "malformed JSON",
        malformed_json,
        api=(400, "malformed_json"),  # DRF's parser names it more precisely, as it always has
        a2a=(400, "JSON_PARSE"),
        jsonrpc=(200, "JSON_PARSE"),
        agui=(400, "malformed_request"),
        ws=("error", "malformed_request"),
        openai=(400, "malformed_json"),
        agent_protocol=(400, "malformed_request"),
    ),
    Case(
        "an unexpected exception",
        unexpected_exception,
        api=(500, "internal_error"),
        a2a=(500, "INTERNAL_ERROR"),
        jsonrpc=(200, "INTERNAL_ERROR"),
        agui=(500, "internal_error"),
        ws=("RUN_ERROR", "internal_error"),
        openai=(500, "internal_error"),
        agent_protocol=(500, "internal_error"),
    ),
]


# --- the doors: each sends the case's request and reads (status, code) off its wire


def _client() -> AsyncClient:
    return AsyncClient(raise_request_exception=False)  # a 500 is an answer here, as on the wire


def _headers(world: World) -> dict[str, str]:
    headers = {"A2A-Version": "1.0"}
    if world.key:
        headers["Authorization"] = f"Bearer {world.key}"
    return headers


def _shown(content: bytes) -> bytes:
    assert SECRET.encode() not in content, content  # an unexpected error shows nothing of itself
    return content


async def _post(path: str, world: World, body: dict[str, Any]):
    data = world.body if world.body is not None else json.dumps(body)
    return await _client().post(path, data, content_type=world.content_type, headers=_headers(world))


def _error_shape(response) -> Answer:
    error = json.loads(_shown(response.content))["error"]
    assert set(error) == {"code", "message", "details"}, error
    return response.status_code, error["code"]


def _reason(details: list[dict[str, Any]]) -> str:
    return next(d["reason"] for d in details if d["@type"].endswith("ErrorInfo"))


def _send_params() -> dict[str, Any]:
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": "hi"}]}
    return {"message": message, "configuration": {"returnImmediately": True}}


def _agui_input() -> dict[str, Any]:
    return {
        "threadId": f"thread-{uuid.uuid4().hex[:8]}",
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "u1", "role": "user", "content": "hi"}],
    }


async def rest_door(world: World) -> Answer:
    return _error_shape(await _post(f"/api/agents/{world.agent}/run", world, {"input": "hi"}))


async def a2a_door(world: World) -> Answer:
    response = await _post(f"/a2a/agents/{world.agent}/message:send", world, _send_params())
    error = json.loads(_shown(response.content))["error"]
    assert response["Content-Type"] == "application/a2a+json" and error["code"] == response.status_code, error
    return response.status_code, _reason(error["details"])


async def jsonrpc_door(world: World) -> Answer:
    call = {"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": _send_params()}
    response = await _post(f"/a2a/agents/{world.agent}", world, call)
    body = json.loads(_shown(response.content))
    assert body["jsonrpc"] == "2.0" and isinstance(body["error"]["code"], int), body
    return response.status_code, _reason(body["error"]["data"])


async def agui_door(world: World) -> Answer:
    return _error_shape(await _post(f"/agui/agents/{world.agent}", world, _agui_input()))


async def openai_door(world: World) -> Answer:
    body = {"model": f"agent:{world.agent}", "messages": [{"role": "user", "content": "hi"}]}
    response = await _post("/v1/chat/completions", world, body)
    error = json.loads(_shown(response.content))["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return response.status_code, error["code"]


async def agent_protocol_door(world: World) -> Answer:
    body = {"assistant_id": f"agent:{world.agent}", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    response = await _post("/agent-protocol/runs", world, body)
    answer = _error_shape(response)
    assert response.json()["detail"] == response.json()["error"]["message"]
    return answer


async def ws_door(world: World) -> Answer:
    headers = [(b"authorization", f"Bearer {world.key}".encode())] if world.key else []
    app = WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))
    socket = WebsocketCommunicator(app, f"/ws/agui/agents/{world.agent}/", headers=headers)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected, "a refused handshake is accepted first, so that its close code arrives"
    try:
        if socket.output_queue.empty():  # not refused at the handshake: send the run
            text = world.body if world.body is not None else json.dumps(_agui_input())
            await socket.send_to(text_data=text)
        output = await socket.receive_output(timeout=TIMEOUT)
        frame = json.loads(_shown(output["text"].encode()))
        if frame["type"] == "error" and world.body is None:  # a refused handshake: error, then close
            closed = await socket.receive_output(timeout=TIMEOUT)
            assert closed["type"] == "websocket.close", closed
            return closed["code"], frame["code"]
        return frame["type"], frame["code"]
    finally:
        await socket.disconnect()


DOORS: dict[str, Callable[[World], Awaitable[Answer]]] = {
    "api": rest_door,
    "a2a": a2a_door,
    "jsonrpc": jsonrpc_door,
    "agui": agui_door,
    "ws": ws_door,
    "openai": openai_door,
    "agent_protocol": agent_protocol_door,
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_one_refusal_is_classified_once_and_rendered_by_every_door(
    case: Case, door: str, settings_options, monkeypatch
):
    expected = getattr(case, door)
    if expected is None:
        pytest.skip(f"the {door} door has no such request")
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    world = await sync_to_async(case.arrange)(monkeypatch)
    assert await DOORS[door](world) == expected


# --- the classifier itself: every kind of exception a door meets, once


CLASSIFIED: list[tuple[BaseException, tuple[int, str], dict[str, str]]] = [
    (AccessDenied(401, "not_authenticated", "Who?"), (401, "not_authenticated"), {"WWW-Authenticate": BEARER}),
    (AccessDenied(403, "permission_denied", "No."), (403, "permission_denied"), {}),
    (QuotaExceeded("requests_per_minute", 1, 42, "Slow down."), (429, "quota_exceeded"), {"Retry-After": "42"}),
    (NotFound("No agent."), (404, "not_found"), {}),
    (Conflict("Busy.", code="agent_busy"), (409, "agent_busy"), {}),
    (IntegrityError("UNIQUE constraint failed"), (409, "conflict"), {}),
    (OperationalError("connection refused"), (503, "unavailable"), {"Retry-After": "5"}),
    (Http404("gone"), (404, "not_found"), {}),
    (exceptions.ParseError("JSON parse error - Expecting value"), (400, "malformed_json"), {}),
    (MethodNotAllowed(("GET", "POST")), (405, "method_not_allowed"), {"Allow": "GET, POST"}),
    (JSONParseError("bad"), (400, "json_parse"), {}),
    (RuntimeError(SECRET), (500, "internal_error"), {}),
]


@pytest.mark.parametrize(("exc", "expected", "headers"), CLASSIFIED, ids=lambda v: type(v).__name__)
def test_classify_knows_every_exception_a_door_meets(exc, expected, headers):
    refusal = classify(exc)
    assert (refusal.status, refusal.code) == expected
    assert dict(refusal.headers) == headers
    assert SECRET not in refusal.message
    assert refusal.unexpected == (expected[0] == 500)
