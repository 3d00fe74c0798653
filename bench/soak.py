#!/usr/bin/env python
"""The soak: many runs at a steady rate through distributed AsterOS, then an audit of every one.

    make soak                                   # 10,000 runs at 50 runs/s (about 4 minutes)
    make soak SOAK_ARGS="--runs 2000 --rate 100"
    .venv/bin/python bench/soak.py --services env   # DATABASE_URL / REDIS_URL instead of private ones

It starts private PostgreSQL and Redis (as the benchmark harness does), one API process
(``asteros serve``) and one Celery worker process, and an agent on the offline ``scripted`` model
(a short first-token delay and a 20-token answer, so the runs exercise the event log). Then:

1. submits ``--runs`` runs over HTTP at ``--rate`` per second, from this process (bounded in
   count and time), keeping every accepted run id;
2. waits until every run is terminal (bounded by ``--drain-seconds``);
3. audits the database: every accepted run exists and succeeded; every run's events are numbered
   1..N with no gap and exactly one final event (``RUN_FINISHED`` or ``RUN_ERROR``);
4. reports the resident memory of the API and the worker at the start, every tenth of the way,
   and at the end: a leak shows as a steady climb.

It prints a table and writes ``bench/results/soak-<time>.json``. Exit status 1 if a run or an
event was lost. It is not part of ``make test``: it takes minutes by design.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_agno import OURS_PY, RESULTS, ROOT, Services, Stack, rss_kib, wait_http

AGENT = "soak"
FINAL_EVENTS = ("RUN_FINISHED", "RUN_ERROR")
CREATE_AGENT = f"""
from cosmos.models import Agent
Agent.objects.update_or_create(id={AGENT!r}, defaults=dict(
    name="soak", provider="scripted", model="scripted-offline",
    parameters={{"ttft_ms": 20, "reply_tokens": 20}}))
"""
AUDIT_EVENTS = """
SELECT count(*) FILTER (WHERE n <> last OR first <> 1),
       count(*) FILTER (WHERE finals <> 1),
       coalesce(sum(n), 0)
FROM (SELECT run_id, count(*) AS n, min(seq) AS first, max(seq) AS last,
             count(*) FILTER (WHERE type = ANY(%s)) AS finals
      FROM cosmos_runevent GROUP BY run_id) AS per_run
"""

RUNS_WITHOUT_EVENTS = """
SELECT count(*) FROM cosmos_run r WHERE NOT EXISTS (SELECT 1 FROM cosmos_runevent e WHERE e.run_id = r.id)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="runs submitted per second")
    parser.add_argument("--services", choices=("auto", "private", "env"), default="auto")
    parser.add_argument("--drain-seconds", type=float, default=300, help="how long to wait for the last runs")
    return parser.parse_args(argv)


