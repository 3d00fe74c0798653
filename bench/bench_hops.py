#!/usr/bin/env python
"""Where a run's time goes, hop by hop; optionally two source trees side by side.

    .venv/bin/python bench/bench_hops.py                      # the working tree alone
    .venv/bin/python bench/bench_hops.py --before HEAD        # HEAD (git archive) against the working tree
    .venv/bin/python bench/bench_hops.py --before /path/to/tree --after . --rounds 6 --runs 20
    .venv/bin/python bench/bench_hops.py --before HEAD --mode embedded

For each source tree it starts one API process (``manage.py asteros serve``) and one Celery
worker (``--pool threads``), run from that tree, on the same private PostgreSQL and Redis (each
tree has its own database and its own Redis database for the broker), and an agent on the
offline ``scripted`` model answering ``--tokens`` tokens at once. Then, in alternating rounds
(A B, B A, ...), it sends sequential streaming runs ``POST /api/agents/hops/run {"stream": true}``
and reads each stream to ``RUN_FINISHED``. The warm-up runs are not counted.

The hops of each run come from the client's clock and the run's rows (same machine, same wall
clock): request → run row created, created → started (commit, broker, worker, claim),
started → RUN_STARTED row, started → finished (the run itself), finished → the client has
``RUN_FINISHED``; and the client's first SSE event and total. ``--mode embedded`` serves each tree
with one ``asteros serve`` on its own SQLite file (the worker is a thread of it) and reports the
client's figures only. It prints the medians (and, with
two trees, before / after ratios: above 1 means the after tree is faster) and writes
``bench/results/hops-<time>.json``.

``--before REF`` extracts ``git archive REF`` into a temporary folder (nothing in the repository
is written). Both trees run with this virtual environment's Python.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_agno import OURS_PY, RESULTS, ROOT, Proc, Services, Stack, free_port, wait_http

AGENT = "hops"
CREATE_AGENT = f"""
from cosmos.models import Agent
Agent.objects.update_or_create(id={AGENT!r}, defaults=dict(
    name="hops", provider="scripted", model="scripted-offline", parameters={{"reply_tokens": %d}}))
"""
ROWS = """
SELECT r.id::text, r.created_at, r.started_at, r.finished_at,
       (SELECT min(e.created_at) FROM cosmos_runevent e WHERE e.run_id = r.id)
FROM cosmos_run r WHERE r.id::text = ANY(%s)
"""
# (key, label): the per-run figures, in ms, in the order of the path.
HOPS = (
    ("request_to_created", "request → run row created"),
    ("created_to_started", "created → started (commit, broker, claim)"),
    ("started_to_first_row", "started → RUN_STARTED row"),
    ("started_to_finished", "started → finished (the run)"),
    ("finished_to_client", "finished → client has RUN_FINISHED"),
    ("client_first_event", "client: first SSE event"),
    ("client_total", "client: total"),
)


@dataclass
class Tree:
    label: str
    path: Path
    url: str = ""
    database: str = ""
    procs: list[Proc] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)


def extract(ref: str, into: Path) -> Path:
    """``git archive REF`` unpacked into ``into`` (read-only for the repository)."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True, timeout=120)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def resolve_tree(spec: str, scratch: Path, label: str) -> Path:
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    return extract(spec, scratch / label)


