"""What 10,000 runs waiting for a person cost: a worker's memory, threads and connections, the
engine's own count, lease renewals, rows per run, and the queries a reviewer's inbox makes.

Distributed mode on PostgreSQL and Redis, in a fresh database created for the bench and dropped
after it (on the server of ``DATABASE_URL``; Redis at ``REDIS_URL``). One ``celery worker``
(threads pool) executes the runs.

1. Warm-up: ``--sample`` runs that need no approval, so the worker's threads and connection pool
   are at their working size; then the *before* figures of the worker process.
2. ``--sample`` real pauses: runs of an agent whose calculator calls wait for approval, executed
   by the worker until each is ``interrupted``.
3. The rest of ``--runs`` written in bulk through the same models, copying a real pause's rows
   (the run with its checkpoint, its events, its interrupt): what the database holds for a
   waiting run, without waiting for thousands of model turns.
4. Three lease periods later (``ASTEROS_LEASE_SECONDS``, 6 s here: a renewal tick every 2 s),
   the *after* figures: the worker's RSS, threads and PostgreSQL connections, the engine's own
   run count (its heartbeat row), the waiting runs updated meanwhile (every UPDATE of a run sets
   ``updated_at``: a lease renewal would show) and holding a lease.
5. Timings, median of ``--rounds``: the inbox (``GET /api/interrupts?status=pending``'s query
   through the ORM: the count and the newest page of 50, described), one run's pending
   interrupts, a page of 50 runs' interrupts (``interrupts_of``), the reaper's tick
   (``reap_expired_runs`` and ``expire_due``) with everything waiting, and ``resolve`` of one
   real pause (then the time until the worker has finished it).

    .venv/bin/python bench/bench_interrupts.py
    .venv/bin/python bench/bench_interrupts.py --runs 1000 --sample 20     # quick
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/bench_interrupts.py

It prints a table and writes ``bench/results/interrupts-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
LEASE_SECONDS = 6
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
BULK_BATCH = 1000
PAGE = 50


# ---- the database and the worker ------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_sql(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


def configure(database_url: str, redis_url: str) -> dict[str, str]:
    """This process's environment (then ``django.setup()``); the worker's is the same."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR",)}
    env |= {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-a-secret",
        "ASTEROS_LOG_LEVEL": "warning",
        "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
    }
    os.environ.clear()
    os.environ.update(env)
    return env


