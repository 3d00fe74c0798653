"""The cost of traces on the run round trip: the same runs with tracing off and on, side by side.

Two embedded servers (daphne, SQLite, the worker a thread of the server), one without any
``OTEL_*`` variable and one with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a small OTLP/HTTP
receiver started here (``tests.support.otlp``: ``POST /v1/traces``, protobuf, answered 200), so
the SDK's batch exporter really encodes and sends every span. Each round sends ``--runs``
sequential ``POST /api/agents/<id>/run?wait=30`` to each server, in alternating order; a zero-
latency scripted model answers (``reply``: one model call; ``tool``: a calculator call, so two
model calls and a tool call). Reported: medians and p95 of the round trip per side, the ratio,
the server process's CPU time per run (the median of the rounds), and the spans the receiver
got::

    .venv/bin/python bench/bench_tracing.py                 # 5 rounds x 100 runs per scenario
    .venv/bin/python bench/bench_tracing.py --rounds 1 --runs 5 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_http import base_env, server
from tests.support.otlp import OTLPReceiver

SCENARIOS = {
    "reply": ({"id": "bench-reply", "provider": "scripted"}, "hello there"),
    "tool": ({"id": "bench-tool", "provider": "scripted", "tools": ["calculator"]}, "what is 6*7?"),
}
# Spans per run when on: the request, the run, and its model and tool calls.
SPANS_PER_RUN = {"reply": 3, "tool": 5}


def seed(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for agent, _ in SCENARIOS.values():
            client.post("/api/agents", json=agent).raise_for_status()


def round_trips(client: httpx.Client, scenario: str, runs: int) -> list[float]:
    agent, text = SCENARIOS[scenario]
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.post(f"/api/agents/{agent['id']}/run?wait=30", json={"input": text})
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        if response.json()["status"] != "succeeded":
            raise RuntimeError(f"a run did not succeed: {response.text[:500]}")
    return timings


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, all its threads: the embedded worker's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def measure(rounds: int, runs: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="asteros-bench-tracing-") as folder, OTLPReceiver(keep=False) as receiver:
        root = Path(folder)
        envs = {}
        for side in ("off", "on"):
            (root / side).mkdir()
            envs[side] = {
                k: v
                for k, v in base_env(DATABASE_URL=f"sqlite:///{root / side / 'bench.sqlite3'}").items()
                if not k.startswith("OTEL_")
            }
        envs["on"] |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "asteros-bench"}
        samples: dict[str, dict[str, list[float]]] = {s: {"off": [], "on": []} for s in SCENARIOS}
        # The server process's CPU milliseconds per run, one figure per round: steadier than the
        # round trip on a loaded machine (it does not count the time spent waiting for a core).
        cpu: dict[str, dict[str, list[float]]] = {s: {"off": [], "on": []} for s in SCENARIOS}
        with contextlib.ExitStack() as stack:
            pids: dict[str, list[int]] = {"off": [], "on": []}
            urls = {
                side: stack.enter_context(server(envs[side], "daphne", root / side, pids=pids[side]))
                for side in ("off", "on")
            }
            clients = {side: stack.enter_context(httpx.Client(base_url=urls[side], timeout=60)) for side in urls}
            for side in urls:
                seed(urls[side])
                for scenario in SCENARIOS:
                    round_trips(clients[side], scenario, warmup)
            warm_spans = sum(SPANS_PER_RUN[s] * warmup for s in SCENARIOS)
            for index in range(rounds):
                order = ("off", "on") if index % 2 == 0 else ("on", "off")
                for scenario in SCENARIOS:
                    for side in order:
                        before = cpu_seconds(pids[side][0])
                        samples[scenario][side] += round_trips(clients[side], scenario, runs)
                        cpu[scenario][side].append((cpu_seconds(pids[side][0]) - before) * 1000 / runs)
            expected = warm_spans + sum(SPANS_PER_RUN[s] * runs * rounds for s in SCENARIOS)
            deadline = time.monotonic() + 20  # the batch processor exports every 5 s by default
            while receiver.span_count < expected and time.monotonic() < deadline:
                time.sleep(0.2)
        rows = []
        for scenario, sides in samples.items():
            off, on = statistics.median(sides["off"]), statistics.median(sides["on"])
            rows.append(
                {
                    "scenario": scenario,
                    "runs_per_side": len(sides["off"]),
                    "off_median_ms": round(off, 3),
                    "on_median_ms": round(on, 3),
                    "off_p95_ms": round(p95(sides["off"]), 3),
                    "on_p95_ms": round(p95(sides["on"]), 3),
                    "ratio": round(on / off, 3),
                    "off_cpu_ms_per_run": round(statistics.median(cpu[scenario]["off"]), 3),
                    "on_cpu_ms_per_run": round(statistics.median(cpu[scenario]["on"]), 3),
                }
            )
        return {
            "rows": rows,
            "spans_expected": expected,
            "spans_received": receiver.span_count,
            "export_requests": receiver.requests,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100, help="sequential runs per side, scenario and round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    report = measure(args.rounds, args.runs, args.warmup)
    print(
        "| scenario | runs per side | round trip off: median / p95 | on: median / p95 | on / off (median)"
        " | server CPU per run, off / on |"
    )
    print("|---|---|---|---|---|---|")
    for row in report["rows"]:
        print(
            f"| {row['scenario']} | {row['runs_per_side']} | {row['off_median_ms']:.2f} / {row['off_p95_ms']:.2f} ms"
            f" | {row['on_median_ms']:.2f} / {row['on_p95_ms']:.2f} ms | {row['ratio']:.2f}x"
            f" | {row['off_cpu_ms_per_run']:.2f} / {row['on_cpu_ms_per_run']:.2f} ms |"
        )
    print(
        f"spans received by the OTLP receiver: {report['spans_received']} of {report['spans_expected']}"
        f" ({report['export_requests']} export requests)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
