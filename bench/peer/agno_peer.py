#!/usr/bin/env python
"""The peer side of the benchmarks: Agno agents and Agno's AgentOS, pointed at the local model server.

Runs only in the bench-only virtual environment ``bench/.venv-peer`` (``make bench`` creates it);
the product never imports Agno. Two uses:

    python bench/peer/agno_peer.py serve --port P --model-url http://127.0.0.1:M/v1 [--agents 20]
        [--db none|sqlite:PATH|postgres:URL] [--durable] [--max-concurrency 1000]
    python bench/peer/agno_peer.py micro --model-url http://127.0.0.1:M/v1 [--quick]

``serve`` builds AgentOS with the same agents as ours (``bench/ours_setup.py``, the same
``--agents``, 20 by default): ``bench-0`` … ``bench-<N-3>`` and ``bench-slow`` use Agno's
OpenAIChat, ``bench-stream`` its Claude, each with ``base_url`` = a model server, and each has one
tool, ``calculator``; AgentOS and serves its FastAPI app with ONE uvicorn process on 127.0.0.1.
``micro`` prints one line of JSON: scenario 1 (build one agent with one tool) and scenario 2 (one
in-process run: a tool call, two model turns).
Telemetry is off (AGNO_TELEMETRY=false, telemetry=False): nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import operator
import os
import sys
from pathlib import Path

os.environ["AGNO_TELEMETRY"] = "false"
os.environ.setdefault("AGNO_DEBUG", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for micro.py (stdlib only)

from agno.agent import Agent
from agno.models.openai import OpenAIChat

MODEL_ID = "fake-model"
API_KEY = "local"

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.operand))
    raise ValueError("only arithmetic is allowed")


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly.

    Args:
        expression: The expression, e.g. "6 * 7".
    """
    return str(_evaluate(ast.parse(expression, mode="eval").body))


def make_agent(model_url: str, agent_id: str = "bench", db=None, api: str = "openai") -> Agent:
    """What a user writes: an agent with a model and one tool."""
    if api == "anthropic":
        from agno.models.anthropic import Claude

        model = Claude(id=MODEL_ID, api_key=API_KEY, client_params={"base_url": model_url})
    else:
        model = OpenAIChat(id=MODEL_ID, base_url=model_url, api_key=API_KEY)
    return Agent(
        id=agent_id,
        name=agent_id,
        model=model,
        tools=[calculator],
        instructions="You are a helpful agent.",
        db=db,
        telemetry=False,
    )


def make_db(spec: str):
    if spec == "none":
        return None
    kind, _, target = spec.partition(":")
    if kind == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=target)
    if kind == "postgres":
        from agno.db.postgres import PostgresDb

        url = target.replace("postgres://", "postgresql+psycopg://", 1).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
        return PostgresDb(db_url=url)
    if kind == "memory":
        from agno.db.in_memory import InMemoryDb

        return InMemoryDb()
    raise SystemExit(f"unknown --db {spec!r}")


def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from agno.os import AgentOS

    db = make_db(args.db)
    agents = [make_agent(args.model_url, f"bench-{i}", db=db) for i in range(args.agents - 2)]
    agents.append(make_agent(args.stream_model_url, "bench-stream", db=db, api="anthropic"))
    agents.append(make_agent(args.slow_model_url or args.model_url, "bench-slow", db=db))
    options = {}
    if args.max_concurrency is not None or args.durable:
        from agno.job_queue.config import QueueConfig

        options["queue"] = QueueConfig(max_concurrency=args.max_concurrency, durable=args.durable)
    agent_os = AgentOS(id="bench-os", name="bench", agents=agents, db=db, telemetry=False, **options)
    app = agent_os.get_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def micro(args: argparse.Namespace) -> None:
    import micro as m

    url = args.model_url

    def build() -> Agent:
        return make_agent(url)

    rounds, inner, memory_runs = (5, 200, 10) if args.quick else (30, 1000, 50)
    for _ in range(20):
        build()
    build_time = m.time_us(build, rounds, inner)
    build_memory = m.memory_kib(build, memory_runs)

    if args.no_run:
        print(json.dumps({"build": {**build_time, **build_memory}, "python": sys.version.split()[0]}))
        return
    agent = make_agent(url)

    async def one_run() -> int:
        events = 0
        async for _event in agent.arun("What is 6 * 7?", stream=True):
            events += 1
        return events

    async def check() -> None:
        output = await agent.arun("What is 6 * 7?")
        assert output.content == "The result is 42.", output.content

    async def measure() -> dict:
        await check()  # the same loop throughout: the SDK's client belongs to the loop that opened it
        return await m.async_time_us(one_run, rounds=3 if args.quick else 10, inner=20 if args.quick else 100)

    run = asyncio.run(measure())
    print(json.dumps({"build": {**build_time, **build_memory}, "run": run, "python": sys.version.split()[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--model-url", required=True)
    s.add_argument("--stream-model-url", required=True, help="Anthropic API base URL (long replies)")
    s.add_argument("--slow-model-url", default=None, help="OpenAI base URL of bench-slow (capacity)")
    s.add_argument("--agents", type=int, default=20)
    s.add_argument("--db", default="none")
    s.add_argument("--durable", action="store_true")
    s.add_argument("--max-concurrency", type=int, default=None)
    mi = sub.add_parser("micro")
    mi.add_argument("--model-url", required=True)
    mi.add_argument("--quick", action="store_true")
    mi.add_argument("--no-run", action="store_true", help="scenario 1 only (no model server needed)")
    args = parser.parse_args()
    {"serve": serve, "micro": micro}[args.command](args)


if __name__ == "__main__":
    main()
