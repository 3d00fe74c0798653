#!/usr/bin/env python
"""The OpenAI-compatible door's round trip, side by side with our REST run endpoint and Agno's
AgentOS, in one run on this machine.

    .venv/bin/python bench/bench_openai.py [--quick] [--peer-python PATH]

Three ways to ask the same agent (``bench-0``: provider ``openai``, one tool) one question and
wait for the whole answer, non-streaming, against the zero-latency local model server
(``tests/support/model_server.py``):

- ours ``/v1``: ``POST /v1/chat/completions`` (``model: agent:bench-0``), the reply in Chat
  Completions format;
- ours REST: ``POST /api/agents/bench-0/run?wait=30``, the run once it is over;
- Agno: AgentOS's run endpoint ``POST /agents/bench-0/runs`` (``stream=false``), in the bench-only
  virtual environment (``bench/.venv-peer``, ``make bench`` creates it); AgentOS has no
  OpenAI-compatible endpoint of its own.

Ours is one embedded server (SQLite, the worker a thread of it); AgentOS one uvicorn process with
SQLite. Each level (c = 1 and 8) is measured for a fixed time by the load generator
(``bench/loadgen.py``, a separate process), the three targets one after the other in an order
that alternates every round; the figures are medians over the rounds, with ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_vs_agno as harness  # noqa: E402

LEVELS = (1, 8)
AGENT = "bench-0"


def targets(ours_url: str, peer_url: str | None) -> dict[str, list[str]]:
    chat = {"model": f"agent:{AGENT}", "messages": [{"role": "user", "content": "hello"}]}
    found = {
        "ours /v1": ["post", "--url", f"{ours_url}/v1/chat/completions", "--body-json", json.dumps(chat)],
        "ours REST": [
            "post",
            "--url",
            f"{ours_url}/api/agents/{AGENT}/run?wait=30",
            "--body-json",
            json.dumps({"input": "hello"}),
        ],
    }
    if peer_url:
        found["Agno"] = [
            "post",
            "--url",
            f"{peer_url}/agents/{AGENT}/runs",
            "--body-form",
            "message=hello&stream=false",
        ]
    return found


def measure(args: list[str], concurrency: int, seconds: float) -> dict:
    return harness.loadgen(
        *args,
        "--concurrency", str(concurrency),
        "--count", "100000",
        "--max-seconds", str(seconds),
        "--request-timeout", "30",
        timeout=seconds + 40,
    )  # fmt: skip


def median(values: list[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return round(statistics.median(clean), 2) if clean else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s per level (else 5 of 10 s)")
    parser.add_argument("--peer-python", type=Path, default=harness.DEFAULT_PEER_PY)
    options = parser.parse_args(argv)
    rounds, seconds = (2, 3.0) if options.quick else (5, 10.0)
    peer_py = options.peer_python if options.peer_python.exists() else None
    logdir = Path(harness.tempfile.mkdtemp(prefix="asteros-bench-openai-logs-"))
    stack = harness.Stack(logdir, peer_py)
    try:
        models = {"openai": stack.model_server("model-zero")}
        models["anthropic"] = models["openai"]
        env = stack.ours_env(models, f"sqlite:///{stack.tmp / 'ours.sqlite3'}", None)
        stack.ours_setup(env)
        _, ours_url = stack.ours_server("ours-embedded", env)
        peer_url = None
        if peer_py is not None:
            _, peer_url = stack.peer_server("agno-sqlite", models, f"sqlite:{stack.tmp / 'agno.sqlite3'}")
        else:
            print("Agno: skipped, the peer venv is missing (make bench creates bench/.venv-peer)", flush=True)
        found = targets(ours_url, peer_url)
        for args in found.values():
            harness.warm_up(args)
        time.sleep(1)
        results: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in LEVELS} for name in found}
        names = list(found)
        for index in range(rounds):
            order = names if index % 2 == 0 else names[::-1]
            for c in LEVELS:
                for name in order:
                    r = measure(found[name], c, seconds)
                    results[name][c].append(r)
                    print(
                        f"  round {index + 1} {name} c={c}: {r['per_s']} req/s p50 {r['p50_ms']} ms "
                        f"errors {r['errors']}",
                        flush=True,
                    )
    finally:
        stack.close()

    rows = []
    for c in LEVELS:
        figures = {
            name: (
                median([r["per_s"] for r in results[name][c]]),
                median([r["p50_ms"] for r in results[name][c]]),
                sum(r["errors"] for r in results[name][c]),
            )
            for name in results
        }
        rows.append((c, figures))
    header = "| c | target | req/s | p50 ms | errors | /v1 vs this (req/s) |"
    lines = [header, "|---|---|---|---|---|---|"]
    for c, figures in rows:
        v1 = figures["ours /v1"][0]
        for name, (per_s, p50, errors) in figures.items():
            versus = "" if name == "ours /v1" else ratio(v1, per_s)
            lines.append(f"| {c} | {name} | {per_s} | {p50} | {errors} | {versus} |")
    print("\n".join(lines))
    harness.RESULTS.mkdir(exist_ok=True)
    out = harness.RESULTS / f"openai-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"rounds": rounds, "seconds": seconds, "results": results}, indent=1))
    print(f"raw figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
