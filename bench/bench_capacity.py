#!/usr/bin/env python
"""In-flight capacity of ONE worker process: 1-second scripted runs, ramped until it saturates.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asteros_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        python bench/bench_capacity.py [--levels 50,100,250,500] [--latency-ms 1000]

For each level N it submits N runs at once (through the real path: a Run row, an on-commit
Celery task on Redis), one ``celery worker --pool threads`` process executes them, and it reads
from the database when each was created, started and finished. It reports completed runs/s
(N / (last finish - first create)), p50/p99 completion time, errors, and the database
connections the worker held at the peak (pg_stat_activity, by the worker's backend pids).
The database named in DATABASE_URL is created and migrated if needed; it must not be a
database you care about (runs are deleted between levels).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asteros_site.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def start_worker(concurrency: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads"]
    command += ["-c", str(concurrency), "--loglevel", "WARNING", "-n", f"bench-{os.getpid()}@localhost"]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from asteros_site.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(destination=[f"bench-{os.getpid()}@localhost"], timeout=0.5):
            return process
    process.kill()
    raise SystemExit("the worker did not start")


def worker_connections(worker_pid: int) -> int:
    """Connections from the worker process: backends whose client port belongs to it."""
    import psycopg

    out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True).stdout
    ports = {
        line.split()[3].rsplit(":", 1)[1]
        for line in out.splitlines()
        if f"pid={worker_pid}," in line and ":5432" in line
    }
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute("SELECT client_port FROM pg_stat_activity WHERE client_port IS NOT NULL").fetchall()
    return sum(1 for (port,) in rows if str(port) in ports)


def run_level(agent_id: str, count: int, worker_pid: int, timeout: float) -> dict:
    from django.db import connection

    from cosmos.models import Run, RunStatus
    from cosmos.services.runs import start_run

    Run.objects.all().delete()
    started = time.monotonic()

    def submit(i: int):
        try:
            return start_run("agent", agent_id, f"run {i}")[0].id
        finally:
            connection.close()

    # Submitting is itself a load (a transaction and a broker publish per run): spread it.
    with ThreadPoolExecutor(max_workers=32) as pool:
        ids = list(pool.map(submit, range(count)))
    submit_seconds = time.monotonic() - started
    peak_connections = peak_running = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Run.objects.filter(id__in=ids, status__in=("succeeded", "failed", "cancelled")).count()
        peak_running = max(peak_running, Run.objects.filter(id__in=ids, status=RunStatus.RUNNING).count())
        peak_connections = max(peak_connections, worker_connections(worker_pid))
        if done == count:
            break
        time.sleep(0.25)
    rows = list(Run.objects.filter(id__in=ids).values("status", "created_at", "finished_at"))
    connection.close()
    finished = [r for r in rows if r["finished_at"]]
    completions = [(r["finished_at"] - r["created_at"]).total_seconds() for r in finished]
    span = (max(r["finished_at"] for r in finished) - min(r["created_at"] for r in rows)).total_seconds()
    return {
        "in_flight": count,
        "completed": sum(1 for r in rows if r["status"] == RunStatus.SUCCEEDED),
        "errors": sum(1 for r in rows if r["status"] != RunStatus.SUCCEEDED),
        "runs_per_s": round(len(finished) / span, 1) if span else 0.0,
        "p50_s": round(statistics.median(completions), 3) if completions else None,
        "p99_s": round(percentile(completions, 0.99), 3) if completions else None,
        "submit_s": round(submit_seconds, 2),
        "peak_running": peak_running,
        "worker_db_connections_peak": peak_connections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,100,250,500")
    parser.add_argument("--latency-ms", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1000, help="the worker's --concurrency (threads)")
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: capacity is measured in distributed mode")
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from cosmos.models import Agent

    Agent.objects.update_or_create(
        id="bench-capacity",
        defaults={"provider": "scripted", "model": "scripted-offline", "parameters": {"ttft_ms": args.latency_ms}},
    )
    worker = start_worker(args.concurrency)
    results = []
    try:
        for level in (int(x) for x in args.levels.split(",")):
            result = run_level("bench-capacity", level, worker.pid, timeout=120)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    columns = ("in_flight", "peak_running", "completed", "errors", "runs_per_s", "p50_s", "p99_s")
    print("\n" + " ".join(f"{c:>12}" for c in (*columns, "db_conns")))
    for r in results:
        print(" ".join(f"{r[c]!s:>12}" for c in (*columns, "worker_db_connections_peak")))
    threads = os.environ.get("ASTEROS_DB_THREADS", "4")
    print(f"ASTEROS_DB_THREADS={threads}, latency {args.latency_ms} ms, one worker process")


if __name__ == "__main__":
    main()
