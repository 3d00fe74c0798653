"""The official ``openai`` Python SDK against a live server: the Responses API."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from .conftest import Door

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_a_response(openai_door: Door):
    response = openai_door.client().responses.create(model="agent:chat-agent", input="hello responses")
    assert response.status == "completed"
    assert response.output_text == "(offline scripted model) You said: hello responses"
    assert response.id.startswith("resp_")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    again = openai_door.client().responses.retrieve(response.id)
    assert again.status == "completed" and again.output_text == response.output_text


def test_a_streamed_response(openai_door: Door):
    events = list(openai_door.client().responses.create(model="chat-agent", input="stream it", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "(offline scripted model) You said: stream it"
    assert events[-1].response.output_text == text


def test_previous_response_id_continues_the_conversation(openai_door: Door):
    client = openai_door.client()
    first = client.responses.create(model="chat-agent", input="first turn")
    second = client.responses.create(model="chat-agent", input="second turn", previous_response_id=first.id)
    assert second.output_text == "(offline scripted model) You said: second turn"
    assert second.previous_response_id == first.id
    first_session = first.model_extra["asteros"]["session_id"]
    assert second.model_extra["asteros"]["session_id"] == first_session
    session = httpx.get(
        f"{openai_door.url}/api/sessions/{first_session}",
        headers={"Authorization": f"Bearer {openai_door.keys['run']}"},
    ).json()
    assert [m["content"] for m in session["messages"]] == [
        "first turn",
        first.output_text,
        "second turn",
        second.output_text,
    ]


def test_a_client_tool_call_and_its_output(openai_door: Door):
    client = openai_door.client()
    tools = [{"type": "function", "name": "change_background", "parameters": {"type": "object", "properties": {}}}]
    first = client.responses.create(model="agent:frontend", input="set the background to green", tools=tools)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "change_background" and json.loads(call.arguments) == {"color": "green"}
    second = client.responses.create(
        model="agent:frontend",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "green it is"}],
        tools=tools,
    )
    assert second.output_text == "The result is green it is."


def test_a_background_stream_dropped_and_resumed(openai_door: Door):
    client = openai_door.client()
    started = client.responses.create(model="agent:paced", input="count slowly", background=True)
    assert started.status in ("queued", "in_progress")
    seen = []
    with client.responses.retrieve(started.id, stream=True) as stream:
        for event in stream:
            seen.append(event)
            if event.type == "response.output_text.delta" and len(seen) > 5:
                break  # the client goes away mid-stream
    last = seen[-1].sequence_number
    rest = list(client.responses.retrieve(started.id, stream=True, starting_after=last))
    numbers = [event.sequence_number for event in [*seen, *rest]]
    assert numbers == list(range(len(numbers)))  # nothing lost, nothing repeated
    assert rest[-1].type == "response.completed"
    text = "".join(e.delta for e in [*seen, *rest] if e.type == "response.output_text.delta")
    assert text == rest[-1].response.output_text
    assert client.responses.retrieve(started.id).status == "completed"


def test_cancel_a_background_response(openai_door: Door):
    client = openai_door.client()
    started = client.responses.create(model="agent:paced", input="take your time", background=True)
    cancelled = client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(started.id).status == "cancelled"
    with pytest.raises(openai.ConflictError):  # already over
        client.responses.cancel(started.id)


def test_a_run_that_waits_for_a_person_ends_the_reply(openai_door: Door):
    client = openai_door.client()
    chat = client.chat.completions.create(model="asks-first", messages=[{"role": "user", "content": "what is 6 * 7?"}])
    assert chat.choices[0].finish_reason == "stop" and chat.choices[0].message.tool_calls is None
    response = client.responses.create(model="asks-first", input="what is 2 * 3?")
    assert response.status == "incomplete" and response.incomplete_details.reason == "interrupted"
    assert client.responses.retrieve(response.id).status == "in_progress"
    events = list(client.responses.retrieve(response.id, stream=True))
    assert events[-1].type == "response.incomplete"


def test_another_callers_response_is_not_found(openai_door: Door):
    response = openai_door.client().responses.create(model="chat-agent", input="mine", background=True)
    for key in ("limited", "other"):
        with pytest.raises(openai.NotFoundError):
            openai_door.client(key).responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            openai_door.client(key).responses.cancel(response.id)
    assert openai_door.client("settings").responses.retrieve(response.id).id == response.id
    with pytest.raises(openai.NotFoundError):
        openai_door.client().responses.retrieve("resp_00000000000000000000000000000000")


def test_response_refusals(openai_door: Door):
    client = openai_door.client()
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="workflow:nope", input="x")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="chat-agent", input=[{"type": "image", "url": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="chat-agent", input="x", previous_response_id="resp_nope")
    with pytest.raises(openai.AuthenticationError):
        openai_door.client(None).responses.create(model="chat-agent", input="x")
    with pytest.raises(openai.PermissionDeniedError):
        openai_door.client("read").responses.create(model="chat-agent", input="x")
