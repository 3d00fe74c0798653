"""AG-UI input follows the spec both ways, as ``ag-ui-protocol``'s own types decide: what the
spec allows is accepted (state and no messages, any tool name, a well-formed ``resume``), what it
forbids is a 400 ``invalid_input`` naming the field (a message without ``id``, a malformed
``resume`` entry, a tool without ``description``), over HTTP before any run starts."""

from __future__ import annotations

import json

import pytest

from cosmos.models import Run
from interfaces.agui.input import InvalidRunInput, parse_run_agent_input
from tests.factories import make_agent
from tests.interfaces.http.conftest import assert_error

BASE = {"threadId": "t-1", "runId": "r-1", "messages": [{"id": "m-1", "role": "user", "content": "hi"}]}

ALLOWED = {
    "state and no messages": {"threadId": "t-1", "runId": "r-1", "messages": [], "state": {"step": 2}},
    "a dotted tool name": {**BASE, "tools": [{"name": "search.web", "description": "Search."}]},
    "a tool name with spaces": {**BASE, "tools": [{"name": "look it up", "description": "Search."}]},
    "a resolved resume entry": {**BASE, "resume": [{"interruptId": "i-1", "status": "resolved", "payload": {}}]},
    "a cancelled resume entry": {**BASE, "resume": [{"interruptId": "i-1", "status": "cancelled"}]},
    "no tools and no context keys": BASE,
}

FORBIDDEN = {
    "a message without id": ({**BASE, "messages": [{"role": "user", "content": "hi"}]}, "messages[0].id"),
    "an assistant message without id": (
        {**BASE, "messages": [{"role": "assistant", "content": "hello"}]},
        "messages[0].id",
    ),
    "a resume entry without interruptId": ({**BASE, "resume": [{"status": "resolved"}]}, "resume[0].interruptId"),
    "a resume entry with an unknown status": (
        {**BASE, "resume": [{"interruptId": "i-1", "status": "maybe"}]},
        "resume[0].status",
    ),
    "resume that is not a list": ({**BASE, "resume": {"interruptId": "i-1"}}, "resume"),
    "a tool without description": ({**BASE, "tools": [{"name": "search"}]}, "tools[0].description"),
    "no messages key": ({"threadId": "t-1", "runId": "r-1"}, "messages"),
}


@pytest.mark.parametrize("body", ALLOWED.values(), ids=ALLOWED.keys())
def test_what_the_spec_allows_is_accepted(body):
    parsed = parse_run_agent_input(body)
    assert parsed.thread_id == "t-1"


@pytest.mark.parametrize(("body", "field"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_what_the_spec_forbids_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidRunInput) as raised:
        parse_run_agent_input(body)
    assert field in [problem["field"] for problem in raised.value.details["problems"]], raised.value.details


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_over_http_a_forbidden_input_is_a_400_and_starts_nothing(client, body, field):
    agent = make_agent()
    response = client.post(f"/agui/agents/{agent.id}", json.dumps(body), content_type="application/json")
    error = assert_error(response, 400, "invalid_input")
    assert field in [problem["field"] for problem in error["details"]["problems"]]
    assert Run.objects.count() == 0


def test_a_run_on_state_alone_becomes_a_conversation_a_model_can_answer():
    from interfaces.agui.input import STATE_ONLY_TURN, to_internal_messages

    parsed = parse_run_agent_input(ALLOWED["state and no messages"])
    messages = to_internal_messages(parsed, parsed.state)
    assert messages[0]["role"] == "system" and '"step": 2' in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": STATE_ONLY_TURN}


def test_no_messages_and_no_state_is_still_nothing_to_answer():
    from interfaces.agui.input import to_internal_messages

    parsed = parse_run_agent_input({"threadId": "t-1", "runId": "r-1", "messages": []})
    with pytest.raises(InvalidRunInput):
        to_internal_messages(parsed, None)
