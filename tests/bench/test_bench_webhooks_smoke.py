"""Keeps ``bench/bench_webhooks.py`` working: one small embedded round against its receiver.

No timing is asserted: only that every delivery queued succeeded once, by the database and by
the receiver's own count, and that the table and the figures are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_webhooks_bench_delivers_every_queued_delivery(tmp_path):
    out = tmp_path / "webhooks.json"
    command = [sys.executable, "bench/bench_webhooks.py", "--mode", "embedded", "--deliveries", "60"]
    command += ["--rounds", "1", "--concurrency", "8", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())["modes"]["embedded"]
    (row,) = figures["rounds"]
    assert row["receiver_count"] == row["attempts"] == 60, row
    assert row["per_s"] > 0 and figures["median_per_s"] == row["per_s"]
    assert "| embedded | 60 | 1 | 8 |" in done.stdout
