"""Human in the loop at the core: a run pauses for a person, holds nothing while it waits, and
resumes where it stopped once every question of the pause has its decision."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cosmos.models import Interrupt, Run, RunEvent, RunStatus
from cosmos.services import interrupts, leases
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict, Invalid
from tests.support.interrupts import (
    approval_agent,
    assert_gapless_log,
    interrupt_events,
    question_agent,
    the_interrupt,
)
from tests.support.runs import wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def start(agent, text: str = "what is 6*7?", **options) -> Run:
    run, _ = run_services.start_run("agent", agent.id, text, **options)
    return wait_for_run(run.id, statuses=["interrupted", "succeeded", "failed"])


def tool_results(run_id) -> list[str]:
    return [
        e["content"]
        for e in RunEvent.objects.filter(run_id=run_id, type="TOOL_CALL_RESULT").values_list("data", flat=True)
    ]


def test_an_approval_pauses_the_run_with_nothing_held_then_approve_runs_the_call_once():
    run = start(approval_agent())

    assert run.status == RunStatus.INTERRUPTED
    assert run.worker_id == "" and run.lease_expires_at is None and run.finished_at is None
    interrupt = the_interrupt(run.id)
    assert interrupt.kind == "approval" and interrupt.root_run_id == run.id
    assert interrupt.request["tool"] == "calculator" and interrupt.request["arguments"] == {"expression": "6*7"}
    assert tool_results(run.id) == []  # held back
    (paused,) = interrupt_events(run.id)
    assert paused["status"] == "pending" and paused["interrupts"][0]["id"] == str(interrupt.id)
    assert leases.reap_expired_runs() == {
        "requeued": 0,
        "failed": 0,
        "resent": 0,
        "cancelled": 0,
    }  # the reaper leaves it be

    interrupts.resolve(interrupt.id, "approve", resolved_by="alice")
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "The result is 42."
    assert tool_results(run.id) == ["42"]
    events = assert_gapless_log(run.id)
    assert [e["type"] for e in events].count("RUN_STARTED") == 1
    assert not any(e.get("name") == "asteros.retry" for e in events)
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]
    interrupt.refresh_from_db()
    assert (interrupt.status, interrupt.decision, interrupt.resolved_by) == ("approved", "approve", "alice")


def test_edit_runs_the_call_with_the_new_arguments():
    run = start(approval_agent())
    interrupts.resolve(the_interrupt(run.id).id, "edit", arguments={"expression": "2*3"})

    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED and tool_results(run.id) == ["6"]


def test_reject_tells_the_model_why_and_the_run_goes_on():
    run = start(approval_agent())
    interrupts.resolve(the_interrupt(run.id).id, "reject", message="not today")

    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED
    (refused,) = tool_results(run.id)
    assert "refused" in refused and "not today" in refused
    assert Interrupt.objects.get(run=run).status == "rejected"


def test_a_rule_over_the_arguments_asks_only_when_it_holds():
    asked = start(approval_agent("expression == '6*7'"))
    not_asked = start(approval_agent("expression == '1+1'"))

    assert asked.status == RunStatus.INTERRUPTED
    assert not_asked.status == RunStatus.SUCCEEDED and tool_results(not_asked.id) == ["42"]


def test_ask_human_puts_the_answer_back_as_the_tool_result():
    run = start(question_agent("Which city?"), "plan my trip")
    interrupt = the_interrupt(run.id)
    assert interrupt.kind == "question" and interrupt.request["question"] == "Which city?"

    interrupts.resolve(interrupt.id, "answer", answer="Paris")
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED and tool_results(run.id) == ["Paris"]
    assert "Paris" in run.output


def test_an_answer_must_match_the_questions_schema():
    run = start(question_agent("How many?", schema={"type": "integer"}), "go")
    interrupt = the_interrupt(run.id)

    with pytest.raises(Invalid) as refused:
        interrupts.resolve(interrupt.id, "answer", answer="many")
    assert refused.value.code == "invalid_answer"
    interrupts.resolve(interrupt.id, "answer", answer=3)
    assert wait_for_run(run.id).status == RunStatus.SUCCEEDED and tool_results(run.id) == ["3"]


@pytest.mark.parametrize(
    ("decision", "options"),
    [("answer", {"answer": "x"}), ("edit", {}), ("edit", {"arguments": ["not", "an", "object"]}), ("maybe", {})],
)
def test_a_decision_the_interrupt_does_not_take_is_refused_and_changes_nothing(decision, options):
    run = start(approval_agent())
    interrupt = the_interrupt(run.id)

    with pytest.raises(Invalid):
        interrupts.resolve(interrupt.id, decision, **options)

    assert Run.objects.get(id=run.id).status == RunStatus.INTERRUPTED
    assert Interrupt.objects.get(id=interrupt.id).status == "pending"


def test_two_reviewers_at_once_one_wins_the_other_gets_a_conflict():
    run = start(approval_agent())
    interrupt = the_interrupt(run.id)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def review(decision: str) -> None:
        from django.db import connection

        barrier.wait()
        try:
            interrupts.resolve(interrupt.id, decision, resolved_by=decision)
            outcomes.append("won")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    reviewers = [threading.Thread(target=review, args=(d,)) for d in ("approve", "reject")]
    for reviewer in reviewers:
        reviewer.start()
    for reviewer in reviewers:
        reviewer.join(20)

    assert sorted(outcomes) == ["already_resolved", "won"]
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED
    assert len(tool_results(run.id)) == 1
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]


def test_cancel_ends_an_interrupted_run_and_withdraws_its_question():
    run = start(approval_agent())
    interrupt = the_interrupt(run.id)

    run_services.cancel_run(run.id)

    run = Run.objects.get(id=run.id)
    assert run.status == RunStatus.CANCELLED
    assert Interrupt.objects.get(id=interrupt.id).status == "cancelled"
    assert assert_gapless_log(run.id)[-1]["type"] == "RUN_FINISHED"
    with pytest.raises(Conflict) as late:
        interrupts.resolve(interrupt.id, "approve")
    assert late.value.code == "already_resolved"


def test_an_expired_approval_resolves_as_the_agent_says():
    rejecting = start(approval_agent(interrupt_timeout_seconds=60))
    approving = start(approval_agent(interrupt_timeout_seconds=60, on_interrupt_timeout="approve"))
    Interrupt.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert interrupts.expire_due() == 2

    assert "refused" in tool_results(wait_for_run(rejecting.id).id)[0]
    assert tool_results(wait_for_run(approving.id).id) == ["42"]
    assert set(Interrupt.objects.values_list("status", "resolved_by")) == {("expired", "timeout")}


def test_a_session_waits_behind_its_interrupted_run():
    agent = approval_agent()
    first = start(agent, session_id="s-waits")
    second, _ = run_services.start_run("agent", agent.id, "what is 1+1?", session_id="s-waits")

    assert Run.objects.get(id=second.id).status == RunStatus.QUEUED
    interrupts.resolve(the_interrupt(first.id).id, "approve")

    assert wait_for_run(first.id).status == RunStatus.SUCCEEDED
    assert wait_for_run(second.id, statuses=["interrupted"]).status == RunStatus.INTERRUPTED


def test_an_approval_rule_is_validated_on_the_agent():
    from django.core.exceptions import ValidationError

    from tests.factories import build_agent

    for approvals in ({"calculator": "amount >"}, {"calculator": 3}, ["calculator"]):
        with pytest.raises(ValidationError) as refused:
            build_agent(provider="scripted", tools=["calculator"], approvals=approvals).full_clean()
        assert "approvals" in refused.value.message_dict


def _distributed() -> bool:
    from django.conf import settings

    return settings.ASTEROS.distributed


@pytest.fixture
def refund_tool():
    """A tool that declares its own rule: refunds above 100 wait for a person."""
    from cosmos.runtime.tools import tool, tool_registry

    @tool(name="tests_refund", requires_approval="amount > 100")
    def refund(amount: float) -> str:
        """Refund an amount.

        Args:
            amount: How much.
        """
        return f"refunded {amount}"

    yield refund
    tool_registry.unregister("tests_refund")


def refund_agent(amount: int, **fields):
    from tests.factories import make_agent

    rules = [{"when": ".", "call": "tests_refund", "arguments": {"amount": amount}}]
    return make_agent(tools=["tests_refund"], parameters={"rules": rules}, **fields)


@pytest.mark.skipif(_distributed(), reason="registers a tool in the test process; the worker process does not have it")
def test_a_tool_declares_its_own_rule_and_an_agent_rule_overrides_it(refund_tool):
    large = start(refund_agent(250), "refund")
    small = start(refund_agent(50), "refund")
    trusted = start(refund_agent(250, approvals={"tests_refund": "never"}), "refund")

    assert large.status == RunStatus.INTERRUPTED
    assert the_interrupt(large.id).request == {
        "toolCallId": "call_0_0",
        "tool": "tests_refund",
        "arguments": {"amount": 250},
    }
    assert small.status == RunStatus.SUCCEEDED and tool_results(small.id) == ["refunded 50"]
    assert trusted.status == RunStatus.SUCCEEDED and tool_results(trusted.id) == ["refunded 250"]


def test_a_tool_rule_that_is_not_one_is_refused_when_the_tool_is_made():
    from cosmos.runtime.tools import tool

    with pytest.raises(ValueError, match="approval rule"):
        tool(lambda amount: amount, name="tests_bad_rule", register=False, requires_approval="amount >")


@pytest.mark.skipif(_distributed(), reason="the pause is announced in the worker process, not this one")
def test_a_pause_and_a_decision_are_announced_once_committed():
    requested, resolved = [], []

    def on_requested(sender, run, interrupts, **kwargs):
        requested.append((run.status, [i.status for i in interrupts]))

    def on_resolved(sender, interrupt, **kwargs):
        resolved.append((interrupt.status, interrupt.resolved_by))

    interrupts.interrupt_requested.connect(on_requested)
    interrupts.interrupt_resolved.connect(on_resolved)
    try:
        run = start(approval_agent())
        deadline = time.monotonic() + 10  # sent on the worker's commit, just after the status is visible
        while not requested and time.monotonic() < deadline:
            time.sleep(0.02)
        interrupts.resolve(the_interrupt(run.id).id, "approve", resolved_by="alice")
    finally:
        interrupts.interrupt_requested.disconnect(on_requested)
        interrupts.interrupt_resolved.disconnect(on_resolved)

    assert requested == [(RunStatus.INTERRUPTED, ["pending"])]
    assert resolved == [("approved", "alice")]


def _at_once(*calls) -> list[str]:
    """Run the calls in threads released together; each gives "won" or its Conflict's code."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = ["?"] * len(calls)

    def contend(index: int, call) -> None:
        barrier.wait()
        try:
            call()
            outcomes[index] = "won"
        except Conflict as exc:
            outcomes[index] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=contend, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return outcomes