def start_worker(env: dict[str, str], concurrency: int, log: Path) -> tuple[subprocess.Popen, str]:
    hostname = f"bench-interrupts-{uuid.uuid4().hex[:6]}@localhost"
    command = [PYTHON, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", str(concurrency)]
    command += ["-n", hostname, "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    from asteros_site.celery import app

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        if app.control.ping(destination=[hostname], timeout=0.5):
            return process, hostname
    raise RuntimeError("the worker did not answer within 90 s:\n" + log.read_text()[-3000:])


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def process_figures(pid: int) -> dict[str, float]:
    """RSS (MiB) and threads of a process, from /proc, and its PostgreSQL connections."""
    from django.db import connection

    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    with connection.cursor() as cursor:
        # Every backend of the bench's database but this process's own: the worker's.
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        connections = cursor.fetchone()[0]
    return {
        "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(status["Threads"]),
        "db_connections": connections,
    }


# ---- the runs --------------------------------------------------------------------------------


def make_agents() -> tuple[str, str]:
    from cosmos.models import Agent

    Agent.objects.create(id="bench-plain", provider="scripted", tools=["calculator"])
    Agent.objects.create(
        id="bench-approver", provider="scripted", tools=["calculator"], approvals={"calculator": "always"}
    )
    return "bench-plain", "bench-approver"


def start_runs(agent_id: str, count: int) -> list[str]:
    from cosmos.services import runs as run_services

    return [str(run_services.start_run("agent", agent_id, f"what is {i}*7?")[0].id) for i in range(count)]


def wait_for(run_ids: list[str], statuses: tuple[str, ...], timeout: float = 300) -> None:
    from cosmos.models import Run

    deadline = time.monotonic() + timeout
    while Run.objects.filter(id__in=run_ids).exclude(status__in=statuses).exists():
        if time.monotonic() > deadline:
            left = Run.objects.filter(id__in=run_ids).exclude(status__in=statuses).count()
            raise RuntimeError(f"{left} run(s) not {statuses} after {timeout:.0f} s")
        time.sleep(0.2)


def bulk_pauses(template_id: str, count: int) -> None:
    """``count`` waiting runs like ``template_id``: the run row, its events, its interrupt."""
    from django.db import transaction

    from cosmos.models import Interrupt, Run, RunEvent

    run = Run.objects.get(id=template_id)
    events = list(RunEvent.objects.filter(run_id=template_id).order_by("seq"))
    (interrupt,) = Interrupt.objects.filter(run_id=template_id)
    written = 0
    while written < count:
        batch = min(BULK_BATCH, count - written)
        runs, rows, interrupts = [], [], []
        for _ in range(batch):
            run_id, interrupt_id = uuid.uuid4(), uuid.uuid4()
            checkpoint = {**run.checkpoint, "interrupts": [str(interrupt_id)]}
            runs.append(_copy(run, id=run_id, checkpoint=checkpoint))
            rows += [_copy(event, id=None, run_id=run_id) for event in events]
            interrupts.append(_copy(interrupt, id=interrupt_id, run_id=run_id, root_run_id=run_id))
        with transaction.atomic():
            Run.objects.bulk_create(runs)
            RunEvent.objects.bulk_create(rows)
            Interrupt.objects.bulk_create(interrupts)
        written += batch


def _copy(instance, **changes):
    values = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    return type(instance)(**(values | changes))


def stored_per_run(runs: int) -> dict[str, float]:
    from django.db import connection

    from cosmos.models import Interrupt, Run, RunEvent

    figures = {
        "runs": Run.objects.filter(status="interrupted").count(),
        "pending_interrupts": Interrupt.objects.filter(status="pending").count(),
        "rows_per_run": round(
            (Run.objects.count() + RunEvent.objects.count() + Interrupt.objects.count()) / Run.objects.count(), 2
        ),
        "events_per_run": round(RunEvent.objects.count() / Run.objects.count(), 2),
    }
    with connection.cursor() as cursor:
        total = 0
        for table in ("cosmos_run", "cosmos_runevent", "cosmos_interrupt"):
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            total += cursor.fetchone()[0]
    figures["kib_per_run"] = round(total / 1024 / Run.objects.count(), 2)  # tables and their indexes
    return figures


# ---- timings ---------------------------------------------------------------------------------


def timed(work: Callable[[], object], rounds: int) -> dict[str, float]:
    """Median and max of ``rounds`` calls, in ms (after one unmeasured call)."""
    work()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def inbox_page() -> list[dict]:
    """What ``GET /api/interrupts?status=pending`` reads: the count and the newest page."""
    from cosmos.models import Interrupt
    from cosmos.services.interrupts import describe

    pending = Interrupt.objects.filter(status="pending")
    count = pending.count()
    return [describe(i) for i in pending.order_by("-created_at")[:PAGE]] + [{"count": count}]


def query_timings(rounds: int, sample_run: str) -> dict[str, dict[str, float]]:
    from cosmos.models import Run
    from cosmos.services import interrupts, leases

    page_of_runs = list(Run.objects.order_by("-created_at")[:PAGE])
    return {
        "inbox: count + newest 50 pending, described": timed(inbox_page, rounds),
        "one run's pending interrupts": timed(lambda: interrupts.pending_interrupts(sample_run), rounds),
        "interrupts of a page of 50 runs": timed(lambda: interrupts.interrupts_of(page_of_runs), rounds),
        "reaper tick: reap_expired_runs": timed(leases.reap_expired_runs, rounds),
        "reaper tick: expire_due": timed(interrupts.expire_due, rounds),
    }


def resolve_timings(run_ids: list[str]) -> dict[str, dict[str, float]]:
    """``resolve`` of one real pause at a time, then the time until its run has succeeded."""
    from cosmos.models import Interrupt, Run
    from cosmos.services import interrupts

    resolving, finishing = [], []
    for run_id in run_ids:
        (interrupt,) = Interrupt.objects.filter(run_id=run_id, status="pending")
        started = time.perf_counter()
        interrupts.resolve(interrupt.id, "approve", resolved_by="bench")
        resolving.append((time.perf_counter() - started) * 1000)
        while Run.objects.filter(id=run_id).values_list("status", flat=True).get() not in ("succeeded", "failed"):
            time.sleep(0.005)
        finishing.append((time.perf_counter() - started) * 1000)
        assert Run.objects.get(id=run_id).status == "succeeded"

    def summary(values: list[float]) -> dict[str, float]:
        return {"median_ms": round(statistics.median(values), 2), "max_ms": round(max(values), 2)}

    return {"resolve one (approve)": summary(resolving), "resolve -> run succeeded": summary(finishing)}


def quiet_window(worker_started: datetime, seconds: float) -> dict[str, int]:
    """Wait ``seconds``; what touched the waiting runs meanwhile, and the engine's own count."""
    from django.utils import timezone

    from cosmos.models import Run, WorkerHeartbeat

    since = timezone.now()
    time.sleep(seconds)
    waiting = Run.objects.filter(status="interrupted")
    beat = WorkerHeartbeat.objects.filter(seen_at__gt=since).order_by("-seen_at").first()
    return {
        "waiting_runs_updated_in_window": waiting.filter(updated_at__gt=since).count(),
        "waiting_runs_with_a_lease": waiting.exclude(lease_expires_at=None).count(),
        "waiting_runs_with_a_worker": waiting.exclude(worker_id="").count(),
        "engine_local_runs": beat.active_runs if beat else -1,
        "window_s": seconds,
    }


# ---- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="waiting runs in all")
    parser.add_argument("--sample", type=int, default=100, help="of which real pauses")
    parser.add_argument("--resolve", type=int, default=20, help="real pauses resolved one at a time")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=100, help="the worker's threads (-c)")
    args = parser.parse_args()
    base_db = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    if not base_db.startswith("postgres"):
        sys.exit("DATABASE_URL must be a PostgreSQL server (the bench creates its own database there).")
    name = f"asteros_bench_interrupts_{os.getpid()}"
    admin_sql(base_db, f'CREATE DATABASE "{name}"')
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    log = RESULTS / f"interrupts-{stamp}-worker.log"
    worker = None
    try:
        env = configure(with_database(base_db, name), redis_url)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        plain, approver = make_agents()
        load_before = os.getloadavg()[0]
        worker, _ = start_worker(env, args.concurrency, log)
        started = datetime.now()

        wait_for(start_runs(plain, args.sample), ("succeeded",))
        time.sleep(LEASE_SECONDS / 3 * 2)  # the threads' connections settle after the warm-up
        before = process_figures(worker.pid)

        t0 = time.perf_counter()
        real = start_runs(approver, args.sample)
        wait_for(real, ("interrupted",))
        real_pauses_s = time.perf_counter() - t0
        time.sleep(LEASE_SECONDS / 3 * 2)
        paused = process_figures(worker.pid)  # having run the real pauses, before the bulk
        t0 = time.perf_counter()
        bulk_pauses(real[0], args.runs - args.sample)
        bulk_s = time.perf_counter() - t0
        # The warm-up's finished runs are no waiting runs: they leave the count and the rows.
        from cosmos.models import Run

        Run.objects.filter(target=plain).delete()
        connection.cursor().execute("ANALYZE")

        window = quiet_window(started, 3 * LEASE_SECONDS)
        after = process_figures(worker.pid)
        stored = stored_per_run(args.runs)
        queries = query_timings(args.rounds, real[-1])
        resolving = resolve_timings(real[: args.resolve])
    finally:
        if worker is not None:
            stop(worker)
        from django.db import connections

        connections.close_all()
        admin_sql(base_db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    results = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "load_after": os.getloadavg()[0],
        "args": vars(args),
        "lease_seconds": LEASE_SECONDS,
        "real_pauses_s": round(real_pauses_s, 1),
        "bulk_write_s": round(bulk_s, 1),
        "worker_before": before,
        "worker_after_real_pauses": paused,
        "worker_after": after,
        "window": window,
        "stored": stored,
        "timings": queries | resolving,
    }
    path = RESULTS / f"interrupts-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten: {path.relative_to(ROOT)}")


