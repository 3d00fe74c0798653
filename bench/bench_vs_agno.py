#!/usr/bin/env python
"""AsterOS against Agno's AgentOS, side by side on this machine: every scenario of BENCHMARKS.md.

    make bench [QUICK=1] [SCENARIOS=1,2,3]        # or:
    .venv/bin/python bench/bench_vs_agno.py [--quick] [--scenarios 1,2,...] [--peer-python PATH]

Scenarios: 1 agent build (µs, KiB), 2 in-process run, 3 server round trip (c = 1/16/64), 4 capacity
(1 s model latency, ramped toward 1000 in flight), 5 streaming (1,000 tokens, 1/10/100 clients),
6 REST reads (the agent list, 20 agents), 7 RSS (idle, and at scenario 4's peak).

Everything runs on 127.0.0.1: the local model server(s) (``tests/support/model_server.py``), our server
(``manage.py asteros serve``, embedded; and, with services, distributed: 1 API process and
1 ``celery worker --pool threads -c 1000``), the peer (``bench/peer/agno_peer.py serve``: AgentOS,
one uvicorn process, in the bench-only virtual environment), and the load generator
(``bench/loadgen.py``, a separate process, bounded in count and time).

Distributed scenarios need PostgreSQL and Redis. By default (``--services auto``) the harness
starts private, throwaway instances (initdb/pg_ctl and redis-server found on this machine) on free
ports, so a benchmark never competes for connections with anything else on a shared server; with
``--services env`` it uses DATABASE_URL and REDIS_URL (databases ``asteros_bench_ours`` and
``asteros_bench_agno`` are created there, Redis database 13). Without either: "skipped: needs
services".

Prints one table (scenario, ours, Agno, ratio: above 1 means we win, lower-is-better figures
inverted), medians over rounds with the spread (min..max); writes ``bench/results/*.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import RedisServer  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
OURS_PY = sys.executable
DEFAULT_PEER_PY = BENCH / ".venv-peer" / "bin" / "python"
ALL_SCENARIOS = (1, 2, 3, 4, 5, 6, 7)
NEEDS_SERVICES = "skipped: needs services"


# ---------------------------------------------------------------------------------------------
# settings per mode


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "rounds": 1,
            "s3_levels": [1, 16],
            "s3_seconds": 3.0,
            "s4_levels": [50],
            "s5_clients": [1, 2],
            "s5_runs_per_client": {1: 1, 2: 1},
            "distributed_extras": False,  # scenarios 5 and 6 against the distributed stack too
            "s6_seconds": 2.0,
            "s6_concurrency": 8,
        }
    return {
        "rounds": 3,
        "s3_levels": [1, 16, 64],
        "s3_seconds": 15.0,
        "s4_levels": [100, 250, 500, 1000],
        "s5_clients": [1, 10, 100],
        "s5_runs_per_client": {1: 5, 10: 3, 100: 1},
        "s6_seconds": 8.0,
        "s6_concurrency": 8,
        "distributed_extras": True,
    }


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process in its own session (so it and its children stop together), logged to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logdir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        self._log.close()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""


def wait_http(url: str, proc: Proc, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s:\n{proc.tail()}")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(x) for x in (task / "children").read_text().split()]
    return found


def rss_kib(pid: int) -> int:
    """Resident set of a process and its children, KiB."""
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class RSSSampler:
    """Peak RSS of some processes (and, given a database, its peak connections), sampled every
    0.2 s on a thread while the block runs."""

    def __init__(self, pids: dict[str, int], database_url: str | None = None) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self.database_url = database_url
        self.peak_connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connections(self, conn: Any) -> int:
        name = self.database_url.rsplit("/", 1)[1]
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]

    def _run(self) -> None:
        conn = None
        if self.database_url:
            import psycopg

            with contextlib.suppress(Exception):
                conn = psycopg.connect(self.database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
        try:
            while not self._stop.is_set():
                for name, pid in self.pids.items():
                    self.peak[name] = max(self.peak[name], rss_kib(pid))
                if conn is not None:
                    with contextlib.suppress(Exception):
                        self.peak_connections = max(self.peak_connections, self._connections(conn))
                self._stop.wait(0.2)
        finally:
            if conn is not None:
                conn.close()

    def __enter__(self) -> RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def loadgen(*args: str, timeout: float) -> dict:
    command = [OURS_PY, str(BENCH / "loadgen.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, cwd=ROOT)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# services: PostgreSQL + Redis


class Services:
    """Private throwaway PostgreSQL and Redis on free 127.0.0.1 ports, or the ones in the environment."""

    def __init__(self, mode: str, logdir: Path) -> None:
        self.mode = mode
        self.logdir = logdir
        self.problem: str | None = None
        self.kind = ""
        self.pg_base = self.redis_url = ""
        self._tmp: Path | None = None
        self._pg_ctl: list[str] = []
        self._redis: RedisServer | None = None

    @staticmethod
    def _pg_bin(name: str) -> str | None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        return shutil.which(name)

    def start(self) -> bool:
        if self.mode == "none":
            self.problem = NEEDS_SERVICES
            return False
        initdb, pg_ctl, redis = self._pg_bin("initdb"), self._pg_bin("pg_ctl"), shutil.which("redis-server")
        if self.mode in ("auto", "private") and initdb and pg_ctl and redis:
            try:
                self._start_private(initdb, pg_ctl, redis)
                self.kind = "private (started by the harness)"
                return True
            except Exception as exc:
                self.stop()
                self.problem = f"private services failed: {exc}"
                if self.mode == "private":
                    return False
        database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
        if self.mode in ("auto", "env") and database_url.startswith(("postgres://", "postgresql://")) and redis_url:
            self.pg_base = database_url.rsplit("/", 1)[0]
            self.redis_url = redis_url.rsplit("/", 1)[0] + "/13" if redis_url.count("/") >= 3 else redis_url + "/13"
            self.kind = "from DATABASE_URL / REDIS_URL"
            return True
        self.problem = self.problem or NEEDS_SERVICES
        return False

    def _start_private(self, initdb: str, pg_ctl: str, redis: str) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="asteros-bench-services-"))
        data = self._tmp / "pg"
        as_postgres: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self._tmp, user="postgres")
            as_postgres = ["runuser", "-u", "postgres", "--"]
        pg_port = free_port()
        subprocess.run(
            [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-h 127.0.0.1 -p {pg_port} -k {self._tmp} -c max_connections=500 -c shared_buffers=128MB"
        self._pg_ctl = [*as_postgres, pg_ctl, "-D", str(data)]
        subprocess.run(
            [*self._pg_ctl, "-o", options, "-l", str(self._tmp / "pg.log"), "-w", "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.pg_base = f"postgres://postgres@127.0.0.1:{pg_port}"
        self._redis = RedisServer().start(timeout=20)  # the fault tests' private Redis
        self.redis_url = self._redis.url

    def database(self, name: str) -> str:
        """Create the database if needed (dropping and recreating it in private mode); return its URL."""
        import psycopg

        with psycopg.connect(f"{self.pg_base}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone()
            if exists and self._tmp is not None:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                exists = None
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.pg_base}/{name}"

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._pg_ctl:
            subprocess.run([*self._pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=60)
            self._pg_ctl = []
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


# ---------------------------------------------------------------------------------------------
# the two systems


class Stack:
    """The processes of one benchmark run; everything is stopped at the end, whatever happens."""

    def __init__(self, logdir: Path, peer_py: Path | None) -> None:
        self.logdir = logdir
        self.peer_py = peer_py
        self.procs: list[Proc] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="asteros-bench-"))

    def start(self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> Proc:
        proc = Proc(name, command, env, self.logdir, cwd)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- model servers ------------------------------------------------------------------------

    def model_server(self, name: str, **options: float) -> str:
        port = free_port()
        command = [OURS_PY, "-m", "tests.support.model_server", "--port", str(port)]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        proc = self.start(name, command, dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc, timeout=30)
        return url

    # -- ours ---------------------------------------------------------------------------------

    def ours_env(self, models: dict[str, str], database_url: str, redis_url: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ASTEROS_PORT")}
        env |= {
            "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
            "SECRET_KEY": "bench-only-not-a-secret",
            "DEBUG": "0",
            "ASTEROS_LOG_LEVEL": "warning",
            "DATABASE_URL": database_url,
            "OPENAI_BASE_URL": models["openai"] + "/v1",
            "OPENAI_API_KEY": "local",
            "ANTHROPIC_BASE_URL": models["anthropic"],
            "ANTHROPIC_API_KEY": "local",
            "PYTHONUNBUFFERED": "1",
        }
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.tmp / "prometheus")
            (self.tmp / "prometheus").mkdir(exist_ok=True)
        return env

    def ours_setup(self, env: dict[str, str]) -> None:
        done = subprocess.run(
            [OURS_PY, str(BENCH / "ours_setup.py"), "--reset-runs"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ours_setup failed:\n{done.stderr[-3000:]}")

    def ours_server(self, name: str, env: dict[str, str]) -> tuple[Proc, str]:
        port = free_port()
        command = [OURS_PY, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(port)]
        proc = self.start(name, command, env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/agents", proc)  # /health is 503 in distributed mode until a worker answers
        return proc, url

    def ours_worker(self, name: str, env: dict[str, str]) -> Proc:
        command = [OURS_PY, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", "1000"]
        command += ["--loglevel", "WARNING", "-n", f"{name}-{os.getpid()}@localhost"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        return self.start(name, command, env)

    # -- the peer -----------------------------------------------------------------------------

    def peer_server(self, name: str, models: dict[str, str], db: str, extra: list[str] = ()) -> tuple[Proc, str]:
        assert self.peer_py is not None
        port = free_port()
        command = [str(self.peer_py), str(BENCH / "peer" / "agno_peer.py"), "serve", "--port", str(port)]
        command += ["--model-url", models["openai"] + "/v1", "--stream-model-url", models["anthropic"]]
        command += ["--slow-model-url", models.get("slow", models["openai"]) + "/v1", "--db", db, *extra]
        env = dict(os.environ) | {"AGNO_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
        proc = self.start(name, command, env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc, timeout=120)
        return proc, url


# ---------------------------------------------------------------------------------------------
# requests of each system


def ours_run_args(url: str, agent: str, text: str) -> list[str]:
    body = json.dumps({"input": text, "stream": True})
    return ["run", "--url", f"{url}/api/agents/{agent}/run", "--body-json", body]


def peer_run_args(url: str, agent: str, text: str, background: bool = False) -> list[str]:
    form = f"message={text.replace(' ', '+')}&stream=true" + ("&background=true" if background else "")
    return ["run", "--url", f"{url}/agents/{agent}/runs", "--body-form", form]


def warm_up(args: list[str]) -> None:
    result = loadgen(*args, "--concurrency", "1", "--count", "3", "--max-seconds", "30", timeout=60)
    if result["completed"] == 0:
        raise RuntimeError(f"warm-up failed: {result}")


# ---------------------------------------------------------------------------------------------
# aggregation and the table


def agg(values: list[float | None]) -> dict | None:
    clean = [v for v in values if v is not None]
    if not clean:
        return None
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "n": len(clean)}


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        scenario: str,
        metric: str,
        ours: dict | str | None,
        peer: dict | str | None,
        unit: str,
        higher_is_better: bool,
        note: str = "",
    ) -> None:
        ratio = None
        if isinstance(ours, dict) and isinstance(peer, dict) and ours["median"] and peer["median"]:
            ratio = ours["median"] / peer["median"] if higher_is_better else peer["median"] / ours["median"]
        self.rows.append(
            {
                "scenario": scenario,
                "metric": metric,
                "unit": unit,
                "higher_is_better": higher_is_better,
                "ours": ours,
                "agno": peer,
                "ratio": ratio,
                "note": note,
            }
        )

    @staticmethod
    def cell(value: dict | str | None, unit: str) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, str):
            return value

        def fmt(x: float) -> str:
            if float(x).is_integer() and abs(x) < 1000:
                return str(int(x))
            if abs(x) >= 1000:
                return f"{x:,.0f}"
            if abs(x) >= 100:
                return f"{x:.0f}"
            if abs(x) >= 10:
                return f"{x:.1f}"
            return f"{x:.2f}"

        text = f"{fmt(value['median'])} {unit}".strip()
        if value.get("n", 1) > 1 and value["max"] != value["min"]:
            text += f" ({fmt(value['min'])}..{fmt(value['max'])})"
        return text

    def sorted_rows(self) -> list[dict]:
        return sorted(self.rows, key=lambda r: int(r["scenario"].split()[0]))  # stable: phases interleave

    def render(self) -> str:
        headers = ("scenario", "metric", "ours", "Agno", "ratio")
        body = [
            (
                r["scenario"],
                r["metric"] + (" ↑" if r["higher_is_better"] else " ↓"),
                self.cell(r["ours"], r["unit"]),
                self.cell(r["agno"], r["unit"]),
                f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
            )
            for r in self.sorted_rows()
        ]
        widths = [max(len(str(x)) for x in column) for column in zip(headers, *body, strict=False)]
        lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))]
        lines.append("-|-".join("-" * w for w in widths))
        lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in body]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = ["| scenario | metric | ours | Agno | ratio |", "|---|---|---|---|---|"]
        for r in self.sorted_rows():
            arrow = " ↑" if r["higher_is_better"] else " ↓"
            ratio = f"**{r['ratio']:.2f}**" if r["ratio"] is not None else "-"
            lines.append(
                f"| {r['scenario']} | {r['metric']}{arrow} | {self.cell(r['ours'], r['unit'])} | "
                f"{self.cell(r['agno'], r['unit'])} | {ratio} |"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# scenarios


def micro_json(command: list[str], timeout: float = 600) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{command[1]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def scenarios_1_2(ctx: Context, which: set[int]) -> None:
    want_run = 2 in which
    model = ctx.stack.model_server("model-micro") if want_run else "http://127.0.0.1:9"
    args = ["--model-url", model + "/v1"] + (["--quick"] if ctx.quick else []) + ([] if want_run else ["--no-run"])
    ours_rounds, peer_rounds = [], []
    for _ in range(ctx.plan["rounds"]):
        ours_rounds.append(micro_json([OURS_PY, str(BENCH / "ours_micro.py"), *args]))
        if ctx.peer_py:
            peer_rounds.append(micro_json([str(ctx.peer_py), str(BENCH / "peer" / "agno_peer.py"), "micro", *args]))
    ctx.raw["micro"] = {"ours": ours_rounds, "agno": peer_rounds}
    missing = ctx.peer_missing

    def pick(rounds: list[dict], *path: str) -> dict | str | None:
        if not rounds:
            return missing
        values, lows, highs = [], [], []
        for r in rounds:
            node: Any = r
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            node = node if isinstance(node, dict) else {}
            values.append(node.get(path[-1]))
            lows.append(node.get(path[-1] + "_min"))
            highs.append(node.get(path[-1] + "_max"))
        result = agg(values)
        if result and all(x is not None for x in lows + highs):
            # The spread of a micro-benchmark: its batches' range over every round.
            result |= {"min": min(lows), "max": max(highs), "n": max(result["n"], 2)}
        return result

    if 1 in which:
        ctx.table.add(
            "1 build agent, 1 tool",
            "time",
            pick(ours_rounds, "build", "us"),
            pick(peer_rounds, "build", "us"),
            "µs",
            False,
        )
        ctx.table.add(
            "1 build agent, 1 tool",
            "memory (tracemalloc)",
            pick(ours_rounds, "build", "kib"),
            pick(peer_rounds, "build", "kib"),
            "KiB",
            False,
        )
    if want_run:
        note = "both: OpenAI SDK → local model server, 0 latency (Agno ships no in-process fake model)"
        ctx.table.add(
            "2 in-process run (tool + 2 turns)",
            "time per run",
            pick(ours_rounds, "run", "us"),
            pick(peer_rounds, "run", "us"),
            "µs",
            False,
            note,
        )
        scripted = pick(ours_rounds, "run_scripted", "us")
        ctx.table.add(
            "2 in-process run (tool + 2 turns)", "ours, offline scripted model (reference)", scripted, "-", "µs", False
        )


class Context:
    def __init__(self, args: argparse.Namespace, stack: Stack, table: Table) -> None:
        self.quick = args.quick
        self.plan = plan(args.quick)
        self.stack = stack
        self.table = table
        self.raw: dict[str, Any] = {}
        self.peer_py = stack.peer_py
        self.peer_missing = None if stack.peer_py else "skipped: peer venv missing (make bench creates it)"
        self.models: dict[str, str] = {}


def round_trip(ctx: Context, label: str, args: list[str]) -> dict[int, list[dict]]:
    """Scenario 3 for one server: every level, ``rounds`` times."""
    results: dict[int, list[dict]] = {c: [] for c in ctx.plan["s3_levels"]}
    for _ in range(ctx.plan["rounds"]):
        for c in ctx.plan["s3_levels"]:
            count = 100_000
            r = loadgen(
                *args,
                "--concurrency", str(c),
                "--count", str(count),
                "--max-seconds", str(ctx.plan["s3_seconds"]),
                "--request-timeout", "30",
                timeout=ctx.plan["s3_seconds"] + 40,
            )  # fmt: skip
            results[c].append(r)
            print(
                f"  3 {label} c={c}: {r['per_s']} runs/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
                f"errors {r['errors']}",
                flush=True,
            )
    return results


def add_round_trip_rows(ctx: Context, mode: str, ours: dict | str, peer: dict | str | None) -> None:
    for c in ctx.plan["s3_levels"]:

        def get(side: dict | str | None, key: str, c: int = c) -> dict | str | None:
            if side is None or isinstance(side, str):
                return side
            return agg([r[key] for r in side[c] if r["completed"]])

        name = f"3 round trip, {mode}, c={c}"
        ctx.table.add(name, "p50", get(ours, "p50_ms"), get(peer, "p50_ms"), "ms", False)
        ctx.table.add(name, "p99", get(ours, "p99_ms"), get(peer, "p99_ms"), "ms", False)
        ctx.table.add(name, "runs/s", get(ours, "per_s"), get(peer, "per_s"), "/s", True)
        if not isinstance(ours, str) and not isinstance(peer, str):
            errors = (sum(r["errors"] for r in ours[c]), sum(r["errors"] for r in (peer or {}).get(c, [])))
            if any(errors):
                ctx.table.add(
                    name,
                    "errors",
                    {"median": errors[0], "min": errors[0], "max": errors[0]},
                    {"median": errors[1], "min": errors[1], "max": errors[1]} if peer else None,
                    "",
                    False,
                )


def streaming(ctx: Context, label: str, args: list[str]) -> dict[int, list[dict]]:
    results: dict[int, list[dict]] = {c: [] for c in ctx.plan["s5_clients"]}
    for _ in range(ctx.plan["rounds"]):
        for c in ctx.plan["s5_clients"]:
            count = c * ctx.plan["s5_runs_per_client"][c]
            r = loadgen(
                *args,
                "--concurrency",
                str(c),
                "--count",
                str(count),
                "--max-seconds",
                "120",
                "--request-timeout",
                "120",
                timeout=260,
            )
            results[c].append(r)
            print(
                f"  5 {label} clients={c}: {r.get('events_per_s')} events/s ttft {r.get('ttft_p50_ms')} ms "
                f"last token {r.get('ttlt_p50_ms')} ms errors {r['errors']}",
                flush=True,
            )
    return results


def add_streaming_rows(ctx: Context, mode: str, ours: dict, peer: dict | str | None) -> None:
    for c in ctx.plan["s5_clients"]:

        def get(side: dict | str | None, key: str, c: int = c) -> dict | str | None:
            if side is None or isinstance(side, str):
                return side
            return agg([r.get(key) for r in side[c] if r["completed"]])

        name = f"5 streaming 1,000 tokens, {mode}, {c} client{'s' if c > 1 else ''}"
        ctx.table.add(
            name,
            "events/s delivered",
            get(ours, "events_per_s"),
            get(peer, "events_per_s"),
            "/s",
            True,
            "ours coalesces token deltas: fewer, larger events",
        )
        ctx.table.add(
            name, "text KiB/s delivered", get(ours, "text_kib_per_s"), get(peer, "text_kib_per_s"), "KiB/s", True
        )
        ctx.table.add(name, "time to first token p50", get(ours, "ttft_p50_ms"), get(peer, "ttft_p50_ms"), "ms", False)
        ctx.table.add(name, "time to last token p50", get(ours, "ttlt_p50_ms"), get(peer, "ttlt_p50_ms"), "ms", False)


def rest_reads(ctx: Context, label: str, url: str) -> list[dict]:
    out = []
    for _ in range(ctx.plan["rounds"]):
        r = loadgen(
            "get", "--url", url,
            "--concurrency", str(ctx.plan["s6_concurrency"]),
            "--count", "1000000",
            "--max-seconds", str(ctx.plan["s6_seconds"]),
            "--request-timeout", "30",
            timeout=ctx.plan["s6_seconds"] + 40,
        )  # fmt: skip
        out.append(r)
        print(f"  6 {label}: {r['per_s']} req/s p50 {r['p50_ms']} ms errors {r['errors']}", flush=True)
    return out


def check_agent_list(url: str, expect: int = 20) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())
    items = data.get("results", data) if isinstance(data, dict) else data
    return len(items)


def capacity(ctx: Context, label: str, args: list[str], pids: dict[str, int], database_url: str) -> list[dict]:
    """Scenario 4 for one system: each level N sends N runs at once and waits for all of them."""
    levels = []
    for n in ctx.plan["s4_levels"]:
        with RSSSampler(pids, database_url) as sampler:
            r = loadgen(
                *args,
                "--concurrency",
                str(n),
                "--count",
                str(n),
                "--max-seconds",
                "60",
                "--request-timeout",
                "180",
                timeout=260,
            )
        r["rss_peak_kib"] = dict(sampler.peak)
        r["db_connections_peak"] = sampler.peak_connections
        r["level"] = n
        levels.append(r)
        print(
            f"  4 {label} N={n}: {r['per_s']} runs/s p99 {r['p99_ms']} ms errors {r['errors']} "
            f"{r['error_kinds']} rss {r['rss_peak_kib']} db connections {r['db_connections_peak']}",
            flush=True,
        )
        time.sleep(2)
    return levels


# ---------------------------------------------------------------------------------------------
# phases


def phase_single(ctx: Context, which: set[int]) -> None:
    """Scenarios 3 (embedded), 5, 6 and idle RSS: ours embedded and AgentOS (SQLite), interleaved."""
    stack = ctx.stack
    env = stack.ours_env(ctx.models, f"sqlite:///{stack.tmp / 'ours.sqlite3'}", None)
    stack.ours_setup(env)
    ours_proc, ours_url = stack.ours_server("ours-embedded", env)
    peer_proc = peer_url = None
    if ctx.peer_py:
        peer_proc, peer_url = stack.peer_server("agno-sqlite", ctx.models, f"sqlite:{stack.tmp / 'agno.sqlite3'}")
    ours_short = ours_run_args(ours_url, "bench-0", "hello")
    peer_short = peer_run_args(peer_url, "bench-0", "hello") if peer_url else None
    warm_up(ours_short)
    warm_up(ours_run_args(ours_url, "bench-stream", "talk"))  # both SDKs imported before measuring
    if peer_short and peer_url:
        warm_up(peer_short)
        warm_up(peer_run_args(peer_url, "bench-stream", "talk"))
    time.sleep(1)
    ctx.raw["rss_idle_kib"] = {"ours_embedded": rss_kib(ours_proc.pid)}
    if peer_proc:
        ctx.raw["rss_idle_kib"]["agno_sqlite"] = rss_kib(peer_proc.pid)
    if 3 in which:
        ctx.raw["s3_embedded"] = round_trip(ctx, "ours embedded", ours_short)
        ctx.raw["s3_agno"] = round_trip(ctx, "Agno", peer_short) if peer_short else ctx.peer_missing
        add_round_trip_rows(ctx, "embedded", ctx.raw["s3_embedded"], ctx.raw["s3_agno"])
    if 5 in which:
        ours_stream = streaming(ctx, "ours embedded", ours_run_args(ours_url, "bench-stream", "talk"))
        peer_stream = (
            streaming(ctx, "Agno", peer_run_args(peer_url, "bench-stream", "talk")) if peer_url else ctx.peer_missing
        )
        ctx.raw["s5_embedded"], ctx.raw["s5_agno"] = ours_stream, peer_stream
        add_streaming_rows(ctx, "embedded", ours_stream, peer_stream)
    if 6 in which:
        listed = {"ours": check_agent_list(f"{ours_url}/api/agents")}
        ours_reads = rest_reads(ctx, "ours embedded GET /api/agents", f"{ours_url}/api/agents")
        peer_reads: list | str | None = ctx.peer_missing
        if peer_url:
            listed["agno"] = check_agent_list(f"{peer_url}/agents")
            peer_reads = rest_reads(ctx, "Agno GET /agents", f"{peer_url}/agents")
        ctx.raw["s6"] = {"embedded": ours_reads, "agno": peer_reads, "agents_listed": listed}
        ctx.table.add(
            f"6 REST GET agent list ({listed.get('ours')} agents), embedded",
            "requests/s",
            agg([r["per_s"] for r in ours_reads]),
            agg([r["per_s"] for r in peer_reads]) if isinstance(peer_reads, list) else peer_reads,
            "/s",
            True,
        )
    stack.stop(ours_proc)
    if peer_proc:
        stack.stop(peer_proc)


def phase_distributed(ctx: Context, which: set[int], services: Services) -> None:
    """Scenario 3 distributed, 5 and 6 distributed, then 4 and 7 against AgentOS background runs."""
    stack = ctx.stack
    ours_db = services.database("asteros_bench_ours")
    env = stack.ours_env(ctx.models, ours_db, services.redis_url)
    stack.ours_setup(env)
    api, url = stack.ours_server("ours-api", env)
    worker = stack.ours_worker("ours-worker", env)
    warm_up(ours_run_args(url, "bench-0", "hello"))  # also proves the worker is up
    warm_up(ours_run_args(url, "bench-stream", "talk"))
    time.sleep(1)
    if 3 in which:
        ctx.raw["s3_distributed"] = round_trip(ctx, "ours distributed", ours_run_args(url, "bench-0", "hello"))
        add_round_trip_rows(ctx, "distributed", ctx.raw["s3_distributed"], ctx.raw.get("s3_agno"))
    if 5 in which and ctx.plan["distributed_extras"]:
        ctx.raw["s5_distributed"] = streaming(ctx, "ours distributed", ours_run_args(url, "bench-stream", "talk"))
        add_streaming_rows(ctx, "distributed", ctx.raw["s5_distributed"], ctx.raw.get("s5_agno"))
    if 6 in which and ctx.plan["distributed_extras"]:
        reads = rest_reads(ctx, "ours distributed GET /api/agents", f"{url}/api/agents")
        ctx.raw.setdefault("s6", {})["distributed"] = reads
        peer = ctx.raw["s6"].get("agno")
        ctx.table.add(
            "6 REST GET agent list (20 agents), distributed",
            "requests/s",
            agg([r["per_s"] for r in reads]),
            agg([r["per_s"] for r in peer]) if isinstance(peer, list) else peer,
            "/s",
            True,
        )
    if not ({4, 7} & which):
        return
    # Scenario 4: the worker's model is the 1-second server (the runtime reads OPENAI_BASE_URL).
    stack.stop(worker)
    slow_env = env | {"OPENAI_BASE_URL": ctx.models["slow"] + "/v1"}
    worker = stack.ours_worker("ours-worker-slow", slow_env)
    warm_up(ours_run_args(url, "bench-slow", "hello"))
    peer_proc = peer_url = None
    peer_db = services.database("asteros_bench_agno")
    if ctx.peer_py:
        peer_proc, peer_url = stack.peer_server(
            "agno-postgres", ctx.models, f"postgres:{peer_db}", ["--max-concurrency", "1000"]
        )
        warm_up(peer_run_args(peer_url, "bench-slow", "hello", background=True))
    time.sleep(2)
    idle = {"ours_api": rss_kib(api.pid), "ours_worker": rss_kib(worker.pid)}
    if peer_proc:
        idle["agno"] = rss_kib(peer_proc.pid)
    ctx.raw["rss_idle_distributed_kib"] = idle
    ours_levels = capacity(
        ctx,
        "ours distributed",
        ours_run_args(url, "bench-slow", "hello"),
        {"api": api.pid, "worker": worker.pid},
        ours_db,
    )
    peer_levels: list | str | None = ctx.peer_missing
    if peer_proc:
        peer_levels = capacity(
            ctx,
            "Agno background",
            peer_run_args(peer_url, "bench-slow", "hello", background=True),
            {"agno": peer_proc.pid},
            peer_db,
        )
    ctx.raw["s4"] = {"ours": ours_levels, "agno": peer_levels}
    if 4 in which:
        for i, n in enumerate(ctx.plan["s4_levels"]):
            o = ours_levels[i]
            p = peer_levels[i] if isinstance(peer_levels, list) else peer_levels

            def one(value: float | None) -> dict | None:
                return None if value is None else {"median": value, "min": value, "max": value, "n": 1}

            name = f"4 capacity, 1 s model, {n} in flight"
            ctx.table.add(
                name, "completed runs/s", one(o["per_s"]), one(p["per_s"]) if isinstance(p, dict) else p, "/s", True
            )
            ctx.table.add(
                name, "p99 completion", one(o["p99_ms"]), one(p["p99_ms"]) if isinstance(p, dict) else p, "ms", False
            )
            ctx.table.add(name, "errors", one(o["errors"]), one(p["errors"]) if isinstance(p, dict) else p, "", False)
            ctx.table.add(
                name,
                "peak PostgreSQL connections",
                one(o["db_connections_peak"]),
                one(p["db_connections_peak"]) if isinstance(p, dict) else p,
                "",
                False,
            )
    if 7 in which:
        top_o = ours_levels[-1]["rss_peak_kib"]
        top_p = peer_levels[-1]["rss_peak_kib"] if isinstance(peer_levels, list) else None

        def mib(value: float | None) -> dict | None:
            return None if value is None else {"median": value / 1024, "min": value / 1024, "max": value / 1024, "n": 1}

        peer_idle = mib(idle.get("agno")) if peer_proc else ctx.peer_missing
        ctx.table.add(
            "7 RSS idle (distributed)",
            "API process",
            mib(idle["ours_api"]),
            peer_idle,
            "MiB",
            False,
            "Agno: one process serves and runs",
        )
        ctx.table.add(
            "7 RSS idle (distributed)", "worker process", mib(idle["ours_worker"]), "(same process)", "MiB", False
        )
        ctx.table.add(
            "7 RSS idle (distributed)",
            "all processes",
            mib(idle["ours_api"] + idle["ours_worker"]),
            peer_idle,
            "MiB",
            False,
        )
        n = ctx.plan["s4_levels"][-1]
        peer_peak = mib(top_p["agno"]) if top_p else ctx.peer_missing
        ctx.table.add(
            f"7 RSS at scenario 4's peak ({n} in flight)", "API process", mib(top_o["api"]), peer_peak, "MiB", False
        )
        ctx.table.add(
            f"7 RSS at scenario 4's peak ({n} in flight)",
            "worker process",
            mib(top_o["worker"]),
            "(same process)",
            "MiB",
            False,
        )
        ctx.table.add(
            f"7 RSS at scenario 4's peak ({n} in flight)",
            "all processes",
            mib(top_o["api"] + top_o["worker"]),
            peer_peak,
            "MiB",
            False,
        )
    stack.stop(worker)
    stack.stop(api)
    if peer_proc:
        stack.stop(peer_proc)


def add_skipped(ctx: Context, which: set[int], reason: str) -> None:
    if 3 in which:
        ctx.table.add("3 round trip, distributed", "p50 / p99 / runs/s", reason, reason, "", False)
    if 4 in which:
        ctx.table.add("4 capacity, 1 s model", "runs/s, p99, errors", reason, reason, "", True)
    if 7 in which:
        ctx.table.add("7 RSS idle and at scenario 4's peak", "API + worker", reason, reason, "", False)


# ---------------------------------------------------------------------------------------------


def versions(peer_py: Path | None) -> dict[str, str]:
    def ours(pkg: str) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(pkg)
        except PackageNotFoundError:
            return "not installed"

    found = {
        f"ours:{p}": ours(p)
        for p in ("django", "djangorestframework", "channels", "daphne", "celery", "openai", "anthropic")
    }
    if peer_py:
        code = (
            "import json; from importlib.metadata import version as v; "
            "names = ('agno', 'fastapi', 'uvicorn', 'starlette', 'openai', 'anthropic', 'sqlalchemy'); "
            "print(json.dumps({p: v(p) for p in names}))"
        )
        done = subprocess.run([str(peer_py), "-c", code], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            found |= {f"agno:{k}": v for k, v in json.loads(done.stdout).items()}
    return found


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller levels (under 3 minutes)")
    parser.add_argument("--scenarios", default=",".join(map(str, ALL_SCENARIOS)))
    parser.add_argument("--peer-python", default=str(DEFAULT_PEER_PY), help="python of the bench-only venv with agno")
    parser.add_argument("--services", choices=("auto", "private", "env", "none"), default="auto")
    parser.add_argument("--out", default=None, help="results JSON path (default bench/results/bench-<time>.json)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override a setting of the plan, e.g. --set 's4_levels=[250]' --set rounds=1",
    )
    args = parser.parse_args(argv)
    # SIGTERM (make interrupted, a timeout) unwinds like Ctrl-C, so every process we started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    which = {int(x) for x in args.scenarios.split(",") if x.strip()}
    if not which <= set(ALL_SCENARIOS):
        parser.error(f"scenarios are {ALL_SCENARIOS}")
    peer_py = Path(args.peer_python) if Path(args.peer_python).exists() else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logdir = (Path(args.out).parent if args.out else RESULTS) / f"logs-{stamp}-{os.getpid()}"
    logdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    load_before = os.getloadavg()
    table = Table()
    stack = Stack(logdir, peer_py)
    ctx = Context(args, stack, table)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in ctx.plan:
            parser.error(f"--set: unknown setting {key!r}; settings: {', '.join(ctx.plan)}")
        ctx.plan[key] = json.loads(value)
        if key == "s5_clients":
            ctx.plan["s5_runs_per_client"] = dict.fromkeys(ctx.plan[key], 1) | ctx.plan["s5_runs_per_client"]
    services = Services(args.services, logdir)
    skipped: dict[str, str] = {}
    print(
        f"bench: scenarios {sorted(which)}, {'QUICK' if args.quick else 'full'}, load average {load_before[0]:.2f}",
        flush=True,
    )
    if load_before[0] > 1.5:
        print("bench: warning: the machine is busy (load average above 1.5): figures will be noisy", flush=True)
    try:
        if {1, 2} & which:
            print("scenarios 1-2: in-process", flush=True)
            scenarios_1_2(ctx, which)
        if {3, 4, 5, 6, 7} & which:
            ctx.models = {
                "openai": stack.model_server("model-zero"),
                "anthropic": stack.model_server("model-1000-tokens", reply_tokens=1000),
            }
            if {4, 7} & which:
                ctx.models["slow"] = stack.model_server("model-1s", latency_ms=1000)
        if {3, 5, 6} & which:
            print("phase: ours embedded and AgentOS (SQLite), one process each", flush=True)
            phase_single(ctx, which)
        if {3, 4, 5, 6, 7} & which:
            if services.start():
                print(f"phase: ours distributed; services {services.kind}", flush=True)
                phase_distributed(ctx, which, services)
            else:
                skipped["distributed"] = services.problem or NEEDS_SERVICES
                add_skipped(ctx, which, services.problem or NEEDS_SERVICES)
    finally:
        stack.close()
        services.stop()
    elapsed = time.monotonic() - started
    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "scenarios": sorted(which),
        "seconds": round(elapsed, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine(),
        "versions": versions(peer_py),
        "services": services.kind or None,
        "skipped": skipped,
        "plan": ctx.plan,
        "rows": table.rows,
        "raw": ctx.raw,
        "logs": str(logdir),
    }
    out = Path(args.out) if args.out else RESULTS / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    if not args.out:  # an explicit --out (the smoke test) leaves latest.* alone
        (RESULTS / "latest.json").write_text(json.dumps(report, indent=1, default=str))
        (RESULTS / "latest.md").write_text(table.markdown() + "\n")
    print()
    print(table.render())
    print(
        f"\n{elapsed:.0f} s; load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"ratio > 1 means we win (↑ higher is better, ↓ lower is better, inverted); results: {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
