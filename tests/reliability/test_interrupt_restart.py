"""Every process restarted while a run waits for a person.

A real ``celery worker`` and an API process (``manage.py asteros serve``) run on PostgreSQL and
Redis. A run stops for an approval of a tool that records each of its calls in a file (the
worker imports it: ``-I tests.reliability.recorded_tool``). While it waits, the worker and the
API are stopped (SIGTERM, SIGKILL if they linger; or SIGKILL at once) and new ones started. The waiting run held
nothing, so nothing is lost: the new API shows it waiting, the approval arrives, a new worker
resumes it from its checkpoint, and it succeeds with one log (contiguous seqs, one RUN_STARTED)
and the tool run exactly once, by the new worker.

The approval goes to the new API process (``POST /api/runs/{id}/resume``), as a reviewer's
would. The worker and the API use this process's Redis.
"""

from __future__ import annotations

import time

import httpx
import pytest

from cosmos.models import Interrupt, RunEvent, RunStatus
from tests.factories import make_agent
from tests.support.runs import wait_for_run
from tests.support.servers import ApiProcess
from tests.support.streams import Followers
from tests.support.workers import WorkerProcess, the_queue_to_itself

from . import recorded_tool
from .faults import FAULT_TEST_MARKS, assert_clean_run, assert_followed_everything, report, stored

pytestmark = FAULT_TEST_MARKS

TOOL_MODULE = recorded_tool.__name__


def approving_agent():
    """Calls ``record_call`` once, after a person approves it, then answers."""
    rules = [{"when": ".", "call": recorded_tool.NAME, "arguments": {"note": "once"}}]
    return make_agent(tools=[recorded_tool.NAME], approvals={recorded_tool.NAME: "always"}, parameters={"rules": rules})


def stop_all(how: str, *processes) -> dict[str, float]:
    """SIGTERM every process (SIGKILL after 15 s), or SIGKILL at once; how long each took to go."""
    took = {}
    for name, process in processes:
        started = time.monotonic()
        process.stop() if how == "sigterm" else process.kill()
        took[name] = round(time.monotonic() - started, 1)
    return took


# A deploy (SIGTERM), and a crash of every machine at once (SIGKILL): a waiting run holds nothing
# either can lose.
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_a_waiting_run_survives_every_process_restarting(how, tmp_path, record_property):
    tool_log = str(tmp_path / "calls.jsonl")
    env = {recorded_tool.LOG_VARIABLE: tool_log}
    agent = approving_agent()
    old_worker = WorkerProcess(concurrency=4, env=env, include=(TOOL_MODULE,))
    new_worker = WorkerProcess(concurrency=4, env=env, include=(TOOL_MODULE,))
    api = ApiProcess(env=env)
    try:
        with the_queue_to_itself():
            old_worker.start()
            api.start()
            run = httpx.post(f"{api.url}/api/agents/{agent.id}/run", json={"input": "record it"}, timeout=10)
            assert run.status_code in (200, 201, 202), run.text
            run_id = run.json()["id"]
            paused = wait_for_run(run_id, statuses=[RunStatus.INTERRUPTED], timeout=60)
            assert paused.worker_id == "" and paused.lease_expires_at is None
            assert recorded_tool.recorded_calls(tool_log) == []  # held back until approved
            seqs_when_paused = RunEvent.objects.filter(run_id=run_id).count()

            stopped = stop_all(how, ("worker", old_worker), ("api", api))
            exit_codes = {"worker": old_worker.process.returncode, "api": api.process.returncode}
            new_worker.start()
            api.start()

            shown = httpx.get(f"{api.url}/api/runs/{run_id}", timeout=10).json()
            assert shown["status"] == RunStatus.INTERRUPTED, shown
            with Followers() as followers:
                client = followers.sse(run.json()["links"]["events"], timeout=60)
                client.wait_for_events(seqs_when_paused, timeout=30)  # the new API streams the waiting run
                (interrupt,) = Interrupt.objects.filter(run_id=run_id, status="pending")
                approved_at = time.monotonic()
                approval = {"interrupt_id": str(interrupt.id), "decision": "approve"}
                answer = httpx.post(f"{api.url}/api/runs/{run_id}/resume", json=approval, timeout=10)
                assert answer.status_code == 202, answer.text
                done = wait_for_run(run_id, timeout=60)
                resumed_in = time.monotonic() - approved_at
                followed = client.result(timeout=30)
    finally:
        api.close()
        old_worker.close()
        new_worker.close()

    assert done.status == RunStatus.SUCCEEDED, (done.status, done.error, new_worker.output()[-3000:])
    events_checked = assert_clean_run(done)  # seqs 1..N, one final event, no lease left
    types = [event["type"] for _, event in stored(run_id)]
    assert types.count("RUN_STARTED") == 1
    assert types.count("TOOL_CALL_RESULT") == 1
    calls = recorded_tool.recorded_calls(tool_log)
    assert calls == [{"pid": new_worker.process.pid, "note": "once"}], calls
    assert [e["value"]["status"] for _, e in stored(run_id) if e.get("name") == "asteros.interrupt"] == [
        "pending",
        "resumed",
    ]
    assert_followed_everything(followed, run_id)
    report(
        record_property,
        f"Every process restarted ({how}) while a run waits for a person",
        stop_seconds=stopped,
        exit_codes=exit_codes,
        resumed_and_done_after_approval_s=round(resumed_in, 1),
        tool_calls=len(calls),
        events_checked=events_checked,
    )
