"""A workflow step whose child run waits for a person pauses the workflow run; it resumes at
that step, whose child goes on from its pause (no step before it runs again)."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus
from cosmos.services import interrupts
from tests.support.interrupts import approval_agent, assert_gapless_log, interrupt_events
from tests.support.runs import wait_for_run
from tests.workflows.helpers import child_of_step, children, scripted, start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def test_an_agent_step_that_waits_pauses_the_workflow_and_resumes_at_that_step():
    first, calc = scripted("first: {input}"), approval_agent()
    definition = {
        "steps": [
            {"name": "first", "type": "agent", "agent": first.id},
            {"name": "calc", "type": "agent", "agent": calc.id, "prompt": "what is 6*7?"},
            {"name": "last", "type": "agent", "agent": first.id, "prompt": "{{ steps.calc.output }}"},
        ]
    }
    run = wait_for_run(start(definition).id, statuses=["interrupted"])
    (interrupt,) = interrupts.pending_interrupts(run.id)
    (paused_child,) = child_of_step(run, "calc")
    assert interrupt.run_id == paused_child.id and paused_child.status == RunStatus.INTERRUPTED

    interrupts.resolve(interrupt.id, "approve", run_id=run.id)
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "first: The result is 42."
    assert [len(child_of_step(run, step)) for step in ("first", "calc", "last")] == [1, 1, 1]
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]
    for child in [run, *children(run)]:
        assert_gapless_log(child.id)


def test_a_step_inside_a_branch_cannot_wait_and_fails_clearly():
    calc = approval_agent()
    definition = {
        "steps": [
            {
                "name": "fan",
                "type": "parallel",
                "branches": [{"name": "calc", "type": "agent", "agent": calc.id, "prompt": "what is 6*7?"}],
            }
        ]
    }
    run = wait_for_run(start(definition).id)

    assert run.status == RunStatus.FAILED
    assert "only a top-level step can wait" in run.error["message"]
    (child,) = child_of_step(run, "calc")
    assert wait_for_run(child.id).status == RunStatus.CANCELLED
