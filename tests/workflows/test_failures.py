"""When steps fail: the run names the step, retries and timeouts apply per step,
``continue_on_error`` goes on, and cancelling a workflow cancels every run below it."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from cosmos.models import Run, RunStatus
from cosmos.services import runs as run_services
from tests.factories import make_workflow
from tests.support.runs import events, wait_for_children, wait_for_run
from tests.workflows.helpers import (
    child_of_step,
    children,
    final_state,
    in_process_functions,
    run_workflow,
    scripted,
    start,
)
from workflows.functions import function_registry, workflow_function

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]

CALLS: Counter[str] = Counter()


@workflow_function(name="tests_flaky")
def flaky(context, fail_times: int) -> str:
    """Fails ``fail_times`` times per run, then answers."""
    CALLS[context.run_id] += 1
    if CALLS[context.run_id] <= fail_times:
        raise ConnectionError(f"attempt {CALLS[context.run_id]} failed")
    return f"ok after {CALLS[context.run_id]}"


@workflow_function(name="tests_sleep")
async def sleep(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@pytest.fixture(scope="module", autouse=True)
def _unregister():
    yield
    function_registry.unregister("tests_flaky")
    function_registry.unregister("tests_sleep")


def agent_step(name: str, agent, **fields) -> dict:
    return {"name": name, "type": "agent", "agent": agent.id, **fields}


def test_a_failing_step_fails_the_workflow_naming_the_step():
    ok, failing = scripted("fine"), scripted(fail="The model is down.")
    run = run_workflow({"steps": [agent_step("first", ok), agent_step("broken", failing), agent_step("never", ok)]})

    assert run.status == RunStatus.FAILED
    assert run.error == {"code": "step_failed", "message": "Step 'broken' failed: The model is down."}
    assert [c.metadata["workflow_step"] for c in children(run)] == ["first", "broken"]
    assert events(run.id)[-1] == {"type": "RUN_ERROR", "message": run.error["message"], "code": "step_failed"}
    steps = final_state(run.id)["steps"]
    assert (steps["broken"]["status"], steps["broken"]["error"], steps["never"]["status"]) == (
        "failed",
        "The model is down.",
        "pending",
    )


def test_continue_on_error_goes_on_with_the_previous_output():
    ok, failing = scripted("{input}"), scripted(fail="boom")
    run = run_workflow(
        {
            "steps": [
                agent_step("broken", failing, continue_on_error=True),
                agent_step("after", ok, prompt="{{ previous }}|{{ steps.broken.status }}|{{ steps.broken.error }}"),
            ]
        },
        "in",
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "in|failed|boom"


def test_a_failure_deep_inside_names_the_innermost_step_and_where_it_was():
    failing = scripted(fail="boom")
    loop = {"name": "rounds", "type": "loop", "max_iterations": 2, "steps": [agent_step("inner", failing)]}
    run = run_workflow({"steps": [{"name": "fan", "type": "parallel", "branches": [loop]}]})
    assert run.error["message"] == "Step 'inner' failed: boom (in 'fan' > 'rounds')"


def test_a_nested_workflow_failure_names_both_steps():
    inner = make_workflow(definition={"steps": [agent_step("deep", scripted(fail="boom"))]})
    run = run_workflow({"steps": [{"name": "nested", "type": "workflow", "workflow": inner.id}]})
    assert run.error["message"] == "Step 'nested' failed: Step 'deep' failed: boom"


@in_process_functions
def test_retry_until_a_step_succeeds():
    step = {"name": "flaky", "type": "function", "function": "tests_flaky", "args": {"fail_times": 2}}
    run = run_workflow({"steps": [{**step, "retry": {"max_attempts": 3}}]})

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "ok after 3"
    assert final_state(run.id)["steps"]["flaky"] == {"status": "succeeded", "attempts": 3, "output": "ok after 3"}
    deltas = [op for e in events(run.id) if e["type"] == "STATE_DELTA" for op in e["delta"]]
    assert {"op": "add", "path": "/steps/flaky/error", "value": "ConnectionError: attempt 1 failed"} in deltas


def test_retries_run_a_fresh_child_each_time_and_wait_between_attempts():
    failing = scripted(fail="boom")
    run = run_workflow({"steps": [agent_step("broken", failing, retry={"max_attempts": 3, "backoff_seconds": 0.2})]})

    assert run.status == RunStatus.FAILED
    assert run.error["message"] == "Step 'broken' failed: boom"
    attempts = children(run)
    assert [(c.status, c.metadata["attempt"]) for c in attempts] == [("failed", 1), ("failed", 2), ("failed", 3)]
    # backoff 0.2s, then twice that: each attempt starts at least that long after the last one ended
    assert attempts[1].created_at - attempts[0].finished_at >= timedelta(seconds=0.2)
    assert attempts[2].created_at - attempts[1].finished_at >= timedelta(seconds=0.4)


def test_an_agent_step_times_out():
    slow = scripted(ttft_ms=20_000)
    run = run_workflow(
        {"steps": [agent_step("slow", slow, timeout_seconds=0.3, retry={"max_attempts": 2})]}, timeout=15
    )

    assert run.status == RunStatus.FAILED
    assert run.error["message"] == "Step 'slow' failed: timed out after 0.3s."
    assert [(c.status, c.error["code"]) for c in children(run)] == [("failed", "timeout"), ("failed", "timeout")]


@in_process_functions
def test_a_function_step_times_out():
    step = {
        "name": "nap",
        "type": "function",
        "function": "tests_sleep",
        "args": {"seconds": 20},
        "timeout_seconds": 0.2,
    }
    run = run_workflow({"steps": [step]}, timeout=15)
    assert run.error["message"] == "Step 'nap' failed: timed out after 0.2s."


def test_a_composite_step_timeout_cancels_its_children():
    slow = scripted(ttft_ms=20_000)
    fan = {
        "name": "fan",
        "type": "parallel",
        "timeout_seconds": 0.5,
        "branches": [agent_step("a", slow), agent_step("b", slow)],
    }
    run = run_workflow({"steps": [fan]}, timeout=15)

    assert run.error["message"] == "Step 'fan' failed: timed out after 0.5s."
    assert {c.status for c in children(run)} == {RunStatus.CANCELLED}
    assert {e["stepName"] for e in events(run.id) if e["type"] == "SUBAGENT_ERROR"} == {"a", "b"}


def test_cancelling_a_workflow_cancels_its_children_and_their_children():
    slow = scripted(ttft_ms=30_000)
    inner = make_workflow(definition={"steps": [agent_step("deep", slow)]})
    fan = {
        "name": "fan",
        "type": "parallel",
        "branches": [agent_step("direct", slow), {"name": "nested", "type": "workflow", "workflow": inner.id}],
    }
    run = start({"steps": [fan]})
    direct_and_nested = wait_for_children(run.id, 2, statuses=["running"], timeout=15)
    nested = next(c for c in direct_and_nested if c.kind == "workflow")
    (deep,) = wait_for_children(nested.id, 1, statuses=["running"], timeout=15)

    run_services.cancel_run(run.id)
    run = wait_for_run(run.id, 15)

    assert run.status == RunStatus.CANCELLED
    for child in [*direct_and_nested, deep]:
        assert wait_for_run(child.id, 15).status == RunStatus.CANCELLED
    assert events(run.id)[-1]["outcome"] == "cancelled"
    assert not Run.objects.filter(status__in=["queued", "running"]).exists()


def test_cancelling_a_child_fails_its_step():
    slow = scripted(ttft_ms=30_000)
    run = start({"steps": [agent_step("slow", slow, retry={"max_attempts": 3})]})
    (child,) = wait_for_children(run.id, 1, statuses=["running"], timeout=15)

    run_services.cancel_run(child.id)
    run = wait_for_run(run.id, 15)

    assert run.status == RunStatus.FAILED
    assert run.error["message"] == "Step 'slow' failed: its agent run was cancelled."
    assert len(child_of_step(run, "slow")) == 1  # a cancelled child is not retried


def test_a_step_whose_agent_was_disabled_fails_clearly():
    agent = scripted()
    run = start({"steps": [agent_step("a", scripted(ttft_ms=1500)), agent_step("b", agent)]})
    type(agent).objects.filter(id=agent.id).update(enabled=False)
    run = wait_for_run(run.id, 15)

    assert run.status == RunStatus.FAILED
    assert (
        run.error["message"] == f"Step 'b' failed: could not start agent {agent.id!r}: Agent {agent.id!r} is disabled."
    )
