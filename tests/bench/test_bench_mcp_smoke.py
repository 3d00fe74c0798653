"""Keeps ``bench/bench_mcp.py`` working (no timing is asserted): it runs and prints every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_mcp_bench_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, "bench/bench_mcp.py", "--calls", "3", "--concurrency", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ("REST run ?wait", "MCP 2026-07-28 tools/call", "MCP 2025-11-25 tools/list"):
        assert row in done.stdout, done.stdout
