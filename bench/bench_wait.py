"""``GET /api/agents`` latency with and without ``POST .../run?wait=`` requests open.

One embedded server process (daphne, SQLite, ``ASTEROS_HTTP_THREADS`` request threads). The
script measures sequential ``GET /api/agents`` latencies on an idle server, then again while
``--waits`` waits (on runs that take minutes) are open, and prints both medians and maxima:

    .venv/bin/python bench/bench_wait.py             # 100 waits, 50 GETs each
    .venv/bin/python bench/bench_wait.py --waits 10

Before the waits moved to the event loop, each wait held a request thread: with 10 waits open
(8 threads) a GET took as long as the waits lasted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_http import base_env, server

WAIT_SECONDS = 60


async def latencies(client: httpx.AsyncClient, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get("/api/agents", timeout=WAIT_SECONDS + 30)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


async def measure(url: str, waits: int, gets: int) -> dict[str, list[float]]:
    limits = httpx.Limits(max_connections=waits + 10, max_keepalive_connections=waits + 10)
    async with httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS + 30, limits=limits) as client:
        slow = {"id": "slow", "provider": "scripted", "parameters": {"ttft_ms": 600_000}}
        (await client.post("/api/agents", json=slow)).raise_for_status()
        idle = await latencies(client, gets)
        pending = [
            asyncio.create_task(client.post(f"/api/agents/slow/run?wait={WAIT_SECONDS}", json={"input": str(i)}))
            for i in range(waits)
        ]
        while len((await client.get("/api/runs", params={"target": "slow", "limit": 1000})).json()["results"]) < waits:
            await asyncio.sleep(0.1)
        busy = await latencies(client, gets)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return {"idle": idle, "busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=100)
    parser.add_argument("--gets", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asteros-bench-wait-") as folder:
        workdir = Path(folder)
        env = base_env(DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}")
        with server(env, "daphne", workdir) as url:
            results = asyncio.run(measure(url, args.waits, args.gets))
    for name, values in results.items():
        label = "idle" if name == "idle" else f"{args.waits} waits open"
        print(f"GET /api/agents, {label:>14}: median {statistics.median(values):6.1f} ms, max {max(values):7.1f} ms")


if __name__ == "__main__":
    main()
