"""Keeps ``bench/bench_fanout.py`` working: one small round of each backend on the test Redis.

No timing is asserted: only that every event reaches every follower on each backend and that the
table and the raw figures are written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.services
def test_fanout_bench_delivers_every_event_on_each_backend(tmp_path):
    out = tmp_path / "fanout.json"
    command = [sys.executable, "bench/bench_fanout.py", "--redis", os.environ["REDIS_URL"]]
    command += ["--followers", "1,3", "--rounds", "1", "--events", "40", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert {(row["backend"], row["followers"]) for row in rows} == {
        (backend, followers) for backend in ("bus", "layer", "pubsub") for followers in (1, 3)
    }
    for row in rows:
        assert row["lost"] == 0, row
        assert row["deliveries_per_s"] > 0 and row["p50_ms"] > 0, row
    assert "| 3 | pubsub |" in done.stdout
