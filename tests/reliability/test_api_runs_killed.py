"""An API process that executes the runs it accepts (``ASTEROS_API_RUNS``, the fast path in
distributed mode) is killed while they run.

Each run is inserted already claimed by the API's engine, with its lease, and never reaches the
broker. The process gets SIGKILL mid-run; a worker started afterwards finds the runs ``running``
under a lease nobody renews, re-queues them when it expires, and runs them again: each ends
succeeded on its second attempt, its log continued, never restarted, nothing lost.
"""

from __future__ import annotations

import socket
import time

import httpx

from cosmos.models import Run, RunStatus
from tests.support.runs import wait_for_runs
from tests.support.servers import ApiProcess
from tests.support.workers import WorkerProcess

from .faults import FAULT_TEST_MARKS, LONGEST_RUN_SECONDS, assert_clean_run, latency_agents, report, stored

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
RUNS = 6
RECOVERY_MARGIN_SECONDS = 30  # on top of the lease and one more run: a loaded 2-core machine


def test_an_api_process_killed_with_the_runs_it_executes(redis_server, record_property):
    env = {"REDIS_URL": redis_server.url, "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS), "ASTEROS_API_RUNS": "1"}
    api = ApiProcess(env=env)
    worker = WorkerProcess(concurrency=RUNS, env=env)
    try:
        api.start()
        api_engine = f"{socket.gethostname()}:{api.process.pid}:"
        quick = latency_agents(ttft_ms=0, reply_tokens=2)[0]
        done = httpx.post(f"{api.url}/api/agents/{quick.id}/run?wait=30", json={"input": "hi"}, timeout=40).json()
        assert done["status"] == "succeeded" and done["worker_id"].startswith(api_engine), done

        agents = latency_agents()
        accepted = [
            httpx.post(f"{api.url}/api/agents/{agents[i % len(agents)].id}/run", json={"input": f"run {i}"}, timeout=10)
            for i in range(RUNS)
        ]
        assert all(response.status_code == 202 for response in accepted), [r.text for r in accepted]
        run_ids = [response.json()["id"] for response in accepted]
        assert all(response.json()["status"] == "running" for response in accepted)  # claimed at once
        deadline = time.monotonic() + 30
        while not all(stored(run_id) for run_id in run_ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        api.kill()
        killed_at = time.monotonic()
        at_kill = {str(run.id): run for run in Run.objects.filter(id__in=run_ids)}
        logs_at_kill = {run_id: stored(run_id) for run_id in run_ids}
        worker.spawn().wait_ready()
        runs = wait_for_runs(run_ids, timeout=LEASE_SECONDS + LONGEST_RUN_SECONDS + RECOVERY_MARGIN_SECONDS)
        recovered_in = time.monotonic() - killed_at
    finally:
        api.close()
        worker.close()

    orphaned = [run_id for run_id, run in at_kill.items() if run.status == RunStatus.RUNNING]
    assert orphaned, "every run had ended before the kill: nothing was tested"
    assert all(run.worker_id.startswith(api_engine) for run in at_kill.values())
    events = 0
    for run in runs:
        events += assert_clean_run(run)
        log = stored(run.id)
        types = [event["type"] for _, event in log]
        assert types.count("RUN_STARTED") == 1, types
        assert log[: len(logs_at_kill[str(run.id)])] == logs_at_kill[str(run.id)]  # continued, not restarted
        if str(run.id) in orphaned:
            assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), (run.status, run.attempts, run.error)
            assert not run.worker_id.startswith(api_engine)
        else:
            assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1)
    report(
        record_property,
        "An API process killed with the runs it executes",
        runs=RUNS,
        runs_in_flight_at_kill=len(orphaned),
        all_done_after_kill_s=round(recovered_in, 1),
        events_checked=events,
    )
