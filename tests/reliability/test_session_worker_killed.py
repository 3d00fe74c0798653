"""A long session and a worker killed in the middle of it.

200 runs posted to one ``enqueue`` session and 20 unrelated runs, on two ``celery worker``
processes of 10 slots each. Every message is in the broker from the start (as if every run had
been dispatched: a worker must refuse a session run whose turn has not come, not wait in its
slot). Once a quarter of the session is done, the worker running the session's current run gets
SIGKILL, and 10 more unrelated runs are posted.

Must hold: every run ends; the session's runs run one at a time, in the order they were posted
(each starts after the one before it ended, by its row and by its events); the killed run is run
again by the survivor once its lease expires; the unrelated runs all finish while the session is
still draining (a session holds one slot at most, so it starves nobody).
"""

from __future__ import annotations

import itertools
import time

from cosmos.models import Run, RunEvent, RunStatus
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.runs import dispatch_to_broker, wait_for_runs
from tests.support.workers import WorkerProcess

from .faults import FAULT_TEST_MARKS, assert_clean_run, report

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
SESSION_RUNS = 200
UNRELATED_BEFORE = 10
UNRELATED_AFTER = 10
SLOTS = 10
SESSION = "long-session"
DRAIN_TIMEOUT_SECONDS = 90


def test_a_session_of_200_runs_drains_in_order_through_a_killed_worker(redis_server, record_property):
    env = {"REDIS_URL": redis_server.url, "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}
    workers = [WorkerProcess(concurrency=SLOTS, env=env).spawn() for _ in range(2)]
    quick = make_agent(parameters={"ttft_ms": 20, "reply_tokens": 3})
    slow = make_agent(parameters={"ttft_ms": 1000, "reply_tokens": 3})
    try:
        for worker in workers:
            worker.wait_ready()
        session_ids = [
            run_services.start_run("agent", quick.id, f"turn {i}", session_id=SESSION, dispatch=False)[0].id
            for i in range(SESSION_RUNS)
        ]
        unrelated = [
            run_services.start_run("agent", slow.id, f"other {i}", dispatch=False)[0].id
            for i in range(UNRELATED_BEFORE)
        ]
        started = time.monotonic()
        dispatch_to_broker(session_ids + unrelated, redis_server.url)

        # A quarter of the session done: kill the worker that runs the session's current run.
        session = Run.objects.filter(id__in=session_ids)
        deadline = time.monotonic() + 60
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "the session made no progress"
            if session.filter(status=RunStatus.SUCCEEDED).count() >= SESSION_RUNS // 4:
                current = session.filter(status=RunStatus.RUNNING).values_list("id", "worker_id").first()
                if current is not None:
                    # Another worker on this database (the suite's own, in the distributed pass)
                    # may run a session head its reaper resent: kill only one of ours.
                    victim = next((w for w in workers if current[1].startswith(w.engine_id_prefix)), None)
                    killed_run = current[0]
            time.sleep(0.01)
        victim.kill()
        killed_at = time.monotonic()
        more = [
            run_services.start_run("agent", slow.id, f"after {i}", dispatch=False)[0].id for i in range(UNRELATED_AFTER)
        ]
        dispatch_to_broker(more, redis_server.url)
        unrelated += more

        # The unrelated runs end while the session still has runs to go.
        others = wait_for_runs(unrelated, timeout=DRAIN_TIMEOUT_SECONDS)
        unrelated_done = time.monotonic() - killed_at
        session_left = session.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).count()
        runs = wait_for_runs(session_ids, timeout=DRAIN_TIMEOUT_SECONDS)
        drained = time.monotonic()
    finally:
        for worker in workers:
            worker.close()

    assert session_left > 0, "the session was done before the unrelated runs: nothing was shown"
    assert all(run.status == RunStatus.SUCCEEDED for run in others), [r.status for r in others]
    events = 0
    by_id = {run.id: run for run in runs}
    ordered = [by_id[run_id] for run_id in session_ids]
    for run in ordered:
        assert run.status == RunStatus.SUCCEEDED, run
        events += assert_clean_run(run)
    assert by_id[killed_run].attempts == 2
    assert not by_id[killed_run].worker_id.startswith(victim.engine_id_prefix)
    # One at a time, in the order posted: by the rows, and by the events.
    for before, after in itertools.pairwise(ordered):
        assert before.finished_at <= after.started_at, (before.id, after.id)
        last_event = RunEvent.objects.filter(run=before).order_by("-seq").values_list("created_at", flat=True)[0]
        first_event = RunEvent.objects.filter(run=after).order_by("seq").values_list("created_at", flat=True)[0]
        assert last_event <= first_event, (before.id, after.id)
    report(
        record_property,
        "a session of 200 runs and a killed worker",
        session_runs=SESSION_RUNS,
        unrelated_runs=len(unrelated),
        worker_slots=f"2x{SLOTS}",
        killed_after_session_runs=SESSION_RUNS // 4,
        unrelated_done_after_kill_s=round(unrelated_done, 1),
        session_runs_left_then=session_left,
        session_drained_s=round(drained - started, 1),
        events_checked=events,
        lease_seconds=LEASE_SECONDS,
    )
