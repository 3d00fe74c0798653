"""``POST .../run?wait=`` holds no request thread: a real server process (daphne, embedded mode,
``ASTEROS_HTTP_THREADS`` request threads) answers other requests at once while 100 waits are
open, and the waits still answer as documented (200 with the finished run, 202 when the time
is up)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.servers import ApiProcess

pytestmark = pytest.mark.slow

WAITS = 100
WAIT_SECONDS = 12
PROMPT_SECONDS = 2.0  # far below WAIT_SECONDS: a request queued behind the waits would take that long


@pytest.fixture
def server(tmp_path):
    api = ApiProcess.embedded(tmp_path, ASTEROS_ENABLE_LOGGING="false", ASTEROS_HTTP_THREADS="8").start()
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            for agent in (
                {"id": "fast", "provider": "scripted", "parameters": {"reply": "done: {input}"}},
                {"id": "slow", "provider": "scripted", "parameters": {"ttft_ms": 120_000}},
            ):
                assert client.post("/api/agents", json=agent).status_code == 201
        yield api
    finally:
        api.close()


def test_wait_keeps_its_answers_over_a_real_server(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        done = client.post("/api/agents/fast/run?wait=20", json={"input": "hi"})
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["status"] == "succeeded" and body["output"] == "done: hi", body
        assert done.headers["X-Run-ID"] == body["id"] and done.headers["Location"].endswith(f"/api/runs/{body['id']}")
        assert int(done.headers["Content-Length"]) == len(done.content)

        started = time.monotonic()
        up = client.post("/api/agents/slow/run?wait=0.5", json={"input": "hi"})
        assert up.status_code == 202 and up.json()["status"] in ("queued", "running"), up.text
        assert 0.4 < time.monotonic() - started < 5

        replay = client.post("/api/agents/fast/run?wait=5", json={"input": "x"}, headers={"Idempotency-Key": "k1"})
        again = client.post("/api/agents/fast/run?wait=5", json={"input": "x"}, headers={"Idempotency-Key": "k1"})
        assert replay.status_code == again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"

        bad = client.post("/api/agents/fast/run?wait=0", json={"input": "hi"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_other_requests_answer_at_once_while_100_waits_are_open(server):
    async def scenario() -> tuple[list[httpx.Response], list[float]]:
        limits = httpx.Limits(max_connections=WAITS + 20, max_keepalive_connections=WAITS + 20)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS + 30, limits=limits) as client:
            waits = [
                asyncio.create_task(client.post(f"/api/agents/slow/run?wait={WAIT_SECONDS}", json={"input": f"w{i}"}))
                for i in range(WAITS)
            ]
            # Every wait is open once its run exists (the run is created before the wait begins).
            deadline = time.monotonic() + WAIT_SECONDS / 2
            while True:
                page = (await client.get("/api/runs", params={"target": "slow", "limit": 200})).json()
                if len(page["results"]) >= WAITS + 1 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert len(page["results"]) >= WAITS, f"only {len(page['results'])} waits started"
            assert not any(task.done() for task in waits), "a wait answered before its time"
            latencies = []
            for _ in range(10):
                started = time.monotonic()
                listed = await client.get("/api/agents")
                latencies.append(time.monotonic() - started)
                assert listed.status_code == 200, listed.text
                run = await client.get(f"/api/runs/{page['results'][0]['id']}")
                assert run.status_code == 200
            assert not all(task.done() for task in waits), "the waits were over before the requests were made"
            return await asyncio.gather(*waits), latencies

    answers, latencies = asyncio.run(scenario())
    print(f"GET /api/agents with {WAITS} waits open: max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < PROMPT_SECONDS, latencies
    for answer in answers:
        assert answer.status_code == 202, answer.text[:300]
        assert answer.json()["status"] in ("queued", "running") and answer.headers["X-Run-ID"] == answer.json()["id"]


def test_replays_of_a_running_run_wait_without_holding_request_threads(server):
    """An idempotent replay (same Idempotency-Key) of a run still going waits on the loop too:
    more replays than request threads leave other requests prompt."""
    replays = 20  # more than ASTEROS_HTTP_THREADS (8)
    key = {"Idempotency-Key": "slow-once"}

    async def scenario() -> tuple[list[httpx.Response], float]:
        limits = httpx.Limits(max_connections=replays + 10, max_keepalive_connections=replays + 10)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_SECONDS + 30, limits=limits) as client:
            first = await client.post("/api/agents/slow/run", json={"input": "once"}, headers=key)
            assert first.status_code == 202, first.text
            waits = [
                asyncio.create_task(
                    client.post(f"/api/agents/slow/run?wait={WAIT_SECONDS}", json={"input": "once"}, headers=key)
                )
                for _ in range(replays)
            ]
            await asyncio.sleep(1.0)  # every replay is in and waiting
            assert not any(task.done() for task in waits), "a replay answered before its time"
            started = time.monotonic()
            listed = await client.get("/api/agents")
            latency = time.monotonic() - started
            assert listed.status_code == 200, listed.text
            return await asyncio.gather(*waits), latency

    answers, latency = asyncio.run(scenario())
    assert latency < PROMPT_SECONDS, latency
    for answer in answers:
        assert answer.status_code == 202 and answer.headers["Idempotent-Replayed"] == "true", answer.text[:300]
        assert answer.json()["status"] in ("queued", "running")
