#!/usr/bin/env python
"""What calling an MCP server's tool costs us, against the SDK alone.

    .venv/bin/python bench/bench_mcp_client.py                 # 200 calls per case
    .venv/bin/python bench/bench_mcp_client.py --calls 50

It starts the test MCP server (``tests/support/mcp_server_app.py``, the official SDK) over
Streamable HTTP at each revision (2026-07-28, and 2025-11-25 only), and over stdio, then times
sequential ``echo`` calls three ways:

- ``sdk, one session``: one SDK ``Client`` held open, ``call_tool`` repeated (the floor);
- ``sdk, session per call``: a new SDK ``Client`` for each call (what a stateless client pays);
- ``asteros``: ``interfaces.connectors.mcp_client.call_tool``, as a run's tool calls it: a session
  per call, every request through the outbound policy (``cosmos.outbound``), the tool-change
  subscription held during the call at 2026-07-28.

It prints the median and p95 of each, and writes ``bench/results/mcp-client-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp import Client, StdioServerParameters  # noqa: E402

from cosmos import outbound  # noqa: E402
from interfaces.connectors.mcp_client import ServerSpec, call_tool  # noqa: E402
from tests.support.mcp_servers import APP, MCPTestServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"


async def timed(calls: int, once: Callable[[], Awaitable[object]]) -> list[float]:
    await once()  # warm-up
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        await once()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


async def http_cases(url: str, calls: int) -> dict[str, dict[str, float]]:
    spec = ServerSpec(name="bench", transport="http", url=url)

    async def per_call_sdk() -> None:
        async with Client(url, cache=None) as client:
            await client.call_tool("echo", {"text": "hi"})

    async def ours() -> None:
        await call_tool(spec, "echo", {"text": "hi"}, on_list_changed=lambda: None)

    async with Client(url, cache=None) as held:
        one_session = await timed(calls, lambda: held.call_tool("echo", {"text": "hi"}))
    return {
        "sdk, one session": summary(one_session),
        "sdk, session per call": summary(await timed(calls, per_call_sdk)),
        "asteros": summary(await timed(calls, ours)),
    }


async def stdio_cases(calls: int) -> dict[str, dict[str, float]]:
    params = StdioServerParameters(command=sys.executable, args=[str(APP), "stdio"])
    async with Client(params, cache=None) as held:
        one_session = await timed(calls, lambda: held.call_tool("echo", {"text": "hi"}))
    return {"sdk, one session": summary(one_session)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    outbound.set_allowlist_source(lambda: ("127.0.0.1",))  # the local test server
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, legacy in (("http 2026-07-28", False), ("http 2025-11-25", True)):
        with MCPTestServer.http(legacy=legacy) as server:
            results[label] = asyncio.run(http_cases(server.url, args.calls))
    results["stdio"] = asyncio.run(stdio_cases(args.calls))
    for label, cases in results.items():
        print(label)
        for case, figures in cases.items():
            print(f"  {case:<24} median {figures['median_ms']:>8.2f} ms   p95 {figures['p95_ms']:>8.2f} ms")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"mcp-client-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"calls": args.calls, "results": results}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
