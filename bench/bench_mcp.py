"""MCP both ways, as a client sees it, side by side in one run (embedded server, scripted model).

1. **The added cost of an MCP tool call.** Three agents run the same one-tool turn (the model
   asks for a sum, reads the result, answers): one calls the built-in ``calculator``, one an MCP
   server's ``add`` over Streamable HTTP (a server built with the official SDK, stateless, on
   127.0.0.1, allowlisted), one the same tool over stdio. Each run is a ``POST
   /api/agents/{id}/run?wait=60`` answered when the run is done; the rounds alternate the three
   agents, and the table shows the medians and the difference to the built-in tool.
2. **``/mcp`` tool calls per second against the REST run endpoint.** The official ``mcp``
   client's ``call_tool`` on ``/mcp`` (the same zero-latency agent as a tool), in both protocol
   eras (2026-07-28, one stateless request per call; the 2025-11-25 handshake), against ``POST
   /api/agents/{id}/run?wait=60``, at 1 and at ``--concurrency`` clients (one MCP client per
   connection), alternating rounds: p50 latency at 1 client, completed runs per second at N.

    .venv/bin/python bench/bench_mcp.py                 # a few minutes
    .venv/bin/python bench/bench_mcp.py --quick

It prints a table and writes ``bench/results/mcp-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_http import PYTHON, base_env, free_port, server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WAIT = 60

# The MCP server the agents call: one tool, the same sum the built-in calculator makes.
MCP_SERVER = textwrap.dedent(
    """
    import sys
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-tools")

    @server.tool()
    def add(a: float, b: float) -> str:
        '''Add two numbers.'''
        return f"{a + b:g}"

    if __name__ == "__main__":
        if sys.argv[1] == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), stateless_http=True,
                       json_response=True)
    """
)

PROMPT = "What is 20 + 22?"


def tool_agent(agent_id: str, call: str, tools: list[str], arguments: dict) -> dict:
    rule = {"when": r"(\d+) \+ (\d+)", "call": call, "arguments": arguments}
    return {"id": agent_id, "provider": "scripted", "tools": tools, "parameters": {"rules": [rule]}}


AGENTS = {
    "builtin": tool_agent("tool-builtin", "calculator", ["calculator"], {"expression": "$1 + $2"}),
    "mcp-http": tool_agent("tool-mcp-http", "mcp__bench-http__add", ["mcp:bench-http/add"], {"a": "$1", "b": "$2"}),
    "mcp-stdio": tool_agent("tool-mcp-stdio", "mcp__bench-stdio__add", ["mcp:bench-stdio/add"], {"a": "$1", "b": "$2"}),
}


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the MCP server exited")
        try:
            httpx.post(f"http://127.0.0.1:{port}/mcp", json={}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the MCP server did not come up")


def declare(url: str, env: dict[str, str], mcp_port: int) -> None:
    """The stdio server in the database (an operator's: never through the API), then the HTTP
    server and the agents through the API."""
    stdio = (
        "MCPServer.objects.update_or_create(name='bench-stdio', defaults={'transport': 'stdio', 'command': 'bench'})"
    )
    script = f"from interfaces.connectors.models import MCPServer; {stdio}"
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "shell", "-c", script], cwd=ROOT, env=env, check=True)
    http = {"name": "bench-http", "transport": "http", "url": f"http://127.0.0.1:{mcp_port}/mcp"}
    with httpx.Client(base_url=url, timeout=30) as client:
        for path, body in [
            ("/api/mcp-servers", http),
            *(("/api/agents", agent) for agent in AGENTS.values()),
            ("/api/agents", {"id": "zero", "provider": "scripted"}),
        ]:
            answer = client.post(path, json=body)
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"POST {path} failed: {answer.status_code} {answer.text[:500]}")


def run_once(client: httpx.Client, agent_id: str, text: str) -> float:
    started = time.perf_counter()
    answer = client.post(f"/api/agents/{agent_id}/run", params={"wait": WAIT}, json={"input": text})
    elapsed = time.perf_counter() - started
    body = answer.json()
    if answer.status_code >= 400 or body.get("status") != "succeeded":
        raise RuntimeError(f"{agent_id}: {answer.status_code} {json.dumps(body)[:500]}")
    return elapsed * 1000


def tool_cost(url: str, rounds: int, runs: int) -> dict[str, list[float]]:
    """Per agent, the medians of each round (ms): rounds alternate the agents."""
    medians: dict[str, list[float]] = {name: [] for name in AGENTS}
    with httpx.Client(base_url=url, timeout=WAIT + 30) as client:
        for agent in AGENTS.values():  # warm-up: tool lists cached, connections open
            for _ in range(3):
                run_once(client, agent["id"], PROMPT)
        for round_number in range(rounds):
            order = list(AGENTS) if round_number % 2 == 0 else list(reversed(AGENTS))
            for name in order:
                timings = [run_once(client, AGENTS[name]["id"], PROMPT) for _ in range(runs)]
                medians[name].append(statistics.median(timings))
    return medians


# --- 2. /mcp against REST


async def rest_calls(url: str, clients: int, calls: int) -> tuple[list[float], float]:
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=WAIT + 30, limits=limits) as client:

        async def one(index: int) -> float:
            started = time.perf_counter()
            answer = await client.post("/api/agents/zero/run", params={"wait": WAIT}, json={"input": f"r{index}"})
            if answer.status_code >= 400 or answer.json().get("status") != "succeeded":
                raise RuntimeError(f"REST run failed: {answer.status_code} {answer.text[:300]}")
            return (time.perf_counter() - started) * 1000

        return await _drive(one, clients, calls)


async def mcp_calls(url: str, clients: int, calls: int, mode: str) -> tuple[list[float], float]:
    from mcp import Client

    async with contextlib.AsyncExitStack() as stack:  # the SDK's sessions close in reverse order
        sessions = [await stack.enter_async_context(Client(f"{url}/mcp", mode=mode)) for _ in range(clients)]
        tools = (await sessions[0].list_tools()).tools
        name = next(t.name for t in tools if t.name == "zero")
        free: asyncio.Queue = asyncio.Queue()
        for session in sessions:
            free.put_nowait(session)

        async def one(index: int) -> float:
            session = await free.get()
            try:
                started = time.perf_counter()
                result = await session.call_tool(name, {"message": f"m{index}"})
                if result.is_error:
                    raise RuntimeError(f"/mcp call failed: {result.content}")
                return (time.perf_counter() - started) * 1000
            finally:
                free.put_nowait(session)

        return await _drive(one, clients, calls)


async def _drive(one, clients: int, calls: int) -> tuple[list[float], float]:
    """(latencies in ms, completed calls per second) of ``calls`` calls, ``clients`` at a time."""
    gate = asyncio.Semaphore(clients)

    async def bounded(index: int) -> float:
        async with gate:
            return await one(index)

    started = time.perf_counter()
    latencies = await asyncio.gather(*(bounded(i) for i in range(calls)))
    return list(latencies), calls / (time.perf_counter() - started)


DOORS = {
    "rest": rest_calls,
    "mcp-2026": functools.partial(mcp_calls, mode="auto"),  # 2026-07-28, stateless
    "mcp-2025": functools.partial(mcp_calls, mode="legacy"),  # the 2025-11-25 handshake
}


def doors(url: str, rounds: int, calls: int, concurrency: int) -> dict[str, dict[str, list[float]]]:
    figures = {door: {"p50_ms_c1": [], "runs_per_s_cN": []} for door in DOORS}
    for driver in DOORS.values():  # warm-up
        asyncio.run(driver(url, 1, 5))
    for round_number in range(rounds):
        order = list(DOORS) if round_number % 2 == 0 else list(reversed(DOORS))
        for door in order:
            latencies, _ = asyncio.run(DOORS[door](url, 1, calls))
            figures[door]["p50_ms_c1"].append(statistics.median(latencies))
            _, throughput = asyncio.run(DOORS[door](url, concurrency, calls * 2))
            figures[door]["runs_per_s_cN"].append(throughput)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="runs per agent per round (tool cost)")
    parser.add_argument("--calls", type=int, default=40, help="calls per door per round at 1 client")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 rounds, 10 runs, 20 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.runs, args.calls = 2, 10, 20

    mcp_port = free_port()
    with tempfile.TemporaryDirectory(prefix="asteros-bench-mcp-") as folder:
        workdir = Path(folder)
        script = workdir / "bench_tools.py"
        script.write_text(MCP_SERVER)
        tools_log = open(workdir / "mcp-server.log", "w")  # noqa: SIM115
        tools = subprocess.Popen([PYTHON, str(script), "http", str(mcp_port)], stdout=tools_log, stderr=tools_log)
        try:
            wait_for_port(mcp_port, tools)
            env = base_env(
                DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
                ASTEROS_OUTBOUND_ALLOWLIST=f"127.0.0.1:{mcp_port}",
                ASTEROS_MCP_STDIO_COMMANDS=f"bench={PYTHON} {script} stdio",
            )
            with server(env, "daphne", workdir) as url:
                declare(url, env, mcp_port)
                cost = tool_cost(url, args.rounds, args.runs)
                door_figures = doors(url, args.rounds, args.calls, args.concurrency)
        finally:
            tools.terminate()
            tools.wait(timeout=10)
            tools_log.close()

    report = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "args": vars(args),
        "tool_cost_round_medians_ms": cost,
        "doors": door_figures,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"mcp-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    builtin = statistics.median(cost["builtin"])
    print(f"\n1. One tool call per run, POST /api/agents/{{id}}/run?wait (median of {args.rounds} round medians)")
    print(f"   {'tool':<12} {'p50 ms':>8} {'added ms':>9}")
    for name, medians in cost.items():
        value = statistics.median(medians)
        print(f"   {name:<12} {value:8.1f} {value - builtin:9.1f}")
    print(f"\n2. The same zero-latency agent through /mcp and through REST (medians of {args.rounds} rounds)")
    print(f"   {'door':<9} {'p50 ms, 1 client':>17} {'runs/s, ' + str(args.concurrency) + ' clients':>20}")
    for door, figures in door_figures.items():
        print(
            f"   {door:<9} {statistics.median(figures['p50_ms_c1']):17.1f} "
            f"{statistics.median(figures['runs_per_s_cN']):20.1f}"
        )
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
