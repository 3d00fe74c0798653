#!/usr/bin/env python
"""Star time of two workers that work in parallel, against the sum of their times.

    python bench/bench_stars.py [--repeat 5] [--latency-ms 1000]

A delegate-mode star: a scripted leader delegates to two scripted workers in one turn; each
worker takes ``--latency-ms`` (its model's time to first token). The star run goes through the
real pipeline (a Run row, the run engine, child runs, the event log) on a throwaway SQLite
database. For each repeat it reads from the database:

- star time: the star run's ``finished_at - started_at``;
- sequential sum: the two worker child runs' durations added up (what the star would take if
  the workers ran one after the other);
- ratio: star time / sequential sum (about 0.5 plus the leader's overhead when they overlap).

Prints a small table of the medians, then one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup(database: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("ASTEROS_ENABLE_LOGGING", "false")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_star(latency_ms: int) -> str:
    from cosmos.models import Agent
    from stars.models import Membership, Role, Star

    def agent(agent_id: str, parameters: dict) -> Agent:
        return Agent.objects.create(id=agent_id, provider="scripted", model="scripted-offline", parameters=parameters)

    rules = [
        {"when": ".", "call": "delegate", "arguments": {"member": name, "instruction": f"part {name}"}}
        for name in ("a", "b")
    ]
    leader = agent("bench-leader", {"rules": rules})
    star = Star.objects.create(id="bench-star", mode="delegate")
    Membership.objects.create(star=star, agent=leader, name="lead", role=Role.LEADER, order=0)
    for order, name in enumerate(("a", "b"), start=1):
        worker = agent(f"bench-{name}", {"ttft_ms": latency_ms, "reply": f"answer {name}"})
        Membership.objects.create(star=star, agent=worker, name=name, role=Role.WORKER, order=order)
    return star.id


def one_run(star_id: str) -> dict[str, float]:
    from cosmos.engine import get_engine
    from cosmos.models import Run
    from cosmos.services.runs import start_run

    run, _ = start_run("star", star_id, "benchmark task", origin="cli", dispatch=False)
    started = time.perf_counter()
    status = get_engine().submit(str(run.id)).result(timeout=120)
    wall = time.perf_counter() - started
    run.refresh_from_db()
    if status != "succeeded":
        raise SystemExit(f"the star run ended {run.status}: {run.error}")
    workers = [c for c in Run.objects.filter(parent=run) if c.metadata.get("star_role") == "worker"]
    sequential = sum(w.duration_seconds for w in workers)
    return {
        "star_seconds": run.duration_seconds,
        "wall_seconds": wall,
        "sequential_sum_seconds": sequential,
        "ratio": run.duration_seconds / sequential,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asteros-bench-stars-") as folder:
        setup(Path(folder) / "bench.sqlite3")
        star_id = make_star(args.latency_ms)
        one_run(star_id)  # warm-up: imports, the engine's loop, SQLite's first writes
        samples = [one_run(star_id) for _ in range(args.repeat)]
    medians = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    print(f"two {args.latency_ms} ms workers, delegate mode, median of {args.repeat} runs")
    print(f"  star time (started -> finished)   {medians['star_seconds']:.3f} s")
    print(f"  wall time (submit -> result)      {medians['wall_seconds']:.3f} s")
    print(f"  sequential sum of the workers     {medians['sequential_sum_seconds']:.3f} s")
    print(f"  ratio star / sequential           {medians['ratio']:.2f}")
    result = {"bench": "stars", "latency_ms": args.latency_ms, "repeat": args.repeat}
    print(json.dumps(result | {k: round(v, 4) for k, v in medians.items()}))


if __name__ == "__main__":
    main()
