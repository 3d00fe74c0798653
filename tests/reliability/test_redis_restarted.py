"""Redis restarted under load: SHUTDOWN NOSAVE of the (private) Redis that an API process and a
worker process share, while runs execute and clients follow their streams, then a start again on
the same port.

Redis is the broker and the live bus, never the truth. During the outage the API stays up:
``/health`` says ``degraded`` (not ``down``), and runs are still accepted: they are in the
database, and the reaper sends them once the broker is back (their messages, like every queued
message, went down with Redis). Followers of a stream lose the live tail for a while and fill the
gap from the database by seq: nothing is lost or repeated.
"""

from __future__ import annotations

import time

import httpx

from cosmos.models import Run, RunStatus
from tests.support.runs import wait_for_runs
from tests.support.servers import ApiProcess
from tests.support.streams import Followers
from tests.support.workers import WorkerProcess

from .faults import (
    FAULT_TEST_MARKS,
    LONGEST_RUN_SECONDS,
    assert_clean_run,
    assert_followed_everything,
    latency_agents,
    report,
)

pytestmark = FAULT_TEST_MARKS

LEASE_SECONDS = 3
RUNS_BEFORE = 20  # started before the outage, in flight when Redis goes down
RUNS_DURING = 10  # accepted while Redis is down
OUTAGE_SECONDS = 3
REQUEST_TIMEOUT = 5  # an API that makes a client wait longer than this is not "up"
RECOVERY_BOUND_SECONDS = 45  # the reaper resends after 5 s; the worker reconnects with backoff


def post_run(api: ApiProcess, agent_id: str, text: str) -> dict:
    response = httpx.post(f"{api.url}/api/agents/{agent_id}/run", json={"input": text}, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    return response.json()


def wait_until(predicate, timeout: float, what: str) -> float:
    """Seconds it took ``predicate()`` to become true; AssertionError naming ``what`` otherwise."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(0.1)
    return time.monotonic() - started


def test_redis_restarted_under_load(redis_server, record_property):
    env = {"REDIS_URL": redis_server.url, "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS)}
    worker = WorkerProcess(concurrency=50, env=env).spawn()
    api = ApiProcess(env=env)
    try:
        api.start()
        worker.wait_ready()
        agents = latency_agents()
        with Followers() as followers:
            before = [post_run(api, agents[i % len(agents)].id, f"before {i}") for i in range(RUNS_BEFORE)]
            streams = {run["id"]: followers.sse(run["links"]["events"], timeout=90) for run in before}
            for stream in streams.values():
                stream.wait_for_events(1, timeout=30)  # every follower is connected and mid-stream

            redis_server.shutdown()
            down_at = time.monotonic()
            health = httpx.get(f"{api.url}/health", timeout=REQUEST_TIMEOUT)
            slowest_post = 0.0
            during = []
            for i in range(RUNS_DURING):
                started = time.monotonic()
                during.append(post_run(api, agents[i % len(agents)].id, f"during {i}"))
                slowest_post = max(slowest_post, time.monotonic() - started)
            streams |= {run["id"]: followers.sse(run["links"]["events"], timeout=90) for run in during}
            undispatched = Run.objects.filter(id__in=[r["id"] for r in during], dispatched_at=None).count()
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))

            redis_server.start()
            up_at = time.monotonic()
            outage = up_at - down_at
            healthy_in = wait_until(
                lambda: httpx.get(f"{api.url}/health", timeout=REQUEST_TIMEOUT).status_code == 200,
                30,
                "/health back to ok",
            )
            runs = wait_for_runs(streams, timeout=RECOVERY_BOUND_SECONDS + LONGEST_RUN_SECONDS)
            all_done_in = time.monotonic() - up_at
            followed = {run_id: stream.result(timeout=30) for run_id, stream in streams.items()}
    finally:
        api.close()
        worker.close()

    assert health.status_code == 503, health.text
    body = health.json()
    assert body["status"] == "degraded", body
    assert {"broker", "live_events"} <= set(body["failing"]) and "database" not in body["failing"], body
    assert undispatched == RUNS_DURING, "the broker was down: no run could have been sent to it"
    events = 0
    for run in runs:
        assert run.status == RunStatus.SUCCEEDED, (run.id, run.status, run.error)
        events += assert_clean_run(run)
        assert_followed_everything(followed[str(run.id)], run.id)
    resumed = sum(1 for f in followed.values() if f.connections > 1)
    report(
        record_property,
        "Redis restarted under load",
        runs_in_flight_at_shutdown=RUNS_BEFORE,
        runs_accepted_during_outage=RUNS_DURING,
        outage_s=round(outage, 1),
        slowest_post_during_outage_s=round(slowest_post, 2),
        health_during_outage=f"{health.status_code} {body['status']} {','.join(body['failing'])}",
        all_runs_done_after_restart_s=round(all_done_in, 1),
        health_ok_after_restart_s=round(healthy_in, 1),
        runs_lost=0,
        followers=len(followed),
        follower_reconnects=resumed,
        events_checked=events,
        events_lost=0,
    )