async def submit(url: str, runs: int, rate: float, on_progress) -> tuple[list[str], list[str]]:
    """POST ``runs`` runs at a steady ``rate``; returns (accepted run ids, errors)."""
    import httpx

    accepted: list[str] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(index: int) -> None:
            try:
                response = await client.post(f"/api/agents/{AGENT}/run", json={"input": f"soak run {index}"})
            except httpx.HTTPError as exc:
                errors.append(f"{index}: {exc.__class__.__name__}")
                return
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            else:
                errors.append(f"{index}: HTTP {response.status_code} {response.text[:200]}")

        started = time.monotonic()
        pending: set[asyncio.Task] = set()
        for index in range(runs):
            # Steady rate: each submission has its slot in time; never burst to catch up.
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(index))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if index and index % max(1, runs // 10) == 0:
                on_progress(index)
        await asyncio.gather(*pending)
    return accepted, errors


def status_counts(conn) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM cosmos_run GROUP BY status").fetchall())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import psycopg

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = RESULTS / f"soak-logs-{stamp}"
    logdir.mkdir(parents=True, exist_ok=True)
    services = Services(args.services, logdir)
    stack = Stack(logdir, peer_py=None)
    try:
        if not services.start():
            print(f"soak: {services.problem}", file=sys.stderr)
            return 2
        database_url = services.database("asteros_soak")
        env = stack.ours_env(
            {"openai": "http://127.0.0.1:9", "anthropic": "http://127.0.0.1:9"}, database_url, services.redis_url
        )
        for command in (["migrate", "--noinput"], ["shell", "-c", CREATE_AGENT]):
            setup = stack.start(f"setup-{command[0]}", [OURS_PY, "manage.py", *command], env)
            if setup.popen.wait(timeout=300) != 0:
                raise RuntimeError(f"manage.py {command[0]} failed:\n{setup.tail()}")
        api, url = stack.ours_server("api", env)
        worker = stack.ours_worker("worker", env)
        wait_http(url + "/health", worker, timeout=90)

        pids = {"api": api.pid, "worker": worker.pid}
        rss: list[dict[str, Any]] = []

        def sample(label: str) -> None:
            rss.append({"at": label} | {name: rss_kib(pid) // 1024 for name, pid in pids.items()})

        # Warm up both processes (imports, pools, first runs) before the first memory sample.
        asyncio.run(submit(url, 20, 20, lambda _: None))
        time.sleep(2)
        sample("start")
        began = time.monotonic()
        accepted, errors = asyncio.run(
            submit(url, args.runs, args.rate, lambda index: sample(f"{100 * index // args.runs}%"))
        )
        submitted_in = time.monotonic() - began

        with psycopg.connect(database_url, autocommit=True) as conn:
            deadline = time.monotonic() + args.drain_seconds
            while time.monotonic() < deadline:
                counts = status_counts(conn)
                if not counts.get("queued") and not counts.get("running"):
                    break
                time.sleep(1)
            drained_in = time.monotonic() - began
            time.sleep(5)  # idle, so the end sample is not a transient
            sample("end")
            found = {
                str(row[0]): row[1]
                for row in conn.execute("SELECT id, status FROM cosmos_run WHERE id = ANY(%s::uuid[])", (accepted,))
            }
            gaps, bad_finals, events = conn.execute(AUDIT_EVENTS, (list(FINAL_EVENTS),)).fetchone()
            without_events = conn.execute(RUNS_WITHOUT_EVENTS).fetchone()[0]
            counts = status_counts(conn)
        missing = len(accepted) - len(found)
        not_succeeded = sum(1 for status in found.values() if status != "succeeded")
        report = {
            "date": stamp,
            "runs_requested": args.runs,
            "rate_per_second": args.rate,
            "accepted": len(accepted),
            "submit_errors": len(errors),
            "first_errors": errors[:10],
            "submitted_in_seconds": round(submitted_in, 1),
            "drained_in_seconds": round(drained_in, 1),
            "statuses": counts,
            "lost_runs": missing,
            "runs_not_succeeded": not_succeeded,
            "runs_with_event_gaps": gaps,
            "runs_without_exactly_one_final_event": bad_finals,
            "runs_without_events": without_events,
            "events": int(events),
            "rss_mib": rss,
        }
    finally:
        stack.close()
        services.stop()

    out = RESULTS / f"soak-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print_report(report, out)
    lost = missing + gaps + bad_finals + without_events + not_succeeded + len(errors)
    return 1 if lost else 0


def print_report(report: dict[str, Any], out: Path) -> None:
    print(
        f"soak: {report['accepted']:,} of {report['runs_requested']:,} runs accepted at {report['rate_per_second']}/s"
    )
    print(f"  submitted in {report['submitted_in_seconds']} s, all terminal after {report['drained_in_seconds']} s")
    print(f"  statuses: {report['statuses']}; submit errors: {report['submit_errors']}")
    print(
        f"  lost runs: {report['lost_runs']}; not succeeded: {report['runs_not_succeeded']}; "
        f"event gaps: {report['runs_with_event_gaps']}; bad final events: "
        f"{report['runs_without_exactly_one_final_event']}; runs without events: {report['runs_without_events']}"
    )
    print(f"  events stored: {report['events']:,}")
    print("  RSS (MiB):   " + "  ".join(f"{s['at']:>5}" for s in report["rss_mib"]))
    for name in ("api", "worker"):
        print(f"    {name:<10} " + "  ".join(f"{s[name]:>5}" for s in report["rss_mib"]))
    print(f"  written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
