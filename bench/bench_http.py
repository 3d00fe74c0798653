"""HTTP benchmarks of AsterOS, against real server processes on 127.0.0.1.

1. Run round trip: ``POST /api/agents/{id}/run`` with ``Accept: text/event-stream`` until
   ``RUN_FINISHED`` arrives on that stream, with the zero-latency scripted model. p50 / p99 over
   sequential runs, embedded (SQLite, in-process worker) and, when ``DATABASE_URL`` and
   ``REDIS_URL`` are set, distributed (PostgreSQL, Redis, one ``celery worker`` process).
2. ``GET /api/agents`` requests per second against one ASGI process, daphne and uvicorn
   (``manage.py asteros serve --server ...``), from a load generator in a separate process
   (asyncio, raw HTTP/1.1 keep-alive connections).

Usage::

    .venv/bin/python bench/bench_http.py                 # everything, a few minutes at most
    .venv/bin/python bench/bench_http.py --quick         # fewer runs, shorter load
    .venv/bin/python bench/bench_http.py --load-only --servers uvicorn

Every loop is bounded (a number of runs, a number of seconds); servers bind 127.0.0.1 only and
are stopped at the end. Results go to stdout as a table (and ``--json FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AGENTS_FOR_LIST = 20
WORKER_COMMAND = (
    *(PYTHON, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", "50"),
    *("--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ASTEROS_LOG_LEVEL": "warning",
        "ASTEROS_ENABLE_AUTH": "false",
        "PYTHONUNBUFFERED": "1",
    }
    return env | extra


@contextmanager
def server(env: dict[str, str], kind: str, workdir: Path, *, worker: bool = False, pids: list[int] | None = None):
    """Migrate, then run ``asteros serve`` (and a celery worker when distributed); yield the URL.
    ``pids`` gets the processes' ids (the server's first), for a caller that reads their CPU time."""
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    port = free_port()
    log = open(workdir / f"server-{kind}.log", "w")  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [*manage, "asteros", "serve", "--host", "127.0.0.1", "--port", str(port), "--server", kind],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    if worker:
        processes.append(
            subprocess.Popen(
                [*WORKER_COMMAND],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    if pids is not None:
        pids += [process.pid for process in processes]
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api", timeout=2)
                break
            except httpx.TransportError:
                if processes[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / f"server-{kind}.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def seed(url: str) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        for index in range(AGENTS_FOR_LIST):
            agent_id = "bench-agent" if index == 0 else f"bench-agent-{index}"
            response = client.get(f"/api/agents/{agent_id}")
            if response.status_code == 404:
                body = {"id": agent_id, "provider": "scripted", "description": "zero-latency scripted model"}
                created = client.post("/api/agents", json=body)
                created.raise_for_status()


# --- 1. run round trip


def round_trips(url: str, runs: int, warmup: int = 5) -> list[float]:
    """Seconds from sending the POST to reading RUN_FINISHED on its SSE answer, per run."""
    import httpx

    timings = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for index in range(warmup + runs):
            started = time.perf_counter()
            with client.stream(
                "POST",
                "/api/agents/bench-agent/run",
                json={"input": f"round trip {index}"},
                headers={"Accept": "text/event-stream"},
            ) as response:
                response.raise_for_status()
                buffer = b""
                for chunk in response.iter_raw():
                    buffer += chunk
                    if b'"RUN_FINISHED"' in buffer or b'"RUN_ERROR"' in buffer:
                        break
            elapsed = time.perf_counter() - started
            if b'"RUN_FINISHED"' not in buffer:
                raise RuntimeError(f"run {index} did not finish: {buffer[-500:]!r}")
            if index >= warmup:
                timings.append(elapsed)
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


# --- 2. GET /api/agents load, from another process


async def _load(host: str, port: int, path: str, connections: int, seconds: float) -> dict:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    done = 0
    errors = 0
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if status == 200:
                    done += 1
                else:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rps": done / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def _load_process(url: str, path: str, connections: int, seconds: float, queue) -> None:
    host, port = url.removeprefix("http://").split(":")
    queue.put(asyncio.run(_load(host, int(port), path, connections, seconds)))


def load(url: str, *, connections: int, seconds: float, warmup: float = 2.0) -> dict:
    context = multiprocessing.get_context("spawn")
    results = []
    for duration in (warmup, seconds):
        queue = context.Queue()
        process = context.Process(target=_load_process, args=(url, "/api/agents", connections, duration, queue))
        process.start()
        results.append(queue.get(timeout=duration + 120))
        process.join(timeout=30)
    return results[-1]


# --- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="round trips per mode (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per server (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--quick", action="store_true", help="50 round trips, 4 s of load")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--runs-only", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds = 50, 4.0
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}

    with tempfile.TemporaryDirectory(prefix="asteros-bench-") as tmp:
        workdir = Path(tmp)
        embedded = base_env(DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}")
        if not args.load_only:
            with server(embedded, "daphne", workdir) as url:
                seed(url)
                results["round_trip_embedded"] = summarize(round_trips(url, args.runs))
            if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
                distributed = base_env(
                    DATABASE_URL=os.environ["DATABASE_URL"],
                    REDIS_URL=os.environ["REDIS_URL"],
                    PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
                )
                with server(distributed, "daphne", workdir, worker=True) as url:
                    seed(url)
                    results["round_trip_distributed"] = summarize(round_trips(url, args.runs))
        if not args.runs_only:
            for kind in servers:
                with server(embedded, kind, workdir) as url:
                    seed(url)
                    results[f"list_agents_{kind}"] = load(url, connections=args.connections, seconds=args.seconds)
    print_table(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def summarize(timings: list[float]) -> dict:
    return {
        "runs": len(timings),
        "p50_ms": percentile(timings, 50) * 1000,
        "p99_ms": percentile(timings, 99) * 1000,
        "mean_ms": statistics.fmean(timings) * 1000,
    }


def print_table(results: dict, args) -> None:
    print(f"\nAsterOS HTTP benchmark ({results['machine']})\n")
    print("| measure | server | n | p50 ms | p99 ms | req/s |")
    print("|---|---|---:|---:|---:|---:|")
    for mode in ("embedded", "distributed"):
        row = results.get(f"round_trip_{mode}")
        if row:
            print(
                f"| run round trip, POST -> RUN_FINISHED on SSE ({mode}) | daphne | {row['runs']} "
                f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | |"
            )
    for key, row in results.items():
        if key.startswith("list_agents_"):
            print(
                f"| GET /api/agents ({AGENTS_FOR_LIST} agents), {args.connections} connections, "
                f"{args.seconds:g} s | {key.removeprefix('list_agents_')} | {row['requests']} "
                f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['rps']:.0f} |"
            )
    print()


if __name__ == "__main__":
    main()
