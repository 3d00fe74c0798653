#!/usr/bin/env python
"""Scenarios 1 and 2 for our runtime (no Django, no database), measured by ``bench/micro.py``.

    python bench/ours_micro.py --model-url http://127.0.0.1:M/v1 [--quick]

1. Build an agent with one tool, as a user writes it: ``AgentSpec`` (provider ``openai``, the
   model server's base URL, tool ``calculator``) + ``build_agent``. Time and tracemalloc KiB.
2. One run through ``run_agent``: a calculator call and two streamed model turns against the
   local model server at zero latency (Agno ships no in-process fake model, so both sides call
   the same server through their OpenAI SDK clients). Also, for reference only, the same run on
   our offline ``scripted`` model (no HTTP at all).

Prints one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import micro

from cosmos import outbound
from cosmos.runtime import AgentSpec, build_agent, run_agent

QUESTION = [{"role": "user", "content": "What is 6 * 7?"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-url", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-run", action="store_true", help="scenario 1 only (no model server needed)")
    args = parser.parse_args()
    url = args.model_url
    # What an operator does for a model server of its own: list its address (host:port).
    outbound.set_allowlist_source(lambda: (urlsplit(url).netloc,))

    def build():
        spec = AgentSpec(
            id="bench",
            name="bench",
            system_prompt="You are a helpful agent.",
            provider="openai",
            model="fake-model",
            tools=("calculator",),
            api_key="local",
            base_url=url,
        )
        return build_agent(spec)

    rounds, inner, memory_runs = (5, 200, 10) if args.quick else (30, 1000, 50)
    for _ in range(20):
        build()
    build_time = micro.time_us(build, rounds, inner)
    build_memory = micro.memory_kib(build, memory_runs)

    if args.no_run:
        print(json.dumps({"build": {**build_time, **build_memory}}))
        return
    agent = build()
    scripted = build_agent(AgentSpec(id="s", name="s", tools=("calculator",)))

    async def noop(event: dict) -> None:
        return None

    async def one_run() -> None:
        await run_agent(agent, QUESTION, noop)

    async def one_scripted_run() -> None:
        await run_agent(scripted, QUESTION, noop)

    async def measure() -> tuple[dict, dict]:
        outcome = await run_agent(agent, QUESTION, noop)
        assert outcome.text == "The result is 42.", outcome.text
        run_rounds, run_inner = (3, 20) if args.quick else (10, 100)
        http = await micro.async_time_us(one_run, run_rounds, run_inner)
        offline = await micro.async_time_us(one_scripted_run, run_rounds, run_inner * 10)
        return http, offline

    run, scripted_run = asyncio.run(measure())
    print(json.dumps({"build": {**build_time, **build_memory}, "run": run, "run_scripted": scripted_run}))


if __name__ == "__main__":
    main()
