#!/usr/bin/env python
"""The ceiling of scenario 4 on this machine: the official OpenAI SDK alone, nothing else.

    .venv/bin/python bench/bench_sdk_floor.py [--levels 250,500,1000] [--latency-ms 1000] [--rounds 3]

Scenario 4 of ``bench_vs_agno.py`` sends N streaming runs at once to a model that answers after
1 s, and counts completed runs/s = N / (the span from the first request to the last final event).
Every run is one streaming chat completion through the SDK. This script makes exactly those
calls and nothing more: one process, one event loop, ``--clients`` ``openai.AsyncOpenAI``
clients used in turn (default 1; their default connection limits, no retries), N calls started
at once against the same local model server (``tests.support.model_server``, OpenAI API,
``--latency-ms``), each read to its end. No database, broker, web server or agent loop:
whatever a system adds can only lower its runs/s below this figure, on the same machine.
(httpcore scans every connection of a pool for each request, so more clients, each with a
smaller pool, cost less CPU per call at high concurrency; the worker's providers open one
client per 32 streams in flight, see docs/runtime.md.)

It prints, per level, the median over rounds of completed calls/s, the span, and the CPU
seconds per call of this process (the SDK) and of the model server process. Both share the
machine's cores, as they do in scenario 4. The loop is bounded: N calls per round, each with a
60 s timeout; the model server binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_agno import Stack  # the model server the benchmark itself starts


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_call(client) -> bool:
    # The request our openai provider sends for a bench agent: system + user, one tool, streaming.
    stream = await client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "You are a helpful agent."}, {"role": "user", "content": "hello"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "calculator",
                    "description": "Evaluate an arithmetic expression.",
                    "parameters": {
                        "type": "object",
                        "properties": {"expression": {"type": "string"}},
                        "required": ["expression"],
                    },
                },
            }
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = []
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    text.append(choice.delta.content)
    return bool(text)


async def level(base_url: str, calls: int, server_pid: int, clients: int) -> dict:
    import openai

    pool = [
        openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="local", max_retries=0, timeout=60)
        for _ in range(clients)
    ]
    for client in pool:
        await one_call(client)  # warm: connection, lazy imports
    cpu_ours, cpu_server = time.process_time(), cpu_seconds(server_pid)
    started = time.perf_counter()
    calls_made = (one_call(pool[i % clients]) for i in range(calls))
    results = await asyncio.gather(*calls_made, return_exceptions=True)
    span = time.perf_counter() - started
    cpu_ours, cpu_server = time.process_time() - cpu_ours, cpu_seconds(server_pid) - cpu_server
    for client in pool:
        await client.close()
    completed = sum(1 for result in results if result is True)
    return {
        "calls": calls,
        "completed": completed,
        "errors": calls - completed,
        "span_s": span,
        "calls_per_s": completed / span,
        "sdk_cpu_ms_per_call": 1000 * cpu_ours / calls,
        "server_cpu_ms_per_call": 1000 * cpu_server / calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="250,500,1000")
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1, help="SDK clients, used in turn (each its own pool)")
    parser.add_argument("--json", action="store_true", help="print one line of JSON (every round) instead")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    logdir = Path(tempfile.mkdtemp(prefix="asteros-sdk-floor-"))
    stack = Stack(logdir, peer_py=None)
    try:
        url = stack.model_server("model-1s", latency_ms=args.latency_ms)
        server_pid = stack.procs[-1].pid
        rows = {n: [asyncio.run(level(url, n, server_pid, args.clients)) for _ in range(args.rounds)] for n in levels}
    finally:
        stack.close()
        shutil.rmtree(logdir, ignore_errors=True)
    if args.json:
        print(json.dumps({"latency_ms": args.latency_ms, "clients": args.clients, "levels": rows}))
        return
    print(
        f"model latency {args.latency_ms:g} ms; {os.cpu_count()} cores; {args.clients} SDK client(s);"
        f" medians of {args.rounds} rounds"
    )
    print("in flight | completed/s | span s | errors | SDK CPU ms/call | model server CPU ms/call")
    for n, runs in rows.items():

        def median(key: str, runs: list[dict] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        print(
            f"{n:9d} | {median('calls_per_s'):11.1f} | {median('span_s'):6.2f} | {sum(r['errors'] for r in runs):6d} |"
            f" {median('sdk_cpu_ms_per_call'):15.2f} | {median('server_cpu_ms_per_call'):24.2f}"
        )


if __name__ == "__main__":
    main()
