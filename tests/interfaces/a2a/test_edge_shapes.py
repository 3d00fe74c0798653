"""What the shared edge refuses on an A2A path is answered in the binding's own shape, raw HTTP
against a live server: a JSON-RPC error carrying the request's id on the JSON-RPC endpoint, a
``google.rpc.Status`` on the HTTP+JSON binding. Covers 401 (no key), 413 (a body over
ASTEROS_MAX_BODY_BYTES, refused before any view) and 415 (a body that is not JSON by its
Content-Type)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import AUTH_KEY

VERSION = {"A2A-Version": "1.0"}
JSON = {"Content-Type": "application/json"}
TOO_LARGE = 1_048_576 + 10  # ASTEROS_MAX_BODY_BYTES's default, passed


def rpc(request_id, *, pad: int = 0) -> bytes:
    padding = "x" * pad
    return (
        b'{"jsonrpc": "2.0", "id": ' + request_id + b', "method": "GetTask", '
        b'"params": {"id": "nope", "pad": "' + padding.encode() + b'"}}'
    )


def assert_rpc_error(response: httpx.Response, status: int, request_id, reason: str) -> None:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == request_id, body
    assert isinstance(body["error"]["code"], int) and body["error"]["message"], body
    assert body["error"]["data"][0]["reason"] == reason, body


def assert_status_error(response: httpx.Response, status: int, grpc: str, reason: str) -> None:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == grpc, error
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert error["details"][0]["reason"] == reason, error


@pytest.mark.parametrize(("raw_id", "request_id"), [(b"7", 7), (b'"req-1"', "req-1"), (b"2.5", 2.5)])
def test_jsonrpc_401_carries_the_request_id(a2a_auth_server, raw_id, request_id):
    response = httpx.post(
        f"{a2a_auth_server.url}/a2a/agents/echo", content=rpc(raw_id), headers=VERSION | JSON, timeout=30
    )
    assert_rpc_error(response, 401, request_id, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_rest_401_is_a_google_rpc_status(a2a_auth_server):
    response = httpx.post(
        f"{a2a_auth_server.url}/a2a/agents/echo/message:send", content=b"{}", headers=VERSION | JSON, timeout=30
    )
    assert_status_error(response, 401, "UNAUTHENTICATED", "UNAUTHENTICATED")


@pytest.mark.parametrize(("raw_id", "request_id"), [(b"41", 41), (b'"big-one"', "big-one")])
def test_jsonrpc_413_carries_the_request_id(a2a_server, raw_id, request_id):
    body = rpc(raw_id, pad=TOO_LARGE)
    response = httpx.post(f"{a2a_server.url}/a2a/agents/echo", content=body, headers=VERSION | JSON, timeout=30)
    assert_rpc_error(response, 413, request_id, "PAYLOAD_TOO_LARGE")


def test_jsonrpc_413_without_a_readable_id_has_a_null_id(a2a_server):
    body = b'{"params": "' + b"x" * TOO_LARGE + b'", "id": 3}'  # the id past what is scanned
    response = httpx.post(f"{a2a_server.url}/a2a/agents/echo", content=body, headers=VERSION | JSON, timeout=30)
    assert_rpc_error(response, 413, None, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("path", ["message:send", "message:stream", "tasks/some-task:cancel"])
def test_rest_413_is_a_google_rpc_status(a2a_server, path):
    body = b'{"message": "' + b"x" * TOO_LARGE + b'"}'
    response = httpx.post(f"{a2a_server.url}/a2a/agents/echo/{path}", content=body, headers=VERSION | JSON, timeout=30)
    assert_status_error(response, 413, "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_jsonrpc_without_a_json_content_type_is_a_415_with_the_id(a2a_server, content_type):
    headers = VERSION | ({"Content-Type": content_type} if content_type else {})
    response = httpx.post(f"{a2a_server.url}/a2a/agents/echo", content=rpc(b"9"), headers=headers, timeout=30)
    assert_rpc_error(response, 415, 9, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_rest_without_a_json_content_type_is_a_415(a2a_server, content_type):
    headers = VERSION | ({"Content-Type": content_type} if content_type else {})
    body = b'{"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}}'
    response = httpx.post(f"{a2a_server.url}/a2a/agents/echo/message:send", content=body, headers=headers, timeout=30)
    assert_status_error(response, 415, "INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/a2a+json", "application/json; charset=utf-8"]
)
def test_json_content_types_are_accepted(a2a_auth_server, content_type):
    headers = VERSION | {"Content-Type": content_type, "Authorization": f"Bearer {AUTH_KEY}"}
    response = httpx.post(f"{a2a_auth_server.url}/a2a/agents/echo", content=rpc(b"5"), headers=headers, timeout=30)
    assert_rpc_error(response, 200, 5, "TASK_NOT_FOUND")
