"""Delegate mode, end to end through the worker: the leader's ``delegate`` tool, child runs of
the workers, parallel work, failures and limits, nested stars, cancel, and the star's stream."""

from __future__ import annotations

import pytest

from cosmos.models import Run, RunStatus, Session
from cosmos.services import runs as run_services
from stars import services
from tests.factories import make_agent
from tests.stars.helpers import (
    child_of,
    children,
    conversation,
    custom_events,
    delegating_leader,
    failing_worker,
    make_team,
    subagent_events,
    worker,
)
from tests.support.runs import assert_gapless, event_types, events, wait_for_children, wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def run_star(star, task="Plan the launch", timeout: float = 60, **options) -> Run:
    run, _ = run_services.start_run("star", star.id, {"message": task, **options})
    return wait_for_run(run.id, timeout)


def test_delegation_reaches_the_workers_and_their_answers_reach_the_final_answer():
    leader = delegating_leader(("research", "Find three facts"), ("write", "Draft the intro"))
    star = make_team(leader, {"research": worker("FACTS: sun, moon"), "write": worker("INTRO: hello world")})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "FACTS: sun, moon" in run.output and "INTRO: hello world" in run.output
    # Each delegation is a child run of that worker, with the leader's instruction as its input.
    research, write = child_of(run.id, "research")[0], child_of(run.id, "write")[0]
    assert research.input["message"] == "Find three facts" and write.input["message"] == "Draft the intro"
    assert research.parent_id == write.parent_id == run.id
    assert research.status == write.status == RunStatus.SUCCEEDED
    (lead,) = child_of(run.id, "lead")
    assert lead.input == {"message": "Plan the launch"} and lead.output == run.output
    assert len(children(run.id)) == 3


