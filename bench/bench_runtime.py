#!/usr/bin/env python
"""Micro-benchmarks of the agent runtime, without Django or a database.

    python bench/bench_runtime.py [--quick]

(a) Agent build: an AgentSpec with one tool, built into a RuntimeAgent. Time is the median over
    rounds of the mean per build; memory is measured the way Agno's PerformanceEval does it:
    tracemalloc started, one build, peak read, minus the peak of an empty function (the baseline).
(b) Run overhead: the offline scripted model with zero latency, one calculator call, two model
    turns, a no-op emit: time (and tracemalloc peak) per complete run.
(c) Streaming overhead: one model turn of 1,000 tokens through the loop: time per token.

Prints a small table, then one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cosmos.runtime import AgentSpec, build_agent, run_agent

KIB = 1024


def _spec() -> AgentSpec:
    return AgentSpec(id="bench", name="Bench agent", system_prompt="You are a helpful agent.", tools=("calculator",))


def instantiate() -> Any:
    """What a user writes to get an agent: a spec plus a build (Agno: Agent(model=..., tools=[...]))."""
    return build_agent(_spec())


def _empty() -> None:
    return None


def _peak_bytes(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def memory_kib(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    baseline = statistics.mean(_peak_bytes(_empty) for _ in range(3))
    samples = [max(0.0, _peak_bytes(fn) - baseline) / KIB for _ in range(runs)]
    return {"median_kib": statistics.median(samples), "mean_kib": statistics.mean(samples)}


def time_us(fn: Callable[[], Any], rounds: int, inner: int) -> dict[str, float]:
    per_op = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        per_op.append((time.perf_counter_ns() - start) / inner / 1000)
    return {"median_us": statistics.median(per_op), "min_us": min(per_op)}


async def _noop(event: dict) -> None:
    return None


async def run_overhead(rounds: int, inner: int) -> dict[str, float]:
    agent = instantiate()
    messages = [{"role": "user", "content": "What is 6 * 7?"}]
    events: list[dict] = []

    async def count(event: dict) -> None:
        events.append(event)

    outcome = await run_agent(agent, messages, count)  # warm-up, and a check of what is measured
    assert outcome.text == "The result is 42.", outcome.text
    assert sum(1 for m in outcome.new_messages if m["role"] == "assistant") == 2
    for _ in range(inner):
        await run_agent(agent, messages, _noop)
    per_run = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(inner):
            await run_agent(agent, messages, _noop)
        per_run.append((time.perf_counter_ns() - start) / inner / 1000)
    gc.collect()
    tracemalloc.start()
    await run_agent(agent, messages, _noop)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "median_us": statistics.median(per_run),
        "min_us": min(per_run),
        "events_per_run": len(events),
        "peak_kib": peak / KIB,
    }


async def stream_overhead(rounds: int, tokens: int = 1000) -> dict[str, float]:
    agent = build_agent(AgentSpec(id="stream", name="Stream", parameters={"reply_tokens": tokens}))
    messages = [{"role": "user", "content": "talk"}]
    await run_agent(agent, messages, _noop)
    per_token = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        await run_agent(agent, messages, _noop)
        per_token.append((time.perf_counter_ns() - start) / tokens / 1000)
    return {"median_us_per_token": statistics.median(per_token), "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for CI smoke runs")
    args = parser.parse_args()
    rounds, inner, memory_runs = (10, 200, 20) if args.quick else (50, 2000, 100)

    for _ in range(100):  # warm caches: provider, tool schemas, code paths
        instantiate()
    gc.collect()  # start from a clean heap so a collection of import-time garbage is not billed to us
    spec = _spec()
    results = {
        # A machine-speed reference, to compare figures taken on different hosts.
        "reference_sum_range_1000_us": time_us(lambda: sum(range(1000)), rounds, max(1, inner // 10))["median_us"],
        "build": {**time_us(instantiate, rounds, inner), **memory_kib(instantiate, memory_runs)},
        "build_only": time_us(lambda: build_agent(spec), rounds, inner),
        "run": asyncio.run(run_overhead(rounds, max(1, inner // 10))),
        "stream": asyncio.run(stream_overhead(max(5, rounds // 5))),
        "python": platform.python_version(),
        "quick": args.quick,
    }

    build, build_only, run, stream = results["build"], results["build_only"], results["run"], results["stream"]
    rows = [
        ("agent build (spec + build_agent, 1 tool)", build, f"{build['median_kib']:.2f} KiB"),
        ("build_agent only (spec prepared)", build_only, ""),
        ("run: 2 turns + 1 tool, scripted, no-op emit", run, f"{run['peak_kib']:.1f} KiB peak"),
        ("stream: per token through the loop", {"median_us": stream["median_us_per_token"]}, ""),
        ("reference: sum(range(1000)) on this machine", {"median_us": results["reference_sum_range_1000_us"]}, ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'median':>10}  {'min':>10}  {'memory':>14}")
    for name, figures, memory in rows:
        low = f"{figures['min_us']:.2f} µs" if "min_us" in figures else ""
        print(f"{name:<{width}}  {figures['median_us']:>7.2f} µs  {low:>10}  {memory:>14}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
