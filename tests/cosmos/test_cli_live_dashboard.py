"""A run started by ``asteros run`` in a terminal shows live on the dashboard of a server serving
the same database: the dashboard's feed gets its row while it runs, and a client following it
on ``ws/runs/{id}/`` gets its events as they happen (not all at once at the end), each once.

Embedded: the CLI executes the run in its own process; the server finds its events in the log
(``cosmos.logtail``). Distributed: a ``celery worker`` executes it and Redis carries the events.
Real processes: the server (``asteros serve``), the CLI, and in distributed mode a worker."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.processes import ROOT, manage
from tests.support.servers import ApiProcess

TIMEOUT = 60
# 40 tokens at 10 a second: four seconds of streaming, long enough to see it arrive in pieces.
SLOW_AGENT = {"id": "slow", "provider": "scripted", "parameters": {"reply_tokens": 40, "tokens_per_second": 10}}
# Arrivals further apart than this are separate deliveries (one delivery's events are sent
# back to back; tokens come 0.1 s apart).
BURST_GAP_SECONDS = 0.06


def staff_cookie(api: ApiProcess, env: dict[str, str]) -> str:
    """A staff user's session on ``api`` (the dashboard is for staff), logged in as a person does."""
    password = "pw-live-dashboard-1"
    made = manage(env | {"ASTEROS_ADMIN_PASSWORD": password}, "asteros", "ensure-admin", "--username", "staff")
    assert made.returncode == 0, made.stderr[-2000:]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        client.get("/admin/login/")
        form = {"username": "staff", "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
        logged_in = client.post("/admin/login/?next=/admin/", data=form)
        assert logged_in.status_code == 302, logged_in.text[-2000:]
        return f"sessionid={client.cookies['sessionid']}"


async def next_frame(socket: ClientConnection, deadline: float) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic())))


async def row_of(dashboard: ClientConnection, status: str, deadline: float) -> dict:
    """The dashboard's row of the ``slow`` run once it has ``status`` (lifecycle frames only)."""
    while True:
        frame = await next_frame(dashboard, deadline)
        if frame["type"] == "runs":
            for row in frame["runs"]:
                if row["target"] == "slow" and row["status"] == status:
                    return row


async def follow_run(base_ws: str, run_id: str, deadline: float) -> list[tuple[float, int, dict]]:
    """``(arrival time, seq, event)`` of every event frame until ``end``."""
    arrivals: list[tuple[float, int, dict]] = []
    async with connect(f"{base_ws}/ws/runs/{run_id}/?after=0", open_timeout=10) as socket:
        while True:
            frame = await next_frame(socket, deadline)
            if frame["type"] == "event":
                arrivals.append((time.monotonic(), frame["seq"], frame["event"]))
            elif frame["type"] == "end":
                return arrivals
            else:
                raise AssertionError(frame)


async def watch_a_cli_run(api: ApiProcess, cli_env: dict[str, str]) -> dict[str, Any]:
    created = httpx.post(f"{api.url}/api/agents", json=SLOW_AGENT, timeout=10)
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + TIMEOUT
    cookie = staff_cookie(api, cli_env)
    async with connect(
        f"{api.ws_url}/ws/dashboard/", additional_headers={"Cookie": cookie}, open_timeout=10
    ) as dashboard:
        assert (await next_frame(dashboard, deadline))["type"] == "snapshot"
        cli = subprocess.Popen(
            [sys.executable, "manage.py", "asteros", "run", "slow", "hello"],
            cwd=ROOT,
            env=cli_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            running = await row_of(dashboard, "running", deadline)
            still_running = cli.poll() is None
            arrivals = await follow_run(api.ws_url, running["id"], deadline)
            finished = await row_of(dashboard, "succeeded", deadline)
            stdout, stderr = cli.communicate(timeout=TIMEOUT)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait(timeout=10)
    assert cli.returncode == 0, stdout + stderr[-2000:]
    return {"running": running, "still_running": still_running, "arrivals": arrivals, "finished": finished}


def assert_seen_live_and_once(seen: dict[str, Any]) -> None:
    assert seen["still_running"], "the dashboard saw the run only after the CLI had finished it"
    assert seen["running"]["origin"] == "cli" and seen["finished"]["id"] == seen["running"]["id"]
    arrivals = seen["arrivals"]
    seqs = [seq for _, seq, _ in arrivals]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # every event, once, in order
    assert arrivals[0][2]["type"] == "RUN_STARTED" and arrivals[-1][2]["type"] == "RUN_FINISHED"
    text = "".join(event.get("delta", "") for _, _, event in arrivals if event["type"] == "TEXT_MESSAGE_CONTENT")
    assert len(text.split()) == 40
    # Live: the tokens arrive in many deliveries over the four seconds, not in one or two reads
    # of the database (a follower that is told nothing reads it every 2 s: three reads at most).
    times = [at for at, _, event in arrivals if event["type"] == "TEXT_MESSAGE_CONTENT"]
    deliveries = 1 + sum(1 for before, after in itertools.pairwise(times) if after - before > BURST_GAP_SECONDS)
    assert deliveries >= 4, f"{deliveries} deliveries over {times[-1] - times[0]:.1f}s"


@pytest.mark.slow
@pytest.mark.embedded_only
async def test_an_embedded_servers_dashboard_sees_a_cli_run_live_and_each_event_once(tmp_path):
    api = ApiProcess.embedded(tmp_path, ASTEROS_ENABLE_LOGGING="false").start()
    try:
        seen = await watch_a_cli_run(api, api.whole_env)
    finally:
        api.close()
    assert_seen_live_and_once(seen)


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db(transaction=True)
async def test_a_distributed_servers_dashboard_sees_a_cli_run_live_and_each_event_once(settings):
    import os

    from tests.support.workers import WorkerProcess, worker_database_url

    if not settings.ASTEROS.distributed:
        pytest.skip("distributed mode: run the suite with DATABASE_URL (PostgreSQL) and REDIS_URL")
    env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"}
    worker = WorkerProcess(concurrency=4).start()
    api = ApiProcess(env={"ASTEROS_ENABLE_LOGGING": "false"}).start()
    try:
        seen = await watch_a_cli_run(api, env)
    finally:
        api.close()
        worker.close()
    assert_seen_live_and_once(seen)
