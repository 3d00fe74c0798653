"""Keeps ``bench/bench_tracing.py`` working: one small round on each side.

No timing is asserted: only that both servers answer every run, that the traced one really
exported its spans to the OTLP receiver (at least those of the runs measured), and that the
table and the figures are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tracing_bench_measures_both_sides_and_exports_the_spans(tmp_path):
    out = tmp_path / "tracing.json"
    command = [sys.executable, "bench/bench_tracing.py", "--rounds", "1", "--runs", "3", "--warmup", "1"]
    done = subprocess.run([*command, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {row["scenario"] for row in report["rows"]} == {"reply", "tool"}
    for row in report["rows"]:
        assert row["runs_per_side"] == 3
        assert row["off_median_ms"] > 0 and row["on_median_ms"] > 0 and row["ratio"] > 0
        assert row["off_cpu_ms_per_run"] >= 0 and row["on_cpu_ms_per_run"] >= 0
    assert report["spans_received"] >= report["spans_expected"] > 0
    assert "| tool | 3 |" in done.stdout
