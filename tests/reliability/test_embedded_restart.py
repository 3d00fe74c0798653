"""An embedded server stopped mid-run and started again, with no traffic after the restart.

``make run`` as a user runs it: one ``manage.py asteros serve`` process on its own SQLite file,
the worker a thread of the server. A run is in flight when the process gets SIGKILL (a crash) or
SIGTERM (a deploy, Ctrl-C). On SIGTERM the process must exit at once, not when its runs end
(they may take minutes), and leave the run to the next process as a crash would. The same
server starts again and nobody posts anything. The restarted process must reap on its own timer
(not only once a new run starts its engine): the interrupted run is re-queued when its lease
expires and runs again, within the lease plus one reaper interval plus the run itself.

The test reads the run's row straight from the SQLite file, so it sends the server no request
but the start-up probe.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import uuid

import httpx
import pytest

from tests.support.servers import ApiProcess

from .faults import report

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

LEASE_SECONDS = 2
RUN_SECONDS = 1.5  # time to first token of the agent; a few tokens follow
MARGIN_SECONDS = 15  # on top of the lease, a reaper interval and the run: a loaded 2-core machine
EXIT_SECONDS = 20  # SIGTERM to exit: seconds, where a run in flight used to hold it until it ended


def _row(database: str, run_id: str) -> tuple[str, int]:
    with sqlite3.connect(database, timeout=10) as db:
        row = db.execute("SELECT status, attempts FROM cosmos_run WHERE id = ?", (uuid.UUID(run_id).hex,)).fetchone()
    assert row is not None, run_id
    return row[0], row[1]


def _wait_row(database: str, run_id: str, statuses: tuple[str, ...], timeout: float) -> tuple[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        status, attempts = _row(database, run_id)
        if status in statuses:
            return status, attempts
        if time.monotonic() >= deadline:
            raise AssertionError(f"run {run_id} is still {status} after {timeout:g}s (waiting for {statuses})")
        time.sleep(0.1)


def _start_scripted_run(api: ApiProcess, agent_id: str, parameters: dict) -> str:
    """Create a scripted agent on the server and start a run of it; the run's id."""
    created = httpx.post(
        f"{api.url}/api/agents", json={"id": agent_id, "provider": "scripted", "parameters": parameters}, timeout=30
    )
    assert created.status_code == 201, created.text
    started = httpx.post(f"{api.url}/api/agents/{agent_id}/run", json={"input": "hello"}, timeout=30)
    assert started.status_code == 202, started.text
    return started.json()["id"]


def _terminate(api: ApiProcess) -> None:
    """SIGTERM, and the process exits by itself (no SIGKILL behind it)."""
    api.process.send_signal(signal.SIGTERM)
    try:
        api.process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"SIGTERM did not stop the server within {EXIT_SECONDS}s:\n{api.output()[-3000:]}"
        ) from None


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_restarted_embedded_server_finishes_an_interrupted_run_with_no_new_traffic(stop, tmp_path, record_property):
    api = ApiProcess.embedded(tmp_path, ASTEROS_LEASE_SECONDS=str(LEASE_SECONDS), ASTEROS_ENABLE_LOGGING="false")
    database = str(tmp_path / "asteros.sqlite3")
    try:
        api.start()
        run_id = _start_scripted_run(api, "restart-agent", {"ttft_ms": int(RUN_SECONDS * 1000), "reply_tokens": 4})
        _wait_row(database, run_id, ("running",), timeout=30)

        api.kill() if stop == "SIGKILL" else _terminate(api)
        assert _row(database, run_id) == ("running", 1), "the run is left to the next process, unfinished"
        api.start()
        restarted_at = time.monotonic()
        # No request from here on: only the restarted process's own timer can end the run.
        status, attempts = _wait_row(
            database,
            run_id,
            ("succeeded", "failed", "cancelled"),
            timeout=LEASE_SECONDS + LEASE_SECONDS / 2 + RUN_SECONDS + MARGIN_SECONDS,
        )
        ended_in = time.monotonic() - restarted_at
    finally:
        api.close()

    assert (status, attempts) == ("succeeded", 2)
    report(
        record_property,
        f"an embedded server restarted mid-run ({stop})",
        lease_seconds=LEASE_SECONDS,
        run_seconds=RUN_SECONDS,
        run_done_after_restart_s=round(ended_in, 1),
    )


def test_an_embedded_run_longer_than_its_lease_keeps_it_by_renewal(tmp_path):
    """The engine renews the lease of a run it executes: a run of three leases is never taken
    from it by its own reaper (which runs every half lease here) and ends on its first attempt."""
    api = ApiProcess.embedded(tmp_path, ASTEROS_LEASE_SECONDS=str(LEASE_SECONDS), ASTEROS_ENABLE_LOGGING="false")
    database = str(tmp_path / "asteros.sqlite3")
    try:
        api.start()
        run_id = _start_scripted_run(api, "long-agent", {"ttft_ms": 3 * LEASE_SECONDS * 1000})
        status, attempts = _wait_row(
            database, run_id, ("succeeded", "failed", "cancelled"), timeout=3 * LEASE_SECONDS + MARGIN_SECONDS
        )
    finally:
        api.close()

    assert (status, attempts) == ("succeeded", 1)