def test_cancel_and_resolve_at_once_leave_one_consistent_ending():
    run = start(approval_agent())
    interrupt = the_interrupt(run.id)

    cancelled, approved = _at_once(
        lambda: run_services.cancel_run(run.id), lambda: interrupts.resolve(interrupt.id, "approve")
    )

    run = wait_for_run(run.id)
    interrupt.refresh_from_db()
    if approved == "won":
        # The resumed run may even have finished before the cancel reached it.
        assert interrupt.status == "approved" and run.status in (RunStatus.CANCELLED, RunStatus.SUCCEEDED)
        assert cancelled == ("won" if run.status == RunStatus.CANCELLED else "not_cancelable")
    else:
        assert (approved, cancelled, interrupt.status) == ("already_resolved", "won", "cancelled")
        assert run.status == RunStatus.CANCELLED and tool_results(run.id) == []
    events = assert_gapless_log(run.id)
    assert [e["type"] for e in events].count("RUN_FINISHED") == 1
    assert len(tool_results(run.id)) <= 1


def test_expiry_and_resolve_at_once_one_wins():
    run = start(approval_agent(interrupt_timeout_seconds=60))
    interrupt = the_interrupt(run.id)
    Interrupt.objects.filter(id=interrupt.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired: list[int] = []

    _, approved = _at_once(
        lambda: expired.append(interrupts.expire_due()), lambda: interrupts.resolve(interrupt.id, "approve")
    )

    run = wait_for_run(run.id)
    interrupt.refresh_from_db()
    if approved == "won":
        assert expired == [0] and interrupt.status == "approved" and tool_results(run.id) == ["42"]
    else:
        assert approved == "already_resolved" and expired == [1] and interrupt.status == "expired"
        assert "refused" in tool_results(run.id)[0]
    assert run.status == RunStatus.SUCCEEDED
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]
