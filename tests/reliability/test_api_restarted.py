"""An API process restarted: SSE and websocket clients follow runs through ``manage.py asteros
serve``; the process is stopped (SIGTERM, as a deploy does) while the runs stream, and started
again on the same port.

The runs go on in the worker meanwhile. Each client reconnects with the last seq it got (SSE
``Last-Event-ID``, websocket ``?after=N``) and receives exactly the rest of the log: nothing lost,
nothing repeated, whatever happened while it was away.
"""

from __future__ import annotations

import time

import httpx

from cosmos.models import RunStatus
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

RUNS = 6
# 1-3 s to the first token, then 4 s of tokens: every run is mid-stream when the API goes.
STREAM_TOKENS = 40
TOKENS_PER_SECOND = 10


def test_an_api_process_restarted_while_clients_stream(redis_server, record_property):
    env = {"REDIS_URL": redis_server.url}
    worker = WorkerProcess(concurrency=RUNS, env=env).spawn()
    api = ApiProcess(env=env)
    try:
        api.start()
        worker.wait_ready()
        agents = latency_agents(reply_tokens=STREAM_TOKENS, tokens_per_second=TOKENS_PER_SECOND)
        with Followers() as followers:
            runs = [
                httpx.post(
                    f"{api.url}/api/agents/{agents[i % len(agents)].id}/run", json={"input": f"run {i}"}, timeout=10
                ).json()
                for i in range(RUNS)
            ]
            timeout = 60 + LONGEST_RUN_SECONDS
            clients = {}
            for run in runs:
                clients[("sse", run["id"])] = followers.sse(run["links"]["events"], timeout=timeout)
                clients[("ws", run["id"])] = followers.ws(api.ws_url, run["id"], timeout=timeout)
            for client in clients.values():
                client.wait_for_events(2, timeout=30)  # every client is connected and mid-stream
            received_before = {key: len(client.progress.events) for key, client in clients.items()}

            stopped_at = time.monotonic()
            api.restart()
            down_for = time.monotonic() - stopped_at
            done = wait_for_runs([run["id"] for run in runs], timeout=timeout)
            followed = {key: client.result(timeout=30) for key, client in clients.items()}
            all_done_in = time.monotonic() - stopped_at
    finally:
        api.close()
        worker.close()

    events = 0
    for run in done:
        assert run.status == RunStatus.SUCCEEDED, (run.id, run.status, run.error)
        events += assert_clean_run(run)
    for (kind, run_id), result in followed.items():
        assert result.connections >= 2, f"{kind} client of run {run_id} never had to reconnect: nothing was tested"
        assert_followed_everything(result, run_id)
    received_after = sum(len(r.events) for r in followed.values()) - sum(received_before.values())
    report(
        record_property,
        "An API process restarted",
        runs_streaming=RUNS,
        clients=f"{RUNS} SSE + {RUNS} websocket",
        api_down_and_back_s=round(down_for, 1),
        client_reconnects=sum(r.connections - 1 for r in followed.values()),
        events_received_after_restart=received_after,
        all_runs_and_clients_done_after_stop_s=round(all_done_in, 1),
        events_checked=events,
        events_lost=0,
        events_repeated=0,
    )
