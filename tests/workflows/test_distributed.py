"""Distributed mode: a workflow executed by a ``celery worker`` process, followed from this one."""

from __future__ import annotations

import asyncio
import os

import pytest

from cosmos.eventlog import follow
from cosmos.models import Run, RunEvent, RunStatus
from cosmos.services import runs as run_services
from tests.factories import make_workflow
from tests.support.workers import WorkerProcess
from tests.workflows.helpers import scripted

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    process = WorkerProcess().start()
    yield process
    process.close()


async def collect(run_id) -> list[tuple[int, dict]]:
    return [item async for item in follow(str(run_id))]


def test_a_workflow_run_in_a_worker_is_followed_from_this_process(worker):
    research, writer = scripted("NOTES[{input}]", ttft_ms=100), scripted("TEXT[{input}]", ttft_ms=100)
    workflow = make_workflow(
        definition={
            "steps": [
                {"name": "research", "type": "agent", "agent": research.id},
                {
                    "name": "fan",
                    "type": "parallel",
                    "branches": [
                        {"name": "write", "type": "agent", "agent": writer.id, "prompt": "{{ steps.research.output }}"},
                        {"name": "count", "type": "function", "function": "join", "args": {"items": ["{{ input }}"]}},
                    ],
                },
            ],
            "output": "{{ steps.write.output }}",
        }
    )
    run, _ = run_services.start_run("workflow", workflow.id, "eels")

    seen = asyncio.run(asyncio.wait_for(collect(run.id), 60))

    stored = [(e.seq, e.data) for e in RunEvent.objects.filter(run_id=run.id).order_by("seq")]
    assert seen == stored  # nothing lost, nothing repeated
    types = [event["type"] for _, event in seen]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    assert [e["stepName"] for _, e in seen if e["type"] == "STEP_STARTED"][:2] == ["research", "fan"]
    assert "STATE_SNAPSHOT" in types and "STATE_DELTA" in types
    run = Run.objects.get(id=run.id)
    assert (run.status, run.output) == (RunStatus.SUCCEEDED, "TEXT[NOTES[eels]]")
    # Executed by a worker process (this one, or the session's shared worker), never by this process;
    # the steps' child runs ran in the same worker as the workflow.
    assert run.worker_id.split(":")[1] != str(os.getpid())
    assert {c.worker_id for c in Run.objects.filter(parent=run)} == {run.worker_id}
