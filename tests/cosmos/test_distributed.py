"""Distributed mode with real processes: PostgreSQL, Redis and ``celery worker`` subprocesses.

These are the promises of the run pipeline that only real processes can show: a run executed
in one process is followed from another, a cancel crosses processes, a worker killed with
SIGKILL costs at most a retry, and replay joined to the live tail never loses or repeats.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from cosmos.dispatch import dispatch_run
from cosmos.eventlog import follow
from cosmos.models import Run, RunEvent, RunStatus
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.processes import ROOT
from tests.support.runs import wait_for_runs
from tests.support.workers import WorkerProcess, the_queue_to_itself, worker_database_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LEASE_SECONDS = 3


@pytest.fixture
def worker():
    # The tests count what this worker did: a worker started earlier in the session waits meanwhile.
    with the_queue_to_itself():
        process = WorkerProcess(env={"ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}).start()
        yield process
        process.close()


def stored_events(run_id) -> list[tuple[int, dict]]:
    return [(e.seq, e.data) for e in RunEvent.objects.filter(run_id=run_id).order_by("seq")]


def assert_one_clean_log(run_id) -> None:
    events = stored_events(run_id)
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    terminal = [e for _, e in events if e["type"] in ("RUN_FINISHED", "RUN_ERROR")]
    assert len(terminal) == 1 and events[-1][1] is terminal[0]
    assert events[0][1]["type"] == "RUN_STARTED"


async def collect(run_id, after: int = 0, stop_after: int | None = None) -> list[tuple[int, dict]]:
    seen: list[tuple[int, dict]] = []
    async for seq, event in follow(str(run_id), after=after):
        seen.append((seq, event))
        if stop_after is not None and len(seen) >= stop_after:
            break
    return seen


def test_a_run_executed_by_a_worker_is_followed_from_this_process(worker):
    agent = make_agent(parameters={"reply_tokens": 60, "tokens_per_second": 300})
    run, _ = run_services.start_run("agent", agent.id, "stream to me")

    seen = asyncio.run(collect(run.id))

    assert seen == stored_events(run.id)
    assert seen[-1][1]["type"] == "RUN_FINISHED"
    assert Run.objects.get(id=run.id).worker_id  # executed by a worker process, not here


def test_the_cli_in_another_process_enqueues_and_follows_a_run(worker):
    agent = make_agent(tools=["calculator"])
    env = os.environ | {"DATABASE_URL": worker_database_url()}

    result = subprocess.run(
        [sys.executable, "manage.py", "asteros", "run", agent.id, "what is 7*6?"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "[tool calculator(" in result.stdout and "The result is 42." in result.stdout
    assert Run.objects.get(target=agent.id).origin == "cli"


def test_cancel_from_this_process_stops_a_run_in_the_worker(worker):
    agent = make_agent(parameters={"ttft_ms": 30_000})
    run, _ = run_services.start_run("agent", agent.id, "slow")
    wait_for_runs([run.id], statuses=("running",))
    started = time.monotonic()

    run_services.cancel_run(run.id)
    (run,) = wait_for_runs([run.id], timeout=15)

    assert run.status == RunStatus.CANCELLED
    assert time.monotonic() - started < 15
    assert stored_events(run.id)[-1][1]["outcome"] == "cancelled"


def test_a_worker_killed_mid_run_costs_at_most_a_retry(worker):
    agent = make_agent(parameters={"ttft_ms": 2000})
    run_ids = [run_services.start_run("agent", agent.id, f"job {i}")[0].id for i in range(20)]
    # One run may not be retried: it must fail with the reason instead.
    single, _ = run_services.start_run("agent", agent.id, "one attempt only", dispatch=False)
    Run.objects.filter(id=single.id).update(max_attempts=1)
    dispatch_run(single.id)
    wait_for_runs([*run_ids, single.id], statuses=("running",), timeout=30)

    worker.kill()
    in_flight = Run.objects.filter(id__in=[*run_ids, single.id], status=RunStatus.RUNNING).count()
    survivor = WorkerProcess(env={"ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}).start()
    try:
        runs = wait_for_runs([*run_ids, single.id], timeout=LEASE_SECONDS + 30)
    finally:
        survivor.close()

    assert in_flight == 21
    by_id = {r.id: r for r in runs}
    off = {str(i): (by_id[i].status, by_id[i].attempts, by_id[i].error) for i in run_ids}
    off = {i: state for i, state in off.items() if state[:2] != (RunStatus.SUCCEEDED, 2)}
    assert not off, f"runs not succeeded at their second attempt: {off}"
    assert by_id[single.id].status == RunStatus.FAILED
    assert by_id[single.id].error["code"] == "worker_lost"
    for run_id in [*run_ids, single.id]:
        assert_one_clean_log(run_id)


def test_replay_joined_to_the_live_tail_loses_and_repeats_nothing(worker):
    agent = make_agent(parameters={"reply_tokens": 150, "tokens_per_second": 600})
    run_ids = [run_services.start_run("agent", agent.id, f"stream {i}")[0].id for i in range(24)]

    async def follow_with_reconnect(run_id, index: int) -> list[tuple[int, dict]]:
        if index % 2:
            return await collect(run_id)
        first = await collect(run_id, stop_after=3 + index % 5)  # drop the connection early...
        rest = await collect(run_id, after=first[-1][0])  # ...and resume from the last seq
        return first + rest

    async def follow_all():
        return await asyncio.gather(*(follow_with_reconnect(r, i) for i, r in enumerate(run_ids)))

    results = asyncio.run(follow_all())

    for run_id, seen in zip(run_ids, results, strict=True):
        assert seen == stored_events(run_id)
        assert_one_clean_log(run_id)
