"""Embedded mode: beat runs on a thread of the serving process, and an every-second schedule
fires one run a second there (a real ``asteros serve`` process on its own SQLite file)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from tests.support.servers import ApiProcess

pytestmark = pytest.mark.slow

SECONDS = 6


def ticks_of(server: ApiProcess, name: str) -> list[datetime]:
    runs = httpx.get(f"{server.url}/api/schedules/{name}/runs?limit=100", timeout=10).json()["results"]
    return sorted(datetime.fromisoformat(run["idempotency_key"]) for run in runs if run["metadata"].get("tick"))


def test_an_every_second_schedule_fires_once_a_second_in_the_serving_process(tmp_path):
    server = ApiProcess.embedded(tmp_path).start()
    try:
        assert "scheduler: embedded beat" in server.output()
        agent = httpx.post(f"{server.url}/api/agents", json={"id": "ticker", "provider": "scripted"}, timeout=10)
        assert agent.status_code == 201, agent.text
        body = {"name": "every-second", "kind": "agent", "target": "ticker", "interval_seconds": 1}
        body["input"] = {"message": "tick"}
        created = httpx.post(f"{server.url}/api/schedules", json=body, timeout=10)
        assert created.status_code == 201, created.text
        created_at = datetime.fromisoformat(created.json()["created_at"])
        time.sleep(SECONDS)
        stopped_at = created_at + timedelta(seconds=SECONDS)
        ticks = ticks_of(server, "every-second")
        print(f"{len(ticks)} runs in {SECONDS} s: {[f'{t:%H:%M:%S}' for t in ticks]}")
        # Beat sees the new row within its 2 s loop; then every second fires, none twice.
        assert len(ticks) == len(set(ticks)) and SECONDS - 3 <= len(ticks) <= SECONDS + 1, ticks
        assert all(b - a == timedelta(seconds=1) for a, b in pairwise(ticks)), ticks
        assert ticks[0] > created_at and ticks[-1] <= stopped_at + timedelta(seconds=2)
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["scheduler"]["mode"] == "embedded" and health["scheduler"]["embedded_beat_running"] is True
        assert health["scheduler"]["last_tick_at"] is not None
    finally:
        server.close()
