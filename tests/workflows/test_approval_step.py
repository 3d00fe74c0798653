"""The ``approval`` step: a human gate that pauses the workflow run with the data so far, then
goes on from there (the steps before it are not run again) or fails the step when rejected."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus
from cosmos.services import interrupts
from tests.support.interrupts import assert_gapless_log, interrupt_events, the_interrupt
from tests.support.runs import wait_for_run
from tests.workflows.helpers import child_of_step, final_state, scripted, start
from workflows.validation import validate_definition

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def gated(**gate) -> dict:
    draft, publish = scripted("draft about {input}"), scripted("published: {input}")
    return {
        "steps": [
            {"name": "draft", "type": "agent", "agent": draft.id},
            {"name": "gate", "type": "approval", "message": "Publish {{ steps.draft.output }}?", **gate},
            {"name": "publish", "type": "agent", "agent": publish.id, "prompt": "{{ steps.draft.output }}"},
        ]
    }


def test_the_gate_pauses_with_the_data_so_far_and_approval_goes_on_without_redoing_earlier_steps():
    run = wait_for_run(start(gated(), "tea").id, statuses=["interrupted"])
    interrupt = the_interrupt(run.id)

    assert interrupt.kind == "approval"
    assert interrupt.request["step"] == "gate" and interrupt.request["message"] == "Publish draft about tea?"
    assert interrupt.request["data"]["previous"] == "draft about tea"
    assert final_state(run.id)["steps"]["gate"]["status"] == "waiting"

    interrupts.resolve(interrupt.id, "approve", message="ship it", resolved_by="editor")
    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "published: draft about tea"
    assert len(child_of_step(run, "draft")) == 1 and len(child_of_step(run, "publish")) == 1
    state = final_state(run.id)
    assert state["steps"]["gate"] == {
        "status": "succeeded",
        "attempts": 1,
        "output": {"approved": True, "message": "ship it"},
    }
    assert [v["status"] for v in interrupt_events(run.id)] == ["pending", "resumed"]
    assert_gapless_log(run.id)


def test_a_rejected_gate_fails_the_run_naming_the_step_and_the_reason():
    run = wait_for_run(start(gated(), "tea").id, statuses=["interrupted"])
    interrupts.resolve(the_interrupt(run.id).id, "reject", message="off topic")

    run = wait_for_run(run.id)

    assert run.status == RunStatus.FAILED
    assert run.error["code"] == "step_failed" and "off topic" in run.error["message"]
    assert child_of_step(run, "publish") == []


def test_a_rejected_gate_with_continue_on_error_goes_on():
    run = wait_for_run(start(gated(continue_on_error=True), "tea").id, statuses=["interrupted"])
    interrupts.resolve(the_interrupt(run.id).id, "reject")

    run = wait_for_run(run.id)

    assert run.status == RunStatus.SUCCEEDED and final_state(run.id)["steps"]["gate"]["status"] == "failed"


def test_the_gate_shows_the_data_it_is_given():
    run = wait_for_run(
        start(gated(data={"draft": "{{ steps.draft.output }}", "n": 2}), "tea").id, statuses=["interrupted"]
    )

    assert the_interrupt(run.id).request["data"] == {"draft": "draft about tea", "n": 2}


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ({"name": "gate", "type": "approval"}, "needs a 'message'"),
        ({"name": "gate", "type": "approval", "message": "ok?", "retry": {"max_attempts": 2}}, "no 'retry'"),
        ({"name": "gate", "type": "approval", "message": "{{ steps.nope.output }}"}, "nope"),
        (
            {
                "name": "loop",
                "type": "loop",
                "max_iterations": 2,
                "steps": [{"name": "g", "type": "approval", "message": "ok?"}],
            },
            "top-level step",
        ),
    ],
)
def test_a_malformed_gate_is_refused(step, problem):
    errors = validate_definition({"steps": [step]})

    assert any(problem in error for error in errors), errors