def start_tree(tree: Tree, index: int, stack: Stack, services: Services | None, tokens: int, server: str) -> None:
    if services is None:  # embedded: SQLite, and the worker is a thread of the server
        tree.database, broker = f"sqlite:///{stack.tmp / tree.label}.sqlite3", None
    else:
        tree.database = services.database(f"hops_{tree.label}")
        broker = services.redis_url.rsplit("/", 1)[0] + f"/{index + 1}"  # a broker queue per tree
    env = stack.ours_env({"openai": "http://127.0.0.1:9", "anthropic": "http://127.0.0.1:9"}, tree.database, broker)
    for command in (["migrate", "--noinput"], ["shell", "-c", CREATE_AGENT % tokens]):
        setup = stack.start(f"{tree.label}-setup", [OURS_PY, "manage.py", *command], env, cwd=tree.path)
        if setup.popen.wait(timeout=300) != 0:
            raise RuntimeError(f"{tree.label}: manage.py {command[0]} failed:\n{setup.tail()}")
    port = free_port()
    serve = [OURS_PY, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(port)]
    serve += ["--server", server]
    api = stack.start(f"{tree.label}-api", serve, env, cwd=tree.path)
    tree.url = f"http://127.0.0.1:{port}"
    if services is None:
        tree.procs = [api]
        wait_http(tree.url + "/health", api, timeout=90)
        print(f"{tree.label}: {tree.path} (api and worker pid {api.pid})", flush=True)
        return
    worker_command = [OURS_PY, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", "100"]
    worker_command += ["--loglevel", "WARNING", "-n", f"hops-{tree.label}@localhost"]
    worker_command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    worker = stack.start(f"{tree.label}-worker", worker_command, env, cwd=tree.path)
    tree.procs = [api, worker]
    wait_http(tree.url + "/health", worker, timeout=90)
    print(f"{tree.label}: {tree.path} (api pid {api.pid}, worker pid {worker.pid})", flush=True)


def one_run(client: Any, text: str) -> tuple[str, dict[str, float]]:
    started = time.time()
    first = None
    with client.stream("POST", f"/api/agents/{AGENT}/run", json={"input": text, "stream": True}) as response:
        response.raise_for_status()
        run_id = response.headers["X-Run-ID"]
        for line in response.iter_lines():
            if first is None and line.startswith("data:"):
                first = time.time()
            if "RUN_FINISHED" in line or "RUN_ERROR" in line:
                break
    ended = time.time()
    return run_id, {"t0": started, "first": first or ended, "end": ended}


def client_figures(times: dict[str, float]) -> dict[str, float]:
    return {
        "client_first_event": (times["first"] - times["t0"]) * 1000,
        "client_total": (times["end"] - times["t0"]) * 1000,
    }


def hops_of(rows: list[tuple], clients: dict[str, dict[str, float]]) -> list[dict[str, float]]:
    samples = []
    for run_id, created, started, finished, first_row in rows:
        c = clients[run_id]
        ms = lambda a, b: (b - a) * 1000  # noqa: E731
        samples.append(
            {
                "request_to_created": ms(c["t0"], created.timestamp()),
                "created_to_started": ms(created.timestamp(), started.timestamp()),
                "started_to_first_row": ms(started.timestamp(), first_row.timestamp()),
                "started_to_finished": ms(started.timestamp(), finished.timestamp()),
                "finished_to_client": ms(finished.timestamp(), c["end"]),
                **client_figures(c),
            }
        )
    return samples


def measure(tree: Tree, runs: int, keep: bool) -> None:
    import httpx
    import psycopg

    clients: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=tree.url, timeout=30) as client:
        for i in range(runs):
            run_id, times = one_run(client, f"hi {i}")
            clients[run_id] = times
    if not keep:
        return
    if not tree.database.startswith("postgres"):  # embedded: the client's figures only
        tree.samples += [client_figures(c) for c in clients.values()]
        return
    with psycopg.connect(tree.database) as conn:
        rows = conn.execute(ROWS, (list(clients),)).fetchall()
    tree.samples += hops_of(rows, clients)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def report(trees: list[Tree]) -> tuple[str, dict]:
    data: dict[str, Any] = {}
    header = f"{'hop (median ms)':44}" + "".join(f"{t.label:>10}" for t in trees)
    if len(trees) == 2:
        header += f"{'ratio':>8}"
    lines = [header, "-" * len(header)]
    for key, label in HOPS:
        if any(key not in s for t in trees for s in t.samples):
            continue  # not measured in this mode
        values = [median([s[key] for s in t.samples]) for t in trees]
        data[key] = dict(zip([t.label for t in trees], values, strict=True))
        line = f"{label:44}" + "".join(f"{v:>10.1f}" for v in values)
        if len(trees) == 2:
            ratio = values[0] / values[1] if values[1] > 0 else float("nan")
            data[key]["ratio"] = round(ratio, 2)
            line += f"{ratio:>8.2f}"
        lines.append(line)
    lines.append(f"runs counted per tree: {', '.join(f'{t.label} {len(t.samples)}' for t in trees)}")
    return "\n".join(lines), data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a source tree (folder) or a git ref to compare against")
    parser.add_argument("--after", default=str(ROOT), help="the source tree to measure (default: this one)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    parser.add_argument("--runs", type=int, default=20, help="sequential runs per tree per round (default 20)")
    parser.add_argument("--warmup", type=int, default=10, help="uncounted runs per tree first (default 10)")
    parser.add_argument("--tokens", type=int, default=5, help="tokens in the scripted answer (default 5)")
    parser.add_argument("--server", default="daphne", choices=("daphne", "uvicorn"), help="asteros serve --server")
    parser.add_argument("--services", default="auto", choices=("auto", "private", "env"))
    parser.add_argument("--mode", default="distributed", choices=("distributed", "embedded"))
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="asteros-hops-"))
    logdir = scratch / "logs"
    logdir.mkdir()
    trees = [Tree("after", resolve_tree(args.after, scratch, "after"))]
    if args.before:
        trees.insert(0, Tree("before", resolve_tree(args.before, scratch, "before")))
    services = Services(args.services, logdir) if args.mode == "distributed" else None
    stack = Stack(logdir, None)
    try:
        if services is not None and not services.start():
            print(services.problem, file=sys.stderr)
            return 2
        for index, tree in enumerate(trees):
            start_tree(tree, index, stack, services, args.tokens, args.server)
        for tree in trees:
            measure(tree, args.warmup, keep=False)
        for round_number in range(args.rounds):
            for tree in trees if round_number % 2 == 0 else reversed(trees):
                measure(tree, args.runs, keep=True)
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)
        table, data = report(trees)
    except Exception as exc:
        print(f"failed: {exc}\n(logs in {logdir})", file=sys.stderr)
        return 1
    finally:
        stack.close()
        if services is not None:
            services.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"hops-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "trees": {t.label: str(t.path) for t in trees}, "hops": data}))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
