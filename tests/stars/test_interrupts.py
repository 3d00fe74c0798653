"""A member that waits for a person pauses its star run too; once the person decides, the star
run resumes by replay: the member goes on from its pause and nothing else is done twice."""

from __future__ import annotations

import pytest

from cosmos.models import Interrupt, Run, RunEvent, RunStatus
from cosmos.services import interrupts
from cosmos.services import runs as run_services
from tests.stars.helpers import child_of, children, conversation, delegating_leader, make_team, worker
from tests.support.interrupts import approval_agent, assert_gapless_log, interrupt_events
from tests.support.runs import wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def start_star(star, task: str = "what is 6*7?") -> Run:
    run, _ = run_services.start_run("star", star.id, task)
    return wait_for_run(run.id, statuses=["interrupted", "succeeded", "failed"])


def pending_of(run: Run) -> Interrupt:
    (interrupt,) = interrupts.pending_interrupts(run.id)
    return interrupt


def calculator_results(run_ids) -> list[str]:
    rows = RunEvent.objects.filter(run_id__in=run_ids, type="TOOL_CALL_RESULT").values_list("data", flat=True)
    return [row["content"] for row in rows if row["content"] == "42" or "refused" in row["content"]]


def test_a_delegated_member_that_waits_pauses_the_star_and_resumes_it_once_approved():
    star = make_team(delegating_leader(("calc", "what is 6*7?")), {"calc": approval_agent()})
    run = start_star(star)

    assert run.status == RunStatus.INTERRUPTED
    interrupt = pending_of(run)  # found from the top-level run
    (leader,) = child_of(run.id, "lead")
    (calc,) = child_of(run.id, "calc")
    assert interrupt.run_id == calc.id and interrupt.root_run_id == run.id
    assert {leader.status, calc.status} == {RunStatus.INTERRUPTED}
    (paused,) = interrupt_events(run.id)
    assert [i["id"] for i in paused["interrupts"]] == [str(interrupt.id)]  # the star's stream shows it

    interrupts.resolve(interrupt.id, "approve", run_id=run.id)
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "42" in run.output
    assert len(child_of(run.id, "lead")) == 1 and len(child_of(run.id, "calc")) == 1  # nothing started twice
    assert calculator_results([c.id for c in children(run.id)]) == ["42"]
    for run_id in (run.id, leader.id, calc.id):
        assert_gapless_log(run_id)
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]
    assert len(conversation(star.id, run.id)) == len(set(conversation(star.id, run.id)))  # no message twice


def test_a_leader_that_waits_pauses_the_star():
    star = make_team(approval_agent(), {})
    run = start_star(star)
    interrupts.resolve(pending_of(run).id, "edit", arguments={"expression": "2*3"}, run_id=run.id)

    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED and "6" in run.output


def test_broadcast_pauses_once_every_member_has_stopped_and_replays_the_others():
    star = make_team(worker("summary"), {"calc": approval_agent(), "fast": worker("FAST")}, mode="broadcast")
    run = start_star(star)

    assert run.status == RunStatus.INTERRUPTED
    (fast,) = child_of(run.id, "fast")
    assert fast.status == RunStatus.SUCCEEDED  # it finished before the star paused
    interrupts.resolve(pending_of(run).id, "approve")
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert len(child_of(run.id, "fast")) == 1 and len(child_of(run.id, "calc")) == 1
    assert len(child_of(run.id, "lead")) == 1  # the leader's synthesis ran once, after the resume
    messages = conversation(star.id, run.id)
    assert len(messages) == len(set(messages))


def test_cancelling_a_paused_star_ends_every_run_below_it():
    star = make_team(delegating_leader(("calc", "what is 6*7?")), {"calc": approval_agent()})
    run = start_star(star)
    interrupt = pending_of(run)

    run_services.cancel_run(run.id)

    assert Run.objects.get(id=run.id).status == RunStatus.CANCELLED
    assert {c.status for c in children(run.id)} == {RunStatus.CANCELLED}
    assert Interrupt.objects.get(id=interrupt.id).status == "cancelled"
