"""Keeps the benchmark harness working: ``make bench QUICK=1``'s smallest scenario (1, the agent build).

No timing is asserted: only that the harness runs, measures both sides it can, and writes its
results and table. The peer side (Agno) is measured when ``bench/.venv-peer`` exists (``make
bench`` creates it); otherwise the harness must say it was skipped, not fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / "bench" / ".venv-peer" / "bin" / "python"


def test_quick_build_scenario_runs_and_reports(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "bench/bench_vs_agno.py",
            "--quick",
            "--scenarios",
            "1",
            "--services",
            "none",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {row["metric"]: row for row in report["rows"]}
    assert set(rows) == {"time", "memory (tracemalloc)"}
    for row in rows.values():
        assert row["scenario"].startswith("1 ")
        assert row["ours"]["median"] > 0
        if PEER_PYTHON.exists():
            assert row["agno"]["median"] > 0
            assert row["ratio"] is not None
        else:
            assert "skipped" in row["agno"]
    assert "1 build agent, 1 tool" in done.stdout
    assert report["machine"]["cores"] >= 1
