"""A 2 s database blip must not leave broken pooled connections behind.

An API process reaches PostgreSQL through a TCP proxy (tests/support/services.py). The test
fills every place the process holds connections (the request threads and psycopg's pool, by a
burst of concurrent requests; the ``cosmos.db`` threads, by reading run events), cuts the path
for 2 s (every open connection reset), and restores it. While cut, ``/health`` answers 503
``down`` within a bounded time; once restored, the API answers 2xx again within a couple of
seconds and every request after that succeeds: no request is handed a connection the blip broke.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.factories import make_run
from tests.support.servers import ApiProcess
from tests.support.services import TcpProxy
from tests.support.workers import worker_database_url

from .faults import FAULT_TEST_MARKS, latency_agents, report

pytestmark = FAULT_TEST_MARKS

CUT_SECONDS = 2.0
BACK_WITHIN_SECONDS = 3.0  # from the restore to the first 2xx
HEALTH_WITHIN_SECONDS = 6.0  # /health's answer during the cut, 503 included
CONCURRENCY = 24  # above ASTEROS_HTTP_THREADS: every request thread and pooled connection is used
AFTER_ROUNDS = 5


def test_a_two_second_database_blip_leaves_no_broken_connection(redis_server, record_property):
    agents = latency_agents()
    run = make_run(target=agents[0].id, events=["RUN_STARTED", "RUN_FINISHED"], status="succeeded")
    paths = ["/api/agents", f"/api/agents/{agents[1].id}", f"/api/runs/{run.id}", f"/api/runs/{run.id}/events"]
    with TcpProxy.to_url(os.environ["DATABASE_URL"]) as proxy:
        env = {"REDIS_URL": redis_server.url, "DATABASE_URL": proxy.proxied_url(worker_database_url())}
        api = ApiProcess(env=env)
        try:
            api.start()
            with httpx.Client(base_url=api.url, timeout=20, limits=httpx.Limits(max_connections=64)) as client:

                def burst() -> list[int]:
                    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
                        answers = pool.map(lambda i: client.get(paths[i % len(paths)]), range(CONCURRENCY * 2))
                        return [answer.status_code for answer in answers]

                warm = burst()
                assert set(warm) == {200}, warm

                proxy.cut()
                cut_at = time.monotonic()
                started = time.monotonic()
                health_cut = client.get("/health")
                health_cut_s = time.monotonic() - started
                time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
                proxy.restore()
                up_at = time.monotonic()

                # What clients see right after the restore: a burst, as when traffic resumes.
                first = burst()
                first_s = time.monotonic() - up_at
                while client.get("/api/agents").status_code != 200:
                    assert time.monotonic() - up_at < 30, "the API did not recover"
                    time.sleep(0.05)
                back_in = time.monotonic() - up_at
                after = [status for _ in range(AFTER_ROUNDS) for status in burst()]
                health_after = client.get("/health")
        finally:
            api.close()

    assert health_cut.status_code == 503, health_cut.text
    body = health_cut.json()
    assert body["status"] == "down" and "database" in body["failing"], body
    assert not body["checks"]["database"]["ok"], body
    assert health_cut_s < HEALTH_WITHIN_SECONDS, health_cut_s
    assert back_in < BACK_WITHIN_SECONDS, f"the API answered 2xx again only {back_in:.1f}s after the restore"
    stale = [status for status in first if status != 200]
    assert not stale, f"{len(stale)} of {len(first)} requests right after the restore failed: {first}"
    failed = [status for status in after if status != 200]
    assert not failed, f"{len(failed)} of {len(after)} requests after recovery failed: {sorted(set(failed))}"
    assert health_after.json()["checks"]["database"]["ok"], health_after.text
    report(
        record_property,
        "A 2 s database blip",
        health_during_cut=f"{health_cut.status_code} in {health_cut_s:.2f}s",
        api_back_after_restore_s=round(back_in, 2),
        first_burst_after_restore=f"{len(first) - len(stale)}/{len(first)} ok in {first_s:.2f}s",
        requests_after_recovery=len(after),
        failed_after_recovery=len(failed),
    )
