"""Helpers for the workflow tests: scripted agents, running a definition, reading its state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonpatch
import pytest

from cosmos.models import Agent, Run
from cosmos.services import runs as run_services
from tests.factories import make_agent, make_workflow
from tests.support.runs import events, wait_for_run


def scripted(reply: str = "{input}", **parameters: Any) -> Agent:
    """An offline agent whose reply is ``reply`` with ``{input}`` replaced by its prompt."""
    return make_agent(parameters={"reply": reply, **parameters})


def start(definition: dict, message: Any = "topic", **fields: Any) -> Run:
    workflow = make_workflow(definition=definition, **fields)
    run, _ = run_services.start_run("workflow", workflow.id, message)
    return run


def run_workflow(definition: dict, message: Any = "topic", timeout: float = 30) -> Run:
    """Save the definition as a workflow, run it through the worker, and return the run once terminal."""
    return wait_for_run(start(definition, message).id, timeout)


def children(run: Run, **filters: Any) -> list[Run]:
    return list(Run.objects.filter(parent_id=run.id, **filters).order_by("created_at"))


def child_of_step(run: Run, step: str) -> list[Run]:
    return [c for c in children(run) if c.metadata.get("workflow_step") == step]


def final_state(run_id: Any) -> dict:
    """The workflow state a client ends with: the STATE_SNAPSHOT with every STATE_DELTA applied."""
    state: dict | None = None
    for event in events(run_id):
        if event["type"] == "STATE_SNAPSHOT":
            state = event["snapshot"]
        elif event["type"] == "STATE_DELTA":
            assert state is not None, "a STATE_DELTA came before the STATE_SNAPSHOT"
            state = jsonpatch.apply_patch(state, event["delta"])
    assert state is not None, "no STATE_SNAPSHOT"
    return state


def step_events(run_id: Any) -> list[tuple[str, str]]:
    return [(e["type"], e["stepName"]) for e in events(run_id) if e["type"] in ("STEP_STARTED", "STEP_FINISHED")]


def max_overlap(runs: Iterable[Run]) -> int:
    """The most runs that were executing at the same instant (a run ending as one starts does not count)."""
    points = []
    for run in runs:
        assert run.started_at and run.finished_at, run
        points += [(run.started_at, 1), (run.finished_at, -1)]
    points.sort(key=lambda p: (p[0], p[1]))  # at equal times, an end comes before a start
    current = highest = 0
    for _, change in points:
        current += change
        highest = max(highest, current)
    return highest


def _distributed() -> bool:
    from django.conf import settings

    return settings.ASTEROS.distributed


# Functions registered by a test module exist in the test process only; in distributed mode the
# runs execute in a separate ``celery worker`` process, which never imported them.
in_process_functions = pytest.mark.skipif(
    _distributed(),
    reason="registers a workflow function in the test process; the distributed worker process does not have it",
)
