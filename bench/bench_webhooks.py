"""Webhook deliveries per second from ONE worker process, against a fast local receiver.

Each round queues ``--deliveries`` deliveries at once (rows written in bulk, a task sent for
each, as ``emit`` does) for one subscription whose URL is a receiver on 127.0.0.1 (its own
process: ``python -m tests.support.webhook_receiver``, answering 200 at once). The clock runs
from before the rows are written to the moment the last one is ``succeeded`` in the database;
the receiver's own count of accepted POSTs is read at the end. Median of ``--rounds``.

- embedded: a fresh SQLite database; the measuring process runs the embedded worker (the Celery
  worker thread of a server, ``-c`` threads) and its engine.
- distributed: a fresh PostgreSQL database (on the server of ``DATABASE_URL``, dropped after)
  and Redis (``REDIS_URL``); one ``celery -A asteros_site worker --pool threads -c N`` process.

    .venv/bin/python bench/bench_webhooks.py                       # both modes, 2000 x 3
    .venv/bin/python bench/bench_webhooks.py --mode embedded --deliveries 200 --rounds 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/bench_webhooks.py --mode distributed

It prints a table and writes ``bench/results/webhooks-<time>.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"


# ---- the measuring process (a child: one per mode) -----------------------------------------


def measure(deliveries: int, rounds: int, receiver_port: int, concurrency: int) -> list[dict]:
    import django

    django.setup()
    from django.conf import settings

    from interfaces.webhooks import deliveries as sending
    from interfaces.webhooks.models import Delivery, DeliveryStatus, Webhook
    from interfaces.webhooks.signing import new_secret

    if not settings.ASTEROS.distributed:
        from cosmos.embedded import start_embedded_worker

        start_embedded_worker(concurrency)
    url = f"http://127.0.0.1:{receiver_port}/hook"
    results = []
    for number in range(rounds):
        webhook = Webhook.objects.create(name=f"bench-{number}", url=url, events=[], secret=new_secret())
        before = _received(receiver_port)
        payload = {"type": "run.succeeded", "timestamp": datetime.now().isoformat(), "data": {"bench": True}}
        t0 = time.perf_counter()
        rows = Delivery.objects.bulk_create(
            Delivery(
                message_id=f"msg_{uuid.uuid4().hex}",
                webhook=webhook,
                event="run.succeeded",
                payload=payload | {"data": {"n": i}},
                next_attempt_at=django.utils.timezone.now(),
            )
            for i in range(deliveries)
        )
        sending.dispatch_on_commit([row.id for row in rows])  # outside a transaction: sent now
        queued_s = time.perf_counter() - t0
        mine = Delivery.objects.filter(webhook=webhook)
        deadline = time.monotonic() + 600
        while mine.filter(status=DeliveryStatus.SUCCEEDED).count() < deliveries:
            if time.monotonic() > deadline:
                raise SystemExit(f"round {number}: not every delivery succeeded within 600 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        attempts = sum(mine.values_list("attempts", flat=True))
        results.append(
            {
                "round": number,
                "deliveries": deliveries,
                "queued_s": round(queued_s, 3),
                "elapsed_s": round(elapsed, 3),
                "per_s": round(deliveries / elapsed, 1),
                "attempts": attempts,
                "receiver_count": _received(receiver_port) - before,
            }
        )
    return results


def _received(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as response:
        return json.loads(response.read())["accepted"]


# ---- orchestration ---------------------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "ASTEROS_REQUIRE_SERVICES")}
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-a-secret",
        "ASTEROS_LOG_LEVEL": "warning",
        "ASTEROS_OUTBOUND_ALLOWLIST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
    }
    return env | extra


def run(command: list[str], env: dict[str, str], timeout: float = 1800) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def measure_in_child(env: dict[str, str], args: argparse.Namespace, port: int) -> list[dict]:
    command = [PYTHON, __file__, "--child", "--deliveries", str(args.deliveries), "--rounds", str(args.rounds)]
    command += ["--receiver-port", str(port), "--concurrency", str(args.concurrency)]
    return json.loads(run(command, env).strip().splitlines()[-1])


def start_worker(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen:
    hostname = f"bench-webhooks-{uuid.uuid4().hex[:6]}@localhost"
    command = [PYTHON, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", str(concurrency)]
    command += ["-n", hostname, "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    ping = f"from asteros_site.celery import app; print(bool(app.control.ping(destination=['{hostname}'], timeout=1)))"
    probe = [PYTHON, "-c", ping]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(log.read_text()[-3000:])
        if run(probe, env).strip().endswith("True"):
            return process
    raise SystemExit("the worker did not answer within 90 s:\n" + log.read_text()[-3000:])


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def embedded(args: argparse.Namespace, port: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as folder:
        env = base_env(DATABASE_URL=f"sqlite:///{Path(folder) / 'db.sqlite3'}")
        env.pop("REDIS_URL", None)
        run([PYTHON, "manage.py", "migrate", "-v0"], env)
        return measure_in_child(env, args, port)


def distributed(args: argparse.Namespace, port: int, log: Path) -> list[dict]:
    import psycopg

    base_db = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    if not base_db.startswith("postgres"):
        raise SystemExit("distributed: DATABASE_URL must be a PostgreSQL server (the bench makes its own database).")
    name = f"asteros_bench_webhooks_{os.getpid()}"
    with psycopg.connect(base_db, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    worker = None
    try:
        database = urlunsplit(urlsplit(base_db)._replace(path="/" + name))
        env = base_env(DATABASE_URL=database, REDIS_URL=os.environ.get("REDIS_URL", DEFAULT_REDIS))
        run([PYTHON, "manage.py", "migrate", "-v0"], env)
        worker = start_worker(env, args.concurrency, log)
        return measure_in_child(env, args, port)
    finally:
        if worker is not None:
            stop(worker)
        with psycopg.connect(base_db, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def summary(rows: list[dict]) -> dict:
    return {
        "median_per_s": round(statistics.median(r["per_s"] for r in rows), 1),
        "median_elapsed_s": round(statistics.median(r["elapsed_s"] for r in rows), 3),
        "receiver_counts": [r["receiver_count"] for r in rows],
        "attempts": [r["attempts"] for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("embedded", "distributed", "both"), default="both")
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50, help="the worker's threads (-c)")
    parser.add_argument("--json", type=Path, help="where to write the figures")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receiver-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.deliveries, args.rounds, args.receiver_port, args.concurrency)))
        return

    from tests.support.processes import free_port

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    port = free_port()
    receiver = subprocess.Popen(
        [PYTHON, "-m", "tests.support.webhook_receiver", "--port", str(port)], cwd=ROOT, env=base_env()
    )
    figures: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _received(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        modes = ("embedded", "distributed") if args.mode == "both" else (args.mode,)
        for mode in modes:
            if mode == "embedded":
                rows = embedded(args, port)
            else:
                rows = distributed(args, port, RESULTS / f"webhooks-{stamp}-worker.log")
            figures[mode] = {"rounds": rows, **summary(rows)}
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)

    results = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()[0]},
        "args": {k: v for k, v in vars(args).items() if k not in ("child", "receiver_port", "json")},
        "modes": figures,
    }
    path = args.json or RESULTS / f"webhooks-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print("| mode | deliveries | rounds | -c | median deliveries/s | median seconds | receiver counts |")
    print("|---|---|---|---|---|---|---|")
    for mode, row in figures.items():
        print(
            f"| {mode} | {args.deliveries} | {args.rounds} | {args.concurrency} | {row['median_per_s']} | "
            f"{row['median_elapsed_s']} | {', '.join(map(str, row['receiver_counts']))} |"
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
