#!/usr/bin/env python
"""Prepare our database for the server benchmarks: migrate, then exactly the benchmark agents.

    DATABASE_URL=... python bench/ours_setup.py [--reset-runs] [--agents 20]

Agents (the same set the peer registers with the same ``--agents``, 20 by default): ``bench-0`` …
``bench-<N-3>`` (provider ``openai``, one tool: ``calculator``), ``bench-stream`` (provider
``anthropic``: the streaming scenario's long-reply model server), ``bench-slow`` (provider
``openai``: the capacity scenario runs it on a process whose ``OPENAI_BASE_URL`` is the 1-second
model server). Every other agent is removed, so ``GET /api/agents`` lists exactly N. The model
servers' base URLs are not stored: the runtime reads ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``
from the serving process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")

MODEL = "fake-model"
PROMPT = "You are a helpful agent."


def agent_rows(count: int = 20) -> dict[str, dict]:
    rows = {f"bench-{i}": {"provider": "openai"} for i in range(max(1, count - 2))}
    rows["bench-stream"] = {"provider": "anthropic"}
    rows["bench-slow"] = {"provider": "openai"}
    for fields in rows.values():
        fields |= {"model": MODEL, "tools": ["calculator"], "system_prompt": PROMPT}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset-runs", action="store_true", help="delete every run (a benchmark database only)")
    parser.add_argument("--agents", type=int, default=20, help="how many agents in all (at least 3)")
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cosmos.models import Agent, Run

    if args.reset_runs:
        Run.objects.all().delete()
    rows = agent_rows(args.agents)
    Agent.objects.exclude(id__in=list(rows)).delete()
    for agent_id, fields in rows.items():
        Agent.objects.update_or_create(id=agent_id, defaults={"name": agent_id, **fields})
    print(f"{Agent.objects.count()} agents")


if __name__ == "__main__":
    main()
