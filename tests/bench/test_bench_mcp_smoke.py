"""Keeps ``bench/bench_mcp.py`` working (no timing is asserted): it runs and prints every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]


def test_the_mcp_bench_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, "bench/bench_mcp.py", "--rounds", "1", "--runs", "2", "--calls", "3", "--concurrency", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("   ")}
    assert {"builtin", "mcp-http", "mcp-stdio", "rest", "mcp-2026", "mcp-2025"} <= rows, done.stdout
