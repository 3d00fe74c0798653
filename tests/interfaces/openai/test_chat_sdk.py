"""The official ``openai`` Python SDK against a live server: models and Chat Completions."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from .conftest import Door

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_models_lists_agents_stars_and_workflows(openai_door: Door):
    ids = {model.id for model in openai_door.client().models.list()}
    assert {"agent:chat-agent", "star:chat-team", "workflow:demo-workflow", "chat-agent"} <= ids
    model = openai_door.client().models.retrieve("agent:chat-agent")
    assert model.id == "agent:chat-agent" and model.owned_by == "asteros"


def test_a_key_limited_to_one_agent_sees_only_it(openai_door: Door):
    ids = {model.id for model in openai_door.client("limited").models.list()}
    assert ids == {"agent:chat-agent", "chat-agent"}
    with pytest.raises(openai.NotFoundError):
        openai_door.client("limited").models.retrieve("star:chat-team")
    with pytest.raises(openai.NotFoundError):  # what a key may not see does not exist for it
        openai_door.client("limited").chat.completions.create(
            model="star:chat-team", messages=[{"role": "user", "content": "hi"}]
        )


def test_chat_completion(openai_door: Door):
    completion = openai_door.client().chat.completions.create(
        model="agent:chat-agent", messages=[{"role": "user", "content": "hello there"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "(offline scripted model) You said: hello there"
    assert choice.message.tool_calls is None
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.id.startswith("chatcmpl-")


def test_cached_prompt_tokens_are_reported(openai_door: Door):
    client = openai_door.client()
    messages = [{"role": "user", "content": "hello cache"}]
    first = client.chat.completions.create(model="agent:cached", messages=messages)
    second = client.chat.completions.create(model="agent:cached", messages=messages)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached > 1000 and second.usage.prompt_tokens >= cached
    assert second.usage.prompt_tokens == first.usage.prompt_tokens  # the whole prompt, cached part included
    response = client.responses.create(model="agent:cached", input="hello cache")
    assert response.usage.input_tokens_details.cached_tokens == cached


def test_server_tools_are_not_the_clients_tool_calls(openai_door: Door):
    completion = openai_door.client().chat.completions.create(
        model="chat-agent", messages=[{"role": "user", "content": "what is 6 * 7?"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content == "The result is 42."
    calls = completion.model_extra["asteros"]["server_tool_calls"]
    assert [(c["name"], json.loads(c["arguments"]), c["result"]) for c in calls] == [
        ("calculator", {"expression": "6 * 7"}, "42")
    ]


def test_chat_completion_stream_with_usage(openai_door: Door):
    stream = openai_door.client().chat.completions.create(
        model="agent:chat-agent",
        messages=[{"role": "user", "content": "stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "(offline scripted model) You said: stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_a_stream_of_a_server_tool_shows_no_tool_calls(openai_door: Door):
    stream = openai_door.client().chat.completions.create(
        model="agent:chat-agent", messages=[{"role": "user", "content": "what is 6 * 7?"}], stream=True
    )
    chunks = list(stream)
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["asteros"]["server_tool_calls"][0]["name"] == "calculator"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "change_background",
            "description": "Change the page's background colour.",
            "parameters": {"type": "object", "properties": {"color": {"type": "string"}}},
        },
    }
]


def test_the_client_tool_round_trip(openai_door: Door):
    client = openai_door.client()
    messages = [{"role": "user", "content": "set the background to blue"}]
    first = client.chat.completions.create(model="agent:frontend", messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "change_background"
    assert json.loads(call.function.arguments) == {"color": "blue"}
    messages += [
        choice.message.model_dump(exclude_none=True, exclude={"refusal"}),
        {"role": "tool", "tool_call_id": call.id, "content": "background set to blue"},
    ]
    second = client.chat.completions.create(model="agent:frontend", messages=messages, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "The result is background set to blue."


def test_the_client_tool_call_streamed(openai_door: Door):
    stream = openai_door.client().chat.completions.create(
        model="agent:frontend",
        messages=[{"role": "user", "content": "set the background to red"}],
        tools=TOOLS,
        stream=True,
    )
    chunks = list(stream)
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("change_background", {"color": "red"})
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_session_named_by_user(openai_door: Door):
    client = openai_door.client()
    user = "openai-session-1"
    first = client.chat.completions.create(model="chat-agent", messages=[{"role": "user", "content": "one"}], user=user)
    second = client.chat.completions.create(
        model="chat-agent", messages=[{"role": "user", "content": "two"}], extra_headers={"X-Session-Id": "other"}
    )
    third = client.chat.completions.create(
        model="chat-agent",
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "three"},
        ],
        user=user,
    )
    assert first.model_extra["asteros"]["session_id"] == user
    assert second.model_extra["asteros"]["session_id"] == "other"
    assert third.model_extra["asteros"]["session_id"] == user
    session = httpx.get(
        f"{openai_door.url}/api/sessions/{user}", headers={"Authorization": f"Bearer {openai_door.keys['run']}"}
    )
    assert session.status_code == 200, session.text  # the session keeps the latest conversation
    contents = [m["content"] for m in session.json()["messages"]]
    assert contents == ["one", first.choices[0].message.content, "three", "(offline scripted model) You said: three"]


def test_a_star_and_a_workflow_answer_the_last_user_message(openai_door: Door):
    client = openai_door.client()
    for model in ("star:chat-team", "workflow:demo-workflow"):
        completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
        assert completion.choices[0].finish_reason == "stop", model
        assert completion.choices[0].message.content, model


# --- refusals, as the SDK's exception classes


def test_unknown_model_is_404(openai_door: Door):
    with pytest.raises(openai.NotFoundError) as caught:
        openai_door.client().chat.completions.create(model="agent:nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    assert caught.value.body["type"] == "not_found_error"


def test_bad_body_is_400(openai_door: Door):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_door.client().chat.completions.create(model="chat-agent", messages=[{"role": "robot", "content": "x"}])
    assert caught.value.body["param"] == "messages[0].role"


def test_no_key_is_401(openai_door: Door):
    with pytest.raises(openai.AuthenticationError):
        openai_door.client(None).models.list()
    with pytest.raises(openai.AuthenticationError):
        openai_door.client(None).chat.completions.create(
            model="chat-agent", messages=[{"role": "user", "content": "x"}]
        )


def test_a_key_without_the_run_scope_is_403(openai_door: Door):
    assert openai_door.client("read").models.list().data
    with pytest.raises(openai.PermissionDeniedError):
        openai_door.client("read").chat.completions.create(
            model="chat-agent", messages=[{"role": "user", "content": "x"}]
        )


def test_a_key_over_its_quota_is_429(openai_door: Door):
    client = openai_door.client("slow")
    with pytest.raises(openai.RateLimitError):
        for _ in range(5):
            client.models.list()
