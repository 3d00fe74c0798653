"""Human in the loop over REST: an interrupted run shows its interrupts, ``POST /api/runs/{id}/resume``
decides, ``GET /api/interrupts`` is the reviewers' queue, and agents carry their approval rules."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cosmos.models import Interrupt, RunStatus
from interfaces.keys.models import APIKey
from tests.factories import make_run
from tests.support.interrupts import (
    approval_agent,
    assert_gapless_log,
    interrupt_events,
    question_agent,
    the_interrupt,
)
from tests.support.model_server import ServerThread
from tests.support.runs import wait_for_run

from .conftest import assert_error, bearer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def start(client, agent, text: str = "what is 6*7?", **extra) -> str:
    """Start a run of ``agent`` over REST and wait until it stops for a person; its id."""
    answer = client.post(f"/api/agents/{agent.id}/run", {"input": text}, format="json", **extra)
    assert answer.status_code == 202, answer.content[:500]
    run_id = answer.json()["id"]
    assert wait_for_run(run_id, statuses=["interrupted", *("succeeded", "failed")]).status == RunStatus.INTERRUPTED
    return run_id


def resume(client, run_id: str, body, **extra):
    return client.post(f"/api/runs/{run_id}/resume", body, format="json", **extra)


# --- the round trip


def test_a_paused_run_shows_its_interrupt_and_approve_resumes_it(api_client):
    run_id = start(api_client, approval_agent())

    shown = api_client.get(f"/api/runs/{run_id}").json()
    assert shown["status"] == "interrupted"
    (interrupt,) = shown["interrupts"]
    assert interrupt["status"] == "pending" and interrupt["kind"] == "approval"
    assert interrupt["runId"] == run_id and interrupt["decision"] is None
    assert interrupt["request"]["tool"] == "calculator" and interrupt["request"]["arguments"] == {"expression": "6*7"}

    answer = resume(api_client, run_id, {"interrupt_id": interrupt["id"], "decision": "approve", "message": "ok"})

    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["id"] == run_id and body["status"] in ("queued", "running", "succeeded")
    assert body["links"]["self"].endswith(f"/api/runs/{run_id}")
    assert body["interrupts"][0]["status"] == "approved" and body["interrupts"][0]["resolvedBy"] == "anonymous"
    run = wait_for_run(run_id)
    assert run.status == RunStatus.SUCCEEDED and run.output == "The result is 42."
    assert [v["status"] for v in interrupt_events(run_id)] == ["pending", "resumed"]
    assert_gapless_log(run_id)
    done = api_client.get(f"/api/runs/{run_id}").json()
    assert done["status"] == "succeeded" and done["interrupts"][0]["decision"] == "approve"


def test_edit_runs_the_tool_with_the_new_arguments_and_the_only_interrupt_needs_no_id(api_client):
    run_id = start(api_client, approval_agent())

    answer = resume(api_client, run_id, {"decision": "edit", "arguments": {"expression": "2*3"}})

    assert answer.status_code == 202, answer.content
    run = wait_for_run(run_id)
    assert run.status == RunStatus.SUCCEEDED and "6" in str(run.output)
    assert Interrupt.objects.get(run_id=run_id).response["arguments"] == {"expression": "2*3"}


def test_reject_tells_the_model_and_the_run_goes_on(api_client):
    run_id = start(api_client, approval_agent())

    assert resume(api_client, run_id, {"decision": "reject", "message": "not today"}).status_code == 202

    assert wait_for_run(run_id).status == RunStatus.SUCCEEDED
    interrupt = Interrupt.objects.get(run_id=run_id)
    assert (interrupt.status, interrupt.response["message"]) == ("rejected", "not today")


def test_answer_a_question(api_client):
    run_id = start(api_client, question_agent("Which city?"), "plan my trip")
    (interrupt,) = api_client.get(f"/api/runs/{run_id}").json()["interrupts"]
    assert interrupt["kind"] == "question" and interrupt["request"]["question"] == "Which city?"

    answer = resume(api_client, run_id, {"interrupt_id": interrupt["id"], "decision": "answer", "answer": "Lisbon"})

    assert answer.status_code == 202, answer.content
    run = wait_for_run(run_id)
    assert run.status == RunStatus.SUCCEEDED and "Lisbon" in str(run.output)


def test_an_answer_that_breaks_the_question_schema_is_a_400(api_client):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    run_id = start(api_client, question_agent("How many?", schema=schema), "go")

    assert_error(resume(api_client, run_id, {"decision": "answer", "answer": {"n": "x"}}), 400, "invalid_answer")
    assert_error(resume(api_client, run_id, {"decision": "approve"}), 400, "invalid_decision")
    assert the_interrupt(run_id).status == "pending"


# --- refusals


def test_resolving_twice_is_a_409_already_resolved(api_client):
    run_id = start(api_client, approval_agent())
    interrupt_id = str(the_interrupt(run_id).id)
    assert resume(api_client, run_id, {"interrupt_id": interrupt_id, "decision": "approve"}).status_code == 202

    assert_error(
        resume(api_client, run_id, {"interrupt_id": interrupt_id, "decision": "reject"}), 409, "already_resolved"
    )
    wait_for_run(run_id)
    # Nothing left to decide: a body without interrupt_id names no interrupt.
    assert_error(resume(api_client, run_id, {"decision": "approve"}), 409, "not_interrupted")


def test_unknown_runs_and_interrupts_are_404s(api_client):
    run_id = start(api_client, approval_agent())

    assert_error(resume(api_client, str(uuid.uuid4()), {"decision": "approve"}), 404, "not_found")
    unknown = {"interrupt_id": str(uuid.uuid4()), "decision": "approve"}
    assert_error(resume(api_client, run_id, unknown), 404, "not_found")
    other_run = start(api_client, approval_agent())
    elsewhere = {"interrupt_id": str(the_interrupt(other_run).id), "decision": "approve"}
    assert_error(resume(api_client, run_id, elsewhere), 404, "not_found")  # not this run's
    assert the_interrupt(other_run).status == "pending"
    assert_error(api_client.get(f"/api/interrupts/{uuid.uuid4()}"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe"},
        {"decision": "edit"},  # edit needs arguments
        {"decision": "edit", "arguments": [1, 2]},
        {"decision": "approve", "interrupt_id": "not-a-uuid"},
        {"decision": "approve", "message": ["not", "text"]},
        {},
        ["decision", "approve"],  # not a JSON object
        "approve",
    ],
    ids=[
        "bad-decision",
        "edit-without-arguments",
        "arguments-not-object",
        "bad-id",
        "bad-message",
        "empty",
        "list",
        "str",
    ],
)
def test_bad_bodies_are_400s_and_leave_the_run_waiting(api_client, body):
    run_id = start(api_client, approval_agent())

    assert_error(resume(api_client, run_id, body), 400)

    assert the_interrupt(run_id).status == "pending"


def test_malformed_json_is_a_400(api_client):
    run_id = start(api_client, approval_agent())

    answer = api_client.post(f"/api/runs/{run_id}/resume", "{nope", content_type="application/json")

    assert_error(answer, 400)


@pytest.mark.django_db  # rows only: no worker picks the run up when it is queued again
def test_a_run_waiting_for_two_decisions_needs_the_interrupt_id_and_resumes_after_both(api_client):
    run = make_run(status=RunStatus.INTERRUPTED, events=["RUN_STARTED"])
    asks = [
        Interrupt.objects.create(
            run=run, root_run=run, kind="approval", request={"toolCallId": f"c{n}", "tool": "calculator"}
        )
        for n in (1, 2)
    ]
    run.checkpoint = {"attempt": 1, "interrupts": [str(i.id) for i in asks]}
    run.save(update_fields=["checkpoint"])

    refused = assert_error(resume(api_client, run.id, {"decision": "approve"}), 400, "interrupt_id_required")
    assert sorted(refused["details"]["interrupt_ids"]) == sorted(str(i.id) for i in asks)

    first = resume(api_client, run.id, {"interrupt_id": str(asks[0].id), "decision": "approve"})
    assert first.status_code == 202 and first.json()["status"] == "interrupted"
    last = resume(api_client, run.id, {"decision": "reject"})  # one left: no id needed
    assert last.status_code == 202 and last.json()["status"] == "queued"
    assert [i["status"] for i in last.json()["interrupts"]] == ["approved", "rejected"]


# --- auth


def test_without_a_key_401_and_without_the_run_scope_on_the_agent_403(api_client, keys, auth_on):
    agent = approval_agent()
    run_id = start(api_client, agent, **bearer(keys.run))
    decision = {"decision": "approve"}

    assert_error(resume(api_client, run_id, decision), 401, "not_authenticated")
    assert_error(resume(api_client, run_id, decision, **bearer(keys.read)), 403, "permission_denied")
    # The run scope, but on another agent: the run is not this key's to see.
    _, elsewhere = APIKey.generate("other-agent", ["run"], resources=["agents:someone-else"])
    assert_error(resume(api_client, run_id, decision, **bearer(elsewhere)), 404, "not_found")
    assert the_interrupt(run_id).status == "pending"

    key, own = APIKey.generate("this-agent", ["run"], resources=[f"agents:{agent.id}"])
    answer = resume(api_client, run_id, decision, **bearer(own))
    assert answer.status_code == 202, answer.content
    assert answer.json()["interrupts"][0]["resolvedBy"] == f"key:{key.prefix}"


def test_the_list_needs_read_and_keeps_to_the_keys_resources(api_client, keys, auth_on):
    mine, theirs = approval_agent(), approval_agent()
    start(api_client, mine, **bearer(keys.run))
    start(api_client, theirs, **bearer(keys.run))

    assert_error(api_client.get("/api/interrupts"), 401, "not_authenticated")
    assert_error(api_client.get("/api/interrupts", **bearer(keys.none)), 403, "permission_denied")
    assert len(api_client.get("/api/interrupts", **bearer(keys.read)).json()["results"]) == 2
    _, limited = APIKey.generate("mine-only", ["read"], resources=[f"agents:{mine.id}"])
    listed = api_client.get("/api/interrupts", **bearer(limited)).json()["results"]
    assert [item["target"] for item in listed] == [mine.id]
    theirs_interrupt = Interrupt.objects.get(root_run__target=theirs.id)
    assert_error(api_client.get(f"/api/interrupts/{theirs_interrupt.id}", **bearer(limited)), 404, "not_found")


# --- the reviewers' queue


def test_the_list_filters_by_status_agent_kind_and_run_oldest_first(api_client):
    first, second = approval_agent(), question_agent()
    first_run = start(api_client, first)
    second_run = start(api_client, second, "hello")
    third_run = start(api_client, first)
    resume(api_client, third_run, {"decision": "reject"})

    pending = api_client.get("/api/interrupts?status=pending").json()["results"]
    assert [i["runId"] for i in pending] == [first_run, second_run]  # oldest first
    assert pending[0]["target"] == first.id and pending[0]["runKind"] == "agent"
    assert set(pending[0]) >= {"id", "kind", "request", "status", "createdAt", "expiresAt", "resolvedBy"}

    of_first = api_client.get(f"/api/interrupts?status=pending&agent={first.id}").json()["results"]
    assert [i["runId"] for i in of_first] == [first_run]
    everything_of_first = api_client.get(f"/api/interrupts?agent={first.id}").json()["results"]
    assert [i["runId"] for i in everything_of_first] == [first_run, third_run]
    questions = api_client.get("/api/interrupts?kind=question").json()["results"]
    assert [i["runId"] for i in questions] == [second_run]
    of_run = api_client.get(f"/api/interrupts?run={third_run}").json()["results"]
    assert [(i["runId"], i["status"]) for i in of_run] == [(third_run, "rejected")]
    one = api_client.get(f"/api/interrupts/{pending[1]['id']}").json()
    assert one == pending[1]

    page = api_client.get("/api/interrupts?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    assert api_client.get(page["next"]).json()["results"][0]["runId"] == second_run


@pytest.mark.parametrize("query", ["status=waiting", "kind=poll", "run=not-a-uuid", "cursor=garbage"])
def test_bad_list_filters_are_400s(api_client, query):
    assert_error(api_client.get(f"/api/interrupts?{query}"), 400)


def test_the_runs_list_reads_the_interrupts_of_a_whole_page_in_one_query(api_client):
    paused = [start(api_client, approval_agent()) for _ in range(3)]

    def queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            listed = api_client.get(f"/api/runs?status=interrupted&limit={limit}").json()["results"]
        assert len(listed) == limit
        assert all(run["status"] == "interrupted" and len(run["interrupts"]) == 1 for run in listed)
        return len(captured)

    # The page, the interrupts of all of it and its children (the runs' totals), whatever its size.
    assert queries(1) == queries(3) <= 4
    assert {run["id"] for run in api_client.get("/api/runs?status=interrupted").json()["results"]} == set(paused)


# --- two reviewers at once


def test_two_resumes_at_once_one_202_and_one_409(api_client):
    from asteros_site.asgi import application

    run_id = start(api_client, approval_agent())
    interrupt_id = str(the_interrupt(run_id).id)
    barrier = threading.Barrier(2)

    with ServerThread(application) as server:

        def decide(decision: str) -> httpx.Response:
            barrier.wait(timeout=30)
            body = {"interrupt_id": interrupt_id, "decision": decision}
            return httpx.post(f"{server.url}/api/runs/{run_id}/resume", json=body, timeout=60)

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(decide, ["approve", "reject"]))

    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    (lost,) = [a for a in answers if a.status_code == 409]
    assert lost.json()["error"]["code"] == "already_resolved"
    assert wait_for_run(run_id).status == RunStatus.SUCCEEDED
    assert [v["status"] for v in interrupt_events(run_id)] == ["pending", "resumed"]


# --- agents carry their rules


def test_agents_expose_and_validate_their_approval_rules(api_client):
    created = api_client.post(
        "/api/agents",
        {
            "id": "refunder",
            "provider": "scripted",
            "tools": ["calculator"],
            "approvals": {"calculator": "always"},
            "interrupt_timeout_seconds": 600,
            "on_interrupt_timeout": "approve",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    shown = api_client.get("/api/agents/refunder").json()
    assert shown["approvals"] == {"calculator": "always"}
    assert (shown["interrupt_timeout_seconds"], shown["on_interrupt_timeout"]) == (600, "approve")

    bad_rule = api_client.patch("/api/agents/refunder", {"approvals": {"calculator": "amount >"}}, format="json")
    assert "approvals" in assert_error(bad_rule, 400)["details"]
    not_an_object = api_client.patch("/api/agents/refunder", {"approvals": ["calculator"]}, format="json")
    assert "approvals" in assert_error(not_an_object, 400)["details"]
    bad_policy = api_client.patch("/api/agents/refunder", {"on_interrupt_timeout": "shrug"}, format="json")
    assert "on_interrupt_timeout" in assert_error(bad_policy, 400)["details"]
    negative = api_client.patch("/api/agents/refunder", {"interrupt_timeout_seconds": -1}, format="json")
    assert "interrupt_timeout_seconds" in assert_error(negative, 400)["details"]
    bad_create = api_client.post(
        "/api/agents",
        {"id": "bad-rules", "provider": "scripted", "approvals": {"calculator": "amount >"}},
        format="json",
    )
    assert "approvals" in assert_error(bad_create, 400)["details"]

    rule = api_client.patch("/api/agents/refunder", {"approvals": {"calculator": "amount > 100"}}, format="json")
    assert rule.status_code == 200 and rule.json()["approvals"] == {"calculator": "amount > 100"}
