"""Bad input at the OpenAI-compatible door: a 4xx in OpenAI's error shape, never a 500."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Door

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

CHAT_BODIES = [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "chat-agent", "messages": "hello"}, "messages"),
    ({"model": "chat-agent", "messages": []}, "messages"),
    ({"model": "chat-agent", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "chat-agent", "messages": ["x"]}, "messages[0]"),
    ({"model": "chat-agent", "messages": [{"role": "system", "content": "only rules"}]}, "messages"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    (
        {"model": "chat-agent", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        "messages[0].content[0]",
    ),
    ({"model": "chat-agent", "messages": [{"role": "tool", "tool_call_id": "c1", "content": "x"}]}, "messages[0]"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]}, "tools[0]"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}, "tool_choice"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "user": 7}, "user"),
    ({"model": "chat-agent", "messages": [{"role": "user", "content": "x"}], "stream_options": 1}, "stream_options"),
]


def post(door: Door, path: str, content: bytes | str, key: str = "run", **headers: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {door.keys[key]}", "Content-Type": "application/json", **headers}
    return httpx.post(f"{door.base}{path}", content=content, headers=headers, timeout=30)


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


@pytest.mark.parametrize(("body", "param"), CHAT_BODIES)
def test_a_bad_chat_body_is_400_naming_the_field(openai_door: Door, body, param):
    import json

    error = assert_openai_error(post(openai_door, "/chat/completions", json.dumps(body)), 400)
    assert error["type"] == "invalid_request_error"
    assert (error["param"] or "").startswith(param), error


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'{"model": "chat-agent", "messages": [{"role": "user", "content": "a\\u0000b"}], "input": "a\\u0000b"}',
        b'{"model": "chat-agent", "input": "\\ud800", "messages": []}',
        b"\xff\xfe",
        b"[" * 5000,
    ],
)
def test_what_is_not_a_json_object_is_400(openai_door: Door, path, content):
    assert_openai_error(post(openai_door, path, content), 400)


def test_text_plain_is_415(openai_door: Door):
    response = post(openai_door, "/chat/completions", "{}", **{"Content-Type": "text/plain"})
    assert_openai_error(response, 415)


def test_bad_response_bodies_are_400(openai_door: Door):
    import json

    for body in (
        {"model": "chat-agent"},
        {"model": "chat-agent", "input": ""},
        {"model": "chat-agent", "input": []},
        {"model": "chat-agent", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
        {"model": "chat-agent", "input": "x", "instructions": 3},
        {"model": "chat-agent", "input": "x", "background": "soon"},
        {"model": "chat-agent", "input": "x", "metadata": []},
        {"model": "chat-agent", "input": "x", "previous_response_id": 5},
    ):
        assert_openai_error(post(openai_door, "/responses", json.dumps(body)), 400)


def test_methods_and_paths_that_are_not_served(openai_door: Door):
    headers = {"Authorization": f"Bearer {openai_door.keys['run']}"}
    assert_openai_error(httpx.get(f"{openai_door.base}/chat/completions", headers=headers), 405)
    assert_openai_error(httpx.post(f"{openai_door.base}/embeddings", headers=headers, json={}), 404)
    assert_openai_error(httpx.get(f"{openai_door.base}/responses/not-a-response", headers=headers), 404)
    response = httpx.get(f"{openai_door.base}/responses/resp_x?stream=maybe", headers=headers)
    assert_openai_error(response, 404)
    error = assert_openai_error(httpx.get(f"{openai_door.base}/models/nope", headers=headers), 404)
    assert error["code"] == "model_not_found"


def test_a_bad_starting_after_is_400(openai_door: Door):
    started = post(openai_door, "/responses", '{"model": "chat-agent", "input": "x", "background": true}')
    assert started.status_code == 200, started.text
    headers = {"Authorization": f"Bearer {openai_door.keys['run']}"}
    url = f"{openai_door.base}/responses/{started.json()['id']}"
    assert_openai_error(httpx.get(f"{url}?stream=true&starting_after=-3", headers=headers), 400)
    assert_openai_error(httpx.get(f"{url}?stream=maybe", headers=headers), 400)


def test_a_body_over_the_limit_is_413_in_the_doors_shape(openai_door: Door):
    response = post(openai_door, "/chat/completions", b'{"model": "' + b"x" * (12 * 1024 * 1024) + b'"}')
    assert_openai_error(response, 413)
