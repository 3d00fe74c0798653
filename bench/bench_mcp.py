"""The MCP door's cost: ``tools/list`` and ``tools/call`` over ``/mcp`` against the same run over REST.

One embedded server process (daphne, SQLite) and an offline scripted agent that answers at once.
The official Python client (``mcp.Client``) is used in both protocol eras: 2026-07-28 (one
stateless request per call) and the 2025-11-25 handshake; REST is ``POST /api/agents/{id}/run
?wait=30``, the run API's own round trip. Each figure is the median (and p95) of ``--calls``
sequential requests after a warm-up, then the throughput of ``--concurrency`` clients at once:

    .venv/bin/python bench/bench_mcp.py                 # 100 calls, 8 at once
    .venv/bin/python bench/bench_mcp.py --calls 30 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_http import base_env, server
from tests.support.mcp import connect

AGENT = {"id": "quick", "provider": "scripted", "model": "scripted-offline", "parameters": {"reply": "ok: {input}"}}
WARM_UP = 5


async def timed(step: Callable[[int], Awaitable[object]], count: int) -> list[float]:
    for index in range(WARM_UP):
        await step(index)
    times = []
    for index in range(count):
        started = time.perf_counter()
        await step(index)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def rate(clients: int, one_client: Callable[[], Awaitable[int]]) -> float:
    """Calls per second of ``clients`` clients at once, each making its calls one after another."""
    started = time.perf_counter()
    done = await asyncio.gather(*(one_client() for _ in range(clients)))
    return sum(done) / (time.perf_counter() - started)


async def measure(url: str, calls: int, concurrency: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    each = max(1, calls // concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as rest:
        (await rest.post("/api/agents", json=AGENT)).raise_for_status()

        async def rest_call(index: int) -> object:
            response = await rest.post("/api/agents/quick/run?wait=30", json={"input": f"rest {index}"})
            response.raise_for_status()
            return response

        async def rest_client() -> int:
            for index in range(each):
                await rest_call(index)
            return each

        results["REST run ?wait"] = summary(await timed(rest_call, calls))
        results["REST run ?wait"]["per_s"] = await rate(concurrency, rest_client)

    for mode, label in (("auto", "MCP 2026-07-28"), ("legacy", "MCP 2025-11-25")):

        async def mcp_client(mode: str = mode) -> int:
            async with connect(f"{url}/mcp", mode=mode) as client:
                for index in range(each):
                    await client.call_tool("quick", {"message": f"many {index}"})
            return each

        async with connect(f"{url}/mcp", mode=mode) as client:
            results[f"{label} tools/list"] = summary(await timed(lambda _index: client.list_tools(), calls))

            async def call(index: int, client=client) -> object:
                result = await client.call_tool("quick", {"message": f"mcp {index}"})
                assert not result.is_error, result
                return result

            results[f"{label} tools/call"] = summary(await timed(call, calls))
        results[f"{label} tools/call"]["per_s"] = await rate(concurrency, mcp_client)
    return results


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": statistics.median(ordered), "p95_ms": ordered[int(len(ordered) * 0.95) - 1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asteros-bench-mcp-") as folder:
        workdir = Path(folder)
        env = base_env(DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}")
        with server(env, "daphne", workdir) as url:
            results = asyncio.run(measure(url, args.calls, args.concurrency))
    print(f"{'':32} {'median':>9} {'p95':>9} {f'{args.concurrency} at once':>14}")
    for name, figures in results.items():
        rate = f"{figures['per_s']:8.1f} /s" if "per_s" in figures else ""
        print(f"{name:32} {figures['median_ms']:6.1f} ms {figures['p95_ms']:6.1f} ms {rate:>14}")


if __name__ == "__main__":
    main()
