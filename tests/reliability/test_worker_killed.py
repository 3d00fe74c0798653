"""A worker killed during runs: SIGKILL one of two ``celery worker`` processes while 100 runs with
1-3 s of scripted latency are in flight.

The killed worker's runs keep ``running`` until their lease expires (``ASTEROS_LEASE_SECONDS=3``
here); the survivor's reaper then re-queues those that may run again and fails the others with
``worker_lost``. Every run ends within the lease plus a margin; each event log stays contiguous
with exactly one final event, and a re-run continues its log instead of starting a second one.
"""

from __future__ import annotations

import time

from cosmos.models import Run, RunStatus
from cosmos.runtime.events import closing_events
from cosmos.services import runs as run_services
from tests.support.runs import dispatch_to_broker, wait_for_runs
from tests.support.workers import WorkerProcess

from .faults import FAULT_TEST_MARKS, LONGEST_RUN_SECONDS, assert_clean_run, latency_agents, report, stored

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
RUNS = 100
ONE_ATTEMPT_EVERY = 5  # every fifth run has max_attempts = 1: it must fail, not re-run
RECOVERY_MARGIN_SECONDS = 20  # on top of the lease and one more run: a loaded 2-core machine


def test_a_worker_killed_during_100_runs(redis_server, record_property):
    env = {"REDIS_URL": redis_server.url, "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}
    workers = [WorkerProcess(concurrency=RUNS, env=env).spawn() for _ in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        agents = latency_agents()
        run_ids = [
            run_services.start_run("agent", agents[i % len(agents)].id, f"job {i}", dispatch=False)[0].id
            for i in range(RUNS)
        ]
        one_attempt = set(run_ids[::ONE_ATTEMPT_EVERY])
        Run.objects.filter(id__in=one_attempt).update(max_attempts=1)
        dispatch_to_broker(run_ids, redis_server.url)
        # Every run claimed by a worker (none left in a broker queue), then kill the busier one.
        wait_for_runs(run_ids, statuses=(RunStatus.RUNNING, RunStatus.SUCCEEDED), timeout=30)
        running = Run.objects.filter(id__in=run_ids, status=RunStatus.RUNNING)
        victim = max(workers, key=lambda w: running.filter(worker_id__startswith=w.engine_id_prefix).count())

        victim.kill()
        killed_at = time.monotonic()
        # Frozen from here on: nobody touches the dead worker's runs before their lease expires.
        in_flight = dict(running.values_list("id", "worker_id"))
        orphaned = {run_id for run_id, worker_id in in_flight.items() if worker_id.startswith(victim.engine_id_prefix)}
        logs_at_kill = {run_id: stored(run_id) for run_id in orphaned}

        runs = wait_for_runs(run_ids, timeout=LEASE_SECONDS + LONGEST_RUN_SECONDS + RECOVERY_MARGIN_SECONDS)
        recovered_in = time.monotonic() - killed_at
    finally:
        for worker in workers:
            worker.close()

    assert orphaned, "the killed worker had no run in flight: nothing was tested"
    rerun = failed = events = cut_mid_stream = 0
    for run in runs:
        events += assert_clean_run(run)
        log = stored(run.id)
        types = [event["type"] for _, event in log]
        assert types.count("RUN_STARTED") == 1, types
        assert closing_events(event for _, event in log) == [], types  # every stream well formed
        if run.id not in orphaned:
            assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 1), run
            assert "CUSTOM" not in types
            continue
        # The log written before the kill is kept as it was and continued, never restarted.
        before = logs_at_kill[run.id]
        assert log[: len(before)] == before
        after = [event for _, event in log[len(before) :]]
        if run.id in one_attempt:
            assert (run.status, run.attempts, run.error["code"]) == (RunStatus.FAILED, 1, "worker_lost"), run
            closers = [e["type"] for e in closing_events(event for _, event in before)]
            assert [e["type"] for e in after] == ([*closers, "RUN_ERROR"] if before else ["RUN_STARTED", "RUN_ERROR"])
            failed += 1
        else:
            assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run
            assert not run.worker_id.startswith(victim.engine_id_prefix)  # re-run by a live worker
            if before:  # the second attempt closes what the first left open, then marks where it took over
                closers = closing_events(event for _, event in before)
                assert after[: len(closers)] == closers, after
                marker = after[len(closers)]
                assert marker == {"type": "CUSTOM", "name": "asteros.retry", "value": {"attempt": 2}}, marker
                cut_mid_stream += bool(closers)
            else:  # the first attempt died before its first event was stored
                assert after[0]["type"] == "RUN_STARTED"
            rerun += 1
    assert rerun and failed, f"both policies must have been exercised (re-run {rerun}, failed {failed})"
    report(
        record_property,
        "a worker killed during runs",
        runs=RUNS,
        in_flight_at_kill=len(in_flight),
        on_killed_worker=len(orphaned),
        rerun_and_succeeded=rerun,
        rerun_after_a_cut_mid_stream=cut_mid_stream,
        failed_worker_lost=failed,
        lost=0,
        events_checked=events,
        lease_seconds=LEASE_SECONDS,
        all_terminal_after_kill_s=round(recovered_in, 1),
    )
