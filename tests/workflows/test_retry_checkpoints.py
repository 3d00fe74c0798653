"""A workflow run retried after its worker was lost keeps the steps whose child runs succeeded.

The worker's loss is made in this process (``lose_the_worker``: the engine stops the runs with no
final write and their leases run out), so these run in embedded mode; the kill -9 of a real
worker process is ``tests/reliability/test_steps_checkpointed.py``.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from cosmos.models import RunStatus
from cosmos.runtime.events import closing_events
from cosmos.services import leases
from tests.support.runs import assert_gapless, events, lose_the_worker, wait_for_child, wait_for_run
from tests.workflows.helpers import child_of_step, children, final_state, run_workflow, scripted, start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.skipif(
        settings.ASTEROS.distributed, reason="the worker's loss is made in this process's engine (embedded)"
    ),
]


def definition() -> dict:
    """Two iterations of a loop, then two parallel branches, a quick one and a slow one (the
    worker is lost while the slow one runs), then a last step."""
    draft = scripted("DRAFT[{input}]")
    quick = scripted("QUICK[{input}]")
    slow = scripted("SLOW[{input}]", ttft_ms=1500)
    final = scripted("FINAL[{input}]")
    loop = {
        "name": "drafts",
        "type": "loop",
        "max_iterations": 2,
        "steps": [{"name": "draft", "type": "agent", "agent": draft.id, "prompt": "{{ loop.iteration }}: {{ input }}"}],
    }
    branches = [
        {"name": "quick", "type": "agent", "agent": quick.id, "prompt": "{{ previous }}"},
        {"name": "slow", "type": "agent", "agent": slow.id, "prompt": "{{ previous }}"},
    ]
    both = "{{ steps.quick.output }} {{ steps.slow.output }}"
    last = {"name": "final", "type": "agent", "agent": final.id, "prompt": both}
    return {"steps": [loop, {"name": "fan", "type": "parallel", "branches": branches}, last]}


def wait_all(runs: list) -> list:
    return [wait_for_run(run.id, timeout=20) for run in runs]


def test_a_retried_workflow_reuses_the_steps_that_succeeded_and_reruns_the_rest():
    steps = definition()
    uninterrupted = run_workflow(steps, "topic")
    assert uninterrupted.status == RunStatus.SUCCEEDED, uninterrupted.error

    run = start(steps, "topic")
    wait_for_child(run.id, workflow_step="slow")
    drafts = child_of_step(run, "draft")
    done = [*drafts, *child_of_step(run, "quick")]
    assert [c.status for c in wait_all(done)] == [RunStatus.SUCCEEDED] * 3
    lose_the_worker(run.id)
    leases.reap_expired_runs()
    run = wait_for_run(run.id, timeout=30)

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    assert run.output == uninterrupted.output
    outputs = {name: step.get("output") for name, step in final_state(run.id)["steps"].items()}
    assert outputs == {name: step.get("output") for name, step in final_state(uninterrupted.id)["steps"].items()}
    # The drafts and the quick branch ran once, in the lost attempt; the slow branch ran
    # again; the last step once.
    assert [c.id for c in [*child_of_step(run, "draft"), *child_of_step(run, "quick")]] == [c.id for c in done]
    assert [c.status for c in child_of_step(run, "slow")][-1] == RunStatus.SUCCEEDED
    assert (len(child_of_step(run, "slow")), len(child_of_step(run, "final"))) == (2, 1)
    logged = events(run.id)
    reused = [e["runId"] for e in logged if e["type"] == "SUBAGENT_STARTED" and e.get("reused")]
    assert sorted(reused) == sorted(str(c.id) for c in done)
    assert closing_events(logged) == []  # the lost attempt's open steps and subagents were closed
    for each in [run, *children(run)]:
        assert_gapless(each.id)