def test_the_star_stream_shows_who_works_on_what_and_ends_with_the_answer_as_text():
    leader = delegating_leader(("research", "Find facts"))
    star = make_team(leader, {"research": worker("FACTS")})

    run = run_star(star)

    assert_gapless(run.id)
    started = subagent_events(run.id, "SUBAGENT_STARTED")
    finished = subagent_events(run.id, "SUBAGENT_FINISHED")
    by_member = {e["member"]: e for e in started}
    assert set(by_member) == {"lead", "research"}
    research = child_of(run.id, "research")[0]
    assert by_member["research"] == {
        **by_member["research"],
        "runId": str(research.id),
        "parentRunId": str(run.id),
        "agentId": research.target,
        "role": "worker",
        "instruction": "Find facts",
    }
    assert by_member["lead"]["role"] == "leader"
    assert {e["member"]: e["output"] for e in finished}["research"] == "FACTS"
    # A client of the star sees the final answer as an AG-UI text message, before the run ends.
    types = event_types(run.id)
    assert types[-5:] == ["TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "CUSTOM", "RUN_FINISHED"]
    text = "".join(e["delta"] for e in events(run.id) if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == run.output
    assert events(run.id)[-1]["result"] == run.output
    (summary,) = custom_events(run.id, "star.finished")
    assert summary["delegations"] == 1 and summary["runs"] == 2 and summary["outputTokens"] > 0
    # Any child's stream can be opened by its run id: a complete stream of its own.
    assert_gapless(research.id)
    assert events(research.id)[0]["parentRunId"] == str(run.id)


def test_the_messages_between_members_are_stored_in_order():
    leader = delegating_leader(("research", "Find facts"))
    star = make_team(leader, {"research": worker("FACTS")})

    run = run_star(star, "Tell me things")

    assert conversation(star.id, run.id) == [
        ("user", "lead", "Tell me things"),
        ("lead", "research", "Find facts"),
        ("research", "lead", "FACTS"),
        ("lead", "user", run.output),
    ]
    assert [e["value"]["from"] for e in events(run.id) if e.get("name") == "star.message"] == [
        "user",
        "lead",
        "research",
        "lead",
    ]


def test_two_one_second_workers_work_at_the_same_time():
    leader = delegating_leader(("a", "part one"), ("b", "part two"))
    star = make_team(leader, {"a": worker("ONE", ttft_ms=1000), "b": worker("TWO", ttft_ms=1000)})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    a, b = child_of(run.id, "a")[0], child_of(run.id, "b")[0]
    # Their [started, finished] intervals overlap: neither waited for the other.
    assert a.started_at < b.finished_at and b.started_at < a.finished_at
    assert a.duration_seconds >= 1 and b.duration_seconds >= 1


def test_a_failing_worker_gives_the_leader_an_error_result_and_the_leader_carries_on():
    leader = delegating_leader(("broken", "try this"), ("steady", "do that"))
    star = make_team(leader, {"broken": failing_worker("provider outage"), "steady": worker("STEADY ANSWER")})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "STEADY ANSWER" in run.output
    assert "error:" in run.output and "provider outage" in run.output  # the leader saw the error result
    broken = child_of(run.id, "broken")[0]
    assert broken.status == RunStatus.FAILED and broken.error["code"] == "model_unavailable"
    (error,) = subagent_events(run.id, "SUBAGENT_ERROR")
    assert error["member"] == "broken" and error["runId"] == str(broken.id)
    assert error["error"]["code"] == "model_unavailable" and error["status"] == "failed"
    results = [e["content"] for e in events(child_of(run.id, "lead")[0].id) if e["type"] == "TOOL_CALL_RESULT"]
    assert any("Member 'broken' failed (model_unavailable)" in r for r in results)


def test_a_worker_without_a_model_key_fails_at_once_and_the_star_still_answers(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    keyless = make_agent(provider="anthropic", model="claude-sonnet-4-5")
    leader = delegating_leader(("keyless", "try"), ("steady", "go"))
    star = make_team(leader, {"keyless": keyless, "steady": worker("STEADY")})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert child_of(run.id, "keyless")[0].error["code"] == "model_auth"
    assert "STEADY" in run.output


def test_a_worker_that_takes_too_long_times_out_with_a_clear_error():
    leader = delegating_leader(("slow", "take your time"), ("quick", "be quick"))
    star = make_team(
        leader, {"slow": worker("LATE", ttft_ms=20_000), "quick": worker("QUICK")}, config={"member_timeout": 0.5}
    )

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    slow = child_of(run.id, "slow")[0]
    assert slow.status == RunStatus.FAILED and slow.error["code"] == "timeout"
    (error,) = subagent_events(run.id, "SUBAGENT_ERROR")
    assert error["error"] == {"code": "timeout", "message": "No answer within 0.5s (member_timeout)."}
    assert "member_timeout" in run.output and "QUICK" in run.output


def test_the_delegation_limit_is_an_error_result():
    leader = delegating_leader(("a", "one"), ("b", "two"), ("a", "three"))
    star = make_team(leader, {"a": worker("A"), "b": worker("B")}, config={"max_delegations": 2})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(children(run.id)) == 3  # the leader and two delegations
    assert "Delegation limit reached" in run.output and "max_delegations" in run.output


def test_an_unknown_member_or_the_leader_itself_is_an_error_result():
    leader = delegating_leader(("nobody", "x"), ("lead", "y"), ("a", "z"))
    star = make_team(leader, {"a": worker("A")})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "Unknown member 'nobody'; your team: a." in run.output
    assert "'lead' is you, the leader" in run.output
    assert len(children(run.id)) == 2


def test_a_worker_that_leads_a_star_runs_that_star_one_level_deeper():
    inner_leader = delegating_leader(("analyst", "dig"))
    inner = make_team(inner_leader, {"analyst": worker("DEEP RESULT")}, leader_name="inner-lead")
    outer = make_team(delegating_leader(("team", "ask your team")), {"team": inner_leader})

    run = run_star(outer)

    assert run.status == RunStatus.SUCCEEDED, run.error
    nested = child_of(run.id, "team")[0]
    assert (nested.kind, nested.target, nested.status) == ("star", inner.id, RunStatus.SUCCEEDED)
    assert nested.metadata["star_depth"] == 2 and nested.metadata["star_path"] == [outer.id, inner.id]
    assert child_of(nested.id, "analyst")[0].status == RunStatus.SUCCEEDED
    assert "DEEP RESULT" in run.output
    started = {e["member"]: e for e in subagent_events(run.id, "SUBAGENT_STARTED")}
    assert started["team"]["kind"] == "star" and started["team"]["target"] == inner.id


def test_nesting_past_max_depth_is_refused_with_a_clear_error():
    inner_leader = delegating_leader(("analyst", "dig"))
    make_team(inner_leader, {"analyst": worker("DEEP")}, leader_name="inner-lead")
    outer = make_team(delegating_leader(("team", "ask")), {"team": inner_leader}, config={"max_depth": 1})

    run = run_star(outer)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(children(run.id)) == 1  # only the leader: the nested star never started
    (error,) = subagent_events(run.id, "SUBAGENT_ERROR")
    assert error["error"]["code"] == "max_depth" and "runId" not in error
    assert "nest stars 2 deep, past the limit of 1" in run.output


def test_stars_that_lead_each_other_stop_at_max_depth():
    first_leader = delegating_leader(("other", "go"))
    second_leader = delegating_leader(("other", "go"))
    first = make_team(first_leader, {"other": second_leader}, config={"max_depth": 3})
    make_team(second_leader, {"other": first_leader}, config={"max_depth": 3})

    run = run_star(first)

    assert run.status == RunStatus.SUCCEEDED, run.error
    depths = [r.metadata.get("star_depth") for r in Run.objects.filter(kind="star").exclude(id=run.id)]
    assert sorted(depths) == [2, 3]
    assert "past the limit of 3" in run.output


def test_cancelling_the_star_cancels_every_child():
    leader = delegating_leader(("a", "long one"), ("b", "long two"))
    star = make_team(leader, {"a": worker("A", ttft_ms=30_000), "b": worker("B", ttft_ms=30_000)})
    run, _ = run_services.start_run("star", star.id, "take ages")
    wait_for_children(run.id, 3, statuses=("running",))
    busy = {m["name"]: m["status"] for m in services.members(star.id)}
    assert busy == {"lead": "busy", "a": "busy", "b": "busy"}

    run_services.cancel_run(run.id)

    final = wait_for_run(run.id, 15)
    assert final.status == RunStatus.CANCELLED, (
        final.error,
        [(c.metadata, c.status, c.error) for c in children(run.id)],
    )
    for child in children(run.id):
        assert wait_for_run(child.id, 15).status == RunStatus.CANCELLED, child
    assert {m["status"] for m in services.members(star.id)} == {"idle"}
    assert events(run.id)[-1]["outcome"] == "cancelled"
    assert_gapless(run.id)


def test_cancelling_only_the_leader_stops_its_delegations_too():
    leader = delegating_leader(("a", "long one"))
    star = make_team(leader, {"a": worker("A", ttft_ms=30_000)})
    run, _ = run_services.start_run("star", star.id, "take ages")
    lead, busy = wait_for_children(run.id, 2, statuses=("running",))

    run_services.cancel_run(lead.id)

    final = wait_for_run(run.id, 15)
    assert final.status == RunStatus.FAILED and final.error["code"] == "leader_failed"
    assert "cancelled" in final.error["message"]
    assert wait_for_run(lead.id, 5).status == RunStatus.CANCELLED
    assert wait_for_run(busy.id, 5).status == RunStatus.CANCELLED  # not left running for the reaper


def test_a_failing_leader_fails_the_star_with_the_reason():
    star = make_team(failing_worker("leader model down"), {"a": worker("A")})

    run = run_star(star)

    assert run.status == RunStatus.FAILED
    assert run.error["code"] == "leader_failed" and "leader model down" in run.error["message"]
    assert events(run.id)[-1]["type"] == "RUN_ERROR"


def test_a_star_with_a_leader_only_answers_through_its_leader():
    star = make_team(worker("I did it alone"), {})

    run = run_star(star)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "I did it alone"


def test_a_session_carries_the_star_conversation_across_runs():
    star = make_team(make_agent(), {"a": worker("A")})

    first, _ = run_services.start_run("star", star.id, "my name is Ada", session_id="star-thread")
    wait_for_run(first.id)
    second, _ = run_services.start_run("star", star.id, "what is my name?", session_id="star-thread")
    wait_for_run(second.id)

    lead = child_of(second.id, "lead")[0]
    assert lead.input["messages"][0]["content"] == "my name is Ada"
    stored = Session.objects.get(id="star-thread").messages
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
