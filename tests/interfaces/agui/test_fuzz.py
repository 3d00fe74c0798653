"""Fuzzing the AG-UI endpoint: odd and broken ``RunAgentInput`` bodies, on agents and workflows.

Every answer is a 4xx in the one error shape before any stream opens, or a 200 stream that opens
with ``RUN_STARTED`` and ends with one ``RUN_FINISHED`` or ``RUN_ERROR``; never a 5xx. A refused
body writes no run, and every run left behind is whole and ends.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st

from cosmos.models import Run
from interfaces.agui.input import ROLES
from tests.factories import make_agent, make_workflow, workflow_definition
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
TERMINAL = ("RUN_FINISHED", "RUN_ERROR")

texts = st.text(max_size=16)
identifiers = mostly(st.one_of(st.uuids().map(str), st.sampled_from(["t1", "r1", "thread-a"])), texts | JSON_VALUES)
arguments = st.one_of(
    st.just('{"c": "teal"}'), JSON_VALUES.map(json.dumps), texts, st.just("[" * 3000), st.just('{"a": NaN}'), SCALARS
)
tool_calls = st.fixed_dictionaries(
    {"id": mostly(st.sampled_from(["c1", "c2"]))},
    optional={
        "type": mostly(st.just("function")),
        "function": mostly(
            st.fixed_dictionaries({"name": mostly(st.just("change_background"), texts), "arguments": arguments})
        ),
    },
)
contents = mostly(
    st.text(min_size=1, max_size=16),
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(texts, SCALARS)}),
            st.fixed_dictionaries({"type": st.sampled_from(["image", "binary", "audio"])}, optional={"url": texts}),
            JSON_VALUES,
        ),
        max_size=3,
    )
    | JSON_VALUES,
)
user_messages = st.fixed_dictionaries({"id": texts, "role": st.just("user"), "content": contents})  # the spec wants ids
other_messages = st.fixed_dictionaries(
    {"role": mostly(st.sampled_from(ROLES))},
    optional={
        "id": mostly(texts),
        "content": contents,
        "toolCalls": mostly(st.lists(tool_calls, max_size=2)),
        "toolCallId": mostly(st.sampled_from(["c1", "c2"])),
        "error": mostly(texts),
    },
)
# A conversation that ends with a user message most of the time, odd messages before it.
conversations = mostly(
    st.tuples(st.lists(mostly(other_messages), max_size=3), user_messages).map(lambda pair: [*pair[0], pair[1]]),
    st.lists(mostly(other_messages), max_size=3) | JSON_VALUES,
)
tools = st.fixed_dictionaries(
    {"name": mostly(st.sampled_from(["change_background", "calculator", "bad name!"]))},
    optional={"description": mostly(texts), "parameters": mostly(st.just({"type": "object"}))},
)
run_inputs = st.fixed_dictionaries(
    {"threadId": identifiers, "runId": identifiers, "messages": conversations},
    optional={
        "parentRunId": identifiers,
        "protocolVersion": mostly(st.just("1.0")),
        "tools": mostly(st.lists(tools, max_size=3)),
        "context": mostly(
            st.lists(st.fixed_dictionaries({"description": texts, "value": st.one_of(texts, SCALARS)}), max_size=2)
        ),
        "state": JSON_VALUES,
        "forwardedProps": JSON_VALUES,
    },
)
# Now and then a required member goes missing.
run_inputs = mostly(
    run_inputs,
    st.tuples(run_inputs, st.sampled_from(["threadId", "runId", "messages"])).map(
        lambda pair: {key: value for key, value in pair[0].items() if key != pair[1]}
    ),
)
# Mostly inputs that parse (so the deeper checks run), some garbage.
bodies = mostly(run_inputs.map(json_body), GARBAGE_BODIES)
last_event_ids = st.one_of(st.none(), st.sampled_from(["0", "3", "-1", "x", "99999999999999999999"]))


def check_answer(response, before: int, *, resumed: bool = False) -> None:
    """A 4xx in the error shape with nothing written, or the stream: whole, or (``resumed``, a
    Last-Event-ID past the start) its tail, which ends with the one final event if it has any."""
    raw = response_bytes(response)
    assert response.status_code < 500, raw[:500]
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, response.status_code
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"} and error["code"] and error["message"], error
        assert Run.objects.count() == before, error  # refused before anything was written
        return
    assert response["Content-Type"].startswith("text/event-stream")
    events = [event for _, event in sse_frames(raw)]
    types = [event["type"] for event in events]
    assert sum(t in TERMINAL for t in types) == (1 if types or not resumed else 0), types
    if not resumed:
        assert types[0] == "RUN_STARTED", types
    if types:
        assert types[-1] in TERMINAL, types
        if types[-1] == "RUN_ERROR":
            assert events[-1]["message"] and events[-1]["code"], events[-1]


@pytest.mark.parametrize("kind", ["agents", "workflows"])
def test_run_agent_input_is_answered_with_a_stream_or_a_clear_4xx(kind):
    agent = make_agent(tools=["calculator"], parameters={"reply": "ok: {input}"})
    target = agent.id if kind == "agents" else make_workflow(definition=workflow_definition(agent.id)).id
    client = Client()
    path = f"/agui/{kind}/{target}"
    statuses: Counter[int] = Counter()

    @fuzz_settings(BOUNDED_EXAMPLES)
    @given(body=bodies, last_event_id=last_event_ids)
    @example(
        body=json_body({"threadId": "t", "runId": "r", "messages": [{"id": "m1", "role": "user", "content": "hi"}]}),
        last_event_id=None,
    )
    @example(
        body=b'{"threadId": "t", "runId": "n", "messages": [{"id": "m1", "role": "user", "content": "hi"}], '
        b'"state": {"x": NaN}}',
        last_event_id=None,
    )
    @example(body=b"x" * 1_100_000, last_event_id=None)  # over ASTEROS_MAX_BODY_BYTES
    def check(body: bytes, last_event_id: str | None):
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        before = Run.objects.count()
        response = client.post(path, body, content_type="application/json", headers=headers)
        statuses[response.status_code] += 1
        check_answer(response, before, resumed=last_event_id not in (None, "0", "-1", "x"))
        assert_no_half_written_run()

    check()
    # Both roads were taken: streams that ran, and refusals.
    assert statuses[200] and sum(n for status, n in statuses.items() if status >= 400), statuses
    settle_runs()


def test_a_plain_input_streams_to_the_end():
    """The happy path through the same checks: the strategies' shapes are the real ones."""
    agent = make_agent(parameters={"reply": "ok: {input}"})
    message = {"id": "m1", "role": "user", "content": "hi"}
    body: dict[str, Any] = {"threadId": "t-ok", "runId": "r-ok", "messages": [message]}
    before = Run.objects.count()
    response = Client().post(f"/agui/agents/{agent.id}", json_body(body), content_type="application/json")
    check_answer(response, before)
    assert Run.objects.get().output == "ok: hi"
    settle_runs()