def print_table(results: dict) -> None:
    before, paused, after = results["worker_before"], results["worker_after_real_pauses"], results["worker_after"]
    window, stored = results["window"], results["stored"]
    sample = results["args"]["sample"]
    print(f"\n{stored['runs']:,} runs waiting ({sample} real pauses, the rest in bulk)")
    waiting = f"{stored['runs']:,} waiting"
    print(f"{'worker':24} {'warmed up':>12} {f'{sample} paused':>12} {waiting:>14}")
    for key in ("rss_mib", "threads", "db_connections"):
        print(f"{key:24} {before[key]:>12} {paused[key]:>12} {after[key]:>14}")
    print(f"\nin {window['window_s']:.0f} s (3 lease periods) with every run waiting:")
    for key in ("engine_local_runs", "waiting_runs_updated_in_window", "waiting_runs_with_a_lease"):
        print(f"  {key:40} {window[key]}")
    print(f"  {'waiting_runs_with_a_worker':40} {window['waiting_runs_with_a_worker']}")
    print("\nstored per waiting run:")
    for key in ("rows_per_run", "events_per_run", "kib_per_run"):
        print(f"  {key:40} {stored[key]}")
    print(f"\n{'timing':48} {'median ms':>10} {'max ms':>10}")
    for name, figures in results["timings"].items():
        print(f"{name:48} {figures['median_ms']:>10} {figures['max_ms']:>10}")


if __name__ == "__main__":
    main()
