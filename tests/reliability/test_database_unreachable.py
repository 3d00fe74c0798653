"""The database unreachable for a moment: an API process and a worker process reach PostgreSQL
through a TCP proxy (tests/support/services.py), which the test cuts (every connection reset, new
ones refused) while runs execute and clients follow them, then restores.

The shared PostgreSQL is never touched. During the cut the API answers every request, with a
503 in the one error shape (code ``unavailable``, ``Retry-After``), not a 500; ``/health`` says
``down``. Once the path is back, everything recovers by itself: the API answers again, the
worker finishes its runs with contiguous logs, and the followers get every event.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from cosmos.models import RunStatus
from tests.support.runs import wait_for_runs
from tests.support.servers import ApiProcess
from tests.support.services import TcpProxy
from tests.support.streams import Followers
from tests.support.workers import WorkerProcess, worker_database_url

from .faults import (
    FAULT_TEST_MARKS,
    LONGEST_RUN_SECONDS,
    assert_clean_run,
    assert_followed_everything,
    latency_agents,
    report,
)

pytestmark = FAULT_TEST_MARKS

# Shorter than the cut: the runs in flight lose their lease while the worker cannot reach the
# database, and are run again (their logs continued) once it can, like any lost run.
LEASE_SECONDS = 5
RUNS = 5
OUTAGE_SECONDS = 3
REQUEST_TIMEOUT = 15  # a 503 may wait for the connection pool's timeout (10 s)
RECOVERY_BOUND_SECONDS = 30


def test_the_database_unreachable_for_a_moment(redis_server, record_property):
    with TcpProxy.to_url(os.environ["DATABASE_URL"]) as proxy:
        env = {
            "REDIS_URL": redis_server.url,
            "DATABASE_URL": proxy.proxied_url(worker_database_url()),
            "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        worker = WorkerProcess(concurrency=20, env=env).spawn()
        api = ApiProcess(env=env)
        try:
            api.start()
            worker.wait_ready()
            agents = latency_agents()
            with Followers() as followers, httpx.Client(base_url=api.url, timeout=REQUEST_TIMEOUT) as client:
                runs = [
                    client.post(f"/api/agents/{agents[i % len(agents)].id}/run", json={"input": f"run {i}"}).json()
                    for i in range(RUNS)
                ]
                streams = {run["id"]: followers.sse(run["links"]["events"], timeout=90) for run in runs}
                for stream in streams.values():
                    stream.wait_for_events(1, timeout=30)

                proxy.cut()
                cut_at = time.monotonic()
                some_run = runs[0]["id"]
                requests = {
                    "list agents": ("GET", "/api/agents", {}),
                    "read a run": ("GET", f"/api/runs/{some_run}", {}),
                    "start a run": ("POST", f"/api/agents/{agents[0].id}/run", {}),
                    "stream a run (SSE)": ("GET", f"/api/runs/{some_run}/events", {"Accept": "text/event-stream"}),
                    "health": ("GET", "/health", {}),
                }

                def ask(request: tuple[str, str, dict]) -> tuple[httpx.Response, float]:
                    method, path, headers = request
                    started = time.monotonic()
                    body = {"input": "during the outage"} if method == "POST" else None
                    response = client.request(method, path, headers=headers, json=body)
                    return response, time.monotonic() - started

                # At once, as clients would: each may wait for the pool's timeout before its 503.
                with ThreadPoolExecutor(max_workers=len(requests)) as pool:
                    answers = dict(zip(requests, pool.map(ask, requests.values()), strict=True))
                time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))

                proxy.restore()
                up_at = time.monotonic()
                outage = up_at - cut_at

                def agents_answer() -> bool:
                    return client.get("/api/agents").status_code == 200

                while not agents_answer():
                    assert time.monotonic() - up_at < RECOVERY_BOUND_SECONDS, "the API did not recover by itself"
                    time.sleep(0.1)
                api_back_in = time.monotonic() - up_at
                done = wait_for_runs(streams, timeout=RECOVERY_BOUND_SECONDS + LONGEST_RUN_SECONDS)
                runs_done_in = time.monotonic() - up_at
                followed = {run_id: stream.result(timeout=30) for run_id, stream in streams.items()}
                health_after = client.get("/health")
        finally:
            api.close()
            worker.close()

    for name, (response, _) in answers.items():
        assert response.status_code == 503, (name, response.status_code, response.text[:500])
        body = response.json()
        if name == "health":
            assert body["status"] == "down" and "database" in body["failing"], body
            continue
        assert set(body) == {"error"} and body["error"]["code"] == "unavailable", (name, body)
        assert body["error"]["message"] and response.headers["Retry-After"].isdigit(), (name, response.headers)
    assert health_after.status_code == 200, health_after.text
    events = 0
    for run in done:
        # A run whose lease ran out while the worker waited for the database was run again (its
        # log continued): it still succeeds, within its attempts.
        assert run.status == RunStatus.SUCCEEDED, (run.id, run.status, run.error)
        events += assert_clean_run(run)
        assert_followed_everything(followed[str(run.id)], run.id)
    report(
        record_property,
        "The database unreachable",
        outage_s=round(outage, 1),
        answers_during_outage="; ".join(f"{n}: {r.status_code} in {t:.1f}s" for n, (r, t) in answers.items()),
        api_back_after_restore_s=round(api_back_in, 1),
        runs_in_flight=RUNS,
        runs_done_after_restore_s=round(runs_done_in, 1),
        runs_run_again=sum(1 for run in done if run.attempts > 1),
        runs_lost=0,
        follower_reconnects=sum(f.connections - 1 for f in followed.values()),
        events_checked=events,
        events_lost=0,
    )
