#!/usr/bin/env python
"""AsterOS against Agno's AgentOS, side by side on this machine: every scenario of BENCHMARKS.md.

    make bench [QUICK=1] [SCENARIOS=1,2,3]        # or:
    .venv/bin/python bench/bench_vs_agno.py [--quick] [--scenarios 1,2,...] [--peer-python PATH]

Scenarios: 1 agent build (µs, KiB), 2 in-process run, 3 server round trip (zero-latency model,
c = 1 and 16), 4 capacity (1 s model, 200 and 500 runs released at once, against the OpenAI SDK
alone making the same calls), 5 streaming (a 500-token reply, 20 clients, one run each), 6 REST
reads (the agent list, 3 agents, c = 16), 7 RSS (idle, and at scenario 4's peak), 8 cold start
(spawn to the first 200 on /health, median of 3 spawns).

The method: two pairs, each measured in alternating rounds. Ours embedded (one ``manage.py asteros
serve`` process on SQLite, its default) against AgentOS on its default single-process store,
SQLite; then ours distributed (one API process and one Celery worker on PostgreSQL and Redis)
against AgentOS on PostgreSQL. In round r (1..``rounds``), at each scenario and level, ours is
measured and then Agno (Agno first on even rounds); load never reaches both at once. Runs are
awaited the way a client does: ours ``POST /api/agents/{id}/run?wait=60`` (one JSON answer, the
finished run; also the SSE variant, read to ``RUN_FINISHED``, as a second round-trip row), Agno its
plain blocking ``POST /agents/{id}/runs`` (``stream=false``); the streaming scenario reads both SSE
streams. ``--quick`` keeps 1 round and short levels; ``--set`` reaches the older levels (c = 64,
1000 at once, 1/10/100 streaming clients).

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
import math
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import RedisServer  # noqa: E402

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
OURS_PY = sys.executable
DEFAULT_PEER_PY = BENCH / ".venv-peer" / "bin" / "python"
ALL_SCENARIOS = (1, 2, 3, 4, 5, 6, 7, 8)
NEEDS_SERVICES = "skipped: needs services"


# ---------------------------------------------------------------------------------------------
# settings per mode


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "rounds": 1,
            "agents": 3,
            "s3_levels": [1, 16],
            "s3_seconds": 3.0,
            "s4_levels": [50],
            "s4_rounds": 1,
            "s5_clients": [5],
            "s5_runs_per_client": {5: 1},
            "s5_tokens": 500,
            "s6_seconds": 2.0,
            "s6_concurrency": 16,
            "cold_starts": 1,
            "sdk_ceiling": True,
        } | SERVING_PLAN
    return {
        "rounds": 3,
        "agents": 3,
        "s3_levels": [1, 16],  # 64: --set 's3_levels=[1,16,64]'
        "s3_seconds": 5.0,
        "s4_levels": [200, 500],  # 1000: --set 's4_levels=[200,500,1000]'
        "s4_rounds": 3,
        "s5_clients": [20],  # 1/10/100: --set 's5_clients=[1,10,100]'
        "s5_runs_per_client": {20: 1},
        "s5_tokens": 500,
        "s6_seconds": 4.0,
        "s6_concurrency": 16,
        "cold_starts": 3,
        "sdk_ceiling": True,
    } | SERVING_PLAN


# How ours is served, the same in both plans: `asteros serve`'s default server unless one is
# named ("daphne" or "uvicorn"), extra environment (e.g. {"ASTEROS_API_RUNS": "1"}), and which of
# the two phases run.
SERVING_PLAN: dict[str, Any] = {"ours_server": None, "ours_env": {}, "modes": ["embedded", "distributed"]}


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
        self.ours_serve_args: list[str] = []  # --server, from the plan
        self.ours_extra_env: dict[str, str] = {}  # the plan's ours_env

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
        } | self.ours_extra_env
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.tmp / "prometheus")
            (self.tmp / "prometheus").mkdir(exist_ok=True)
        return env

    def ours_setup(self, env: dict[str, str], agents: int = 20) -> None:
        done = subprocess.run(
            [OURS_PY, str(BENCH / "ours_setup.py"), "--reset-runs", "--agents", str(agents)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ours_setup failed:\n{done.stderr[-3000:]}")

    @staticmethod
    def url(port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def ours_command(self, port: int) -> list[str]:
        command = [OURS_PY, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(port)]
        return command + self.ours_serve_args

    def ours_server(self, name: str, env: dict[str, str]) -> tuple[Proc, str]:
        port = free_port()
        proc = self.start(name, self.ours_command(port), env)
        url = self.url(port)
        wait_http(url + "/api/agents", proc)  # /health is 503 in distributed mode until a worker answers
        return proc, url

    def ours_worker(self, name: str, env: dict[str, str]) -> Proc:
        command = [OURS_PY, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads", "-c", "1000"]
        command += ["--loglevel", "WARNING", "-n", f"{name}-{os.getpid()}@localhost"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        return self.start(name, command, env)

    # -- the peer -----------------------------------------------------------------------------

    def peer_command(
        self, port: int, models: dict[str, str], db: str, extra: list[str] = ()
    ) -> tuple[list[str], dict[str, str]]:
        assert self.peer_py is not None
        command = [str(self.peer_py), str(BENCH / "peer" / "agno_peer.py"), "serve", "--port", str(port)]
        command += ["--model-url", models["openai"] + "/v1", "--stream-model-url", models["anthropic"]]
        command += ["--slow-model-url", models.get("slow", models["openai"]) + "/v1", "--db", db, *extra]
        env = dict(os.environ) | {"AGNO_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
        return command, env

    def peer_server(self, name: str, models: dict[str, str], db: str, extra: list[str] = ()) -> tuple[Proc, str]:
        port = free_port()
        command, env = self.peer_command(port, models, db, extra)
        proc = self.start(name, command, env)
        url = self.url(port)
        wait_http(url + "/health", proc, timeout=120)
        return proc, url


# ---------------------------------------------------------------------------------------------
# requests of each system


def ours_wait_args(url: str, agent: str, text: str) -> list[str]:
    """Our run awaited the way a client does: ``?wait=60``, one JSON answer with the finished run."""
    return ["wait", "--url", f"{url}/api/agents/{agent}/run?wait=60", "--body-json", json.dumps({"input": text})]


def ours_sse_args(url: str, agent: str, text: str) -> list[str]:
    body = json.dumps({"input": text, "stream": True})
    return ["run", "--url", f"{url}/api/agents/{agent}/run", "--body-json", body]


def peer_wait_args(url: str, agent: str, text: str) -> list[str]:
    """Agno's plain blocking run request: ``stream=false``, no background; its RunOutput as JSON."""
    return _peer_run_args("wait", url, agent, text, stream=False)


def peer_sse_args(url: str, agent: str, text: str) -> list[str]:
    return _peer_run_args("run", url, agent, text, stream=True)


def _peer_run_args(mode: str, url: str, agent: str, text: str, *, stream: bool) -> list[str]:
    form = f"message={text.replace(' ', '+')}&stream={'true' if stream else 'false'}"
    return [mode, "--url", f"{url}/agents/{agent}/runs", "--body-form", form]


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
        ratio: bool = True,
    ) -> None:
        value = None
        if ratio and isinstance(ours, dict) and isinstance(peer, dict) and ours["median"] and peer["median"]:
            value = ours["median"] / peer["median"] if higher_is_better else peer["median"] / ours["median"]
        self.rows.append(
            {
                "scenario": scenario,
                "metric": metric,
                "unit": unit,
                "higher_is_better": higher_is_better,
                "ours": ours,
                "agno": peer,
                "ratio": value,
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
        self.ceiling: dict[int, float] = {}


@dataclass
class Side:
    """One system of a phase: how the scenarios reach it, and the processes whose memory counts."""

    label: str
    wait: list[str]  # scenario 3: a blocking run request
    sse: list[str] | None  # scenario 3, ours only: the same run over SSE, read to its end
    stream: list[str]  # scenario 5
    list_url: str  # scenario 6
    capacity: list[str]  # scenario 4: a blocking run of bench-slow (1 s model)
    pids: dict[str, int] = field(default_factory=dict)
    database_url: str | None = None  # PostgreSQL: its peak connections are sampled


def ordered(round_no: int) -> tuple[str, str]:
    """The order of a round: ours first on odd rounds, Agno first on even ones."""
    return ("ours", "agno") if round_no % 2 else ("agno", "ours")


def load(args: list[str], concurrency: int, count: int, seconds: float, request_timeout: float) -> dict:
    return loadgen(
        *args,
        "--concurrency", str(concurrency),
        "--count", str(count),
        "--max-seconds", str(seconds),
        "--request-timeout", str(request_timeout),
        timeout=seconds + request_timeout + 10,
    )  # fmt: skip


def runs_per_client(ctx: Context, clients: int) -> int:
    per = ctx.plan["s5_runs_per_client"]
    return int(per.get(clients, per.get(str(clients), 1)))


def fast_rounds(ctx: Context, which: set[int], sides: dict[str, Side | None], results: dict) -> None:
    """Scenarios 3, 6 and 5, round after round; at each scenario and level, ours and Agno in turn,
    never both under load at once."""
    p = ctx.plan
    for r in range(1, p["rounds"] + 1):
        if 3 in which:
            for c in p["s3_levels"]:
                for name in ordered(r):
                    side = sides[name]
                    if side is None:
                        continue
                    for kind, args in (("wait", side.wait), ("sse", side.sse)):
                        if args is None:
                            continue
                        res = load(args, c, 100_000, p["s3_seconds"], 30)
                        results[name].setdefault(f"3:{kind}:{c}", []).append(res)
                        print(
                            f"  round {r} 3 {side.label} {kind} c={c}: {res['per_s']} runs/s p50 {res['p50_ms']} ms"
                            f" p99 {res['p99_ms']} ms errors {res['errors']} {res['error_kinds'] or ''}",
                            flush=True,
                        )
        if 6 in which:
            for name in ordered(r):
                side = sides[name]
                if side is None:
                    continue
                res = load(["get", "--url", side.list_url], p["s6_concurrency"], 1_000_000, p["s6_seconds"], 30)
                results[name].setdefault("6", []).append(res)
                print(
                    f"  round {r} 6 {side.label} GET list: {res['per_s']} req/s p50 {res['p50_ms']} ms"
                    f" errors {res['errors']}",
                    flush=True,
                )
        if 5 in which:
            for c in p["s5_clients"]:
                for name in ordered(r):
                    side = sides[name]
                    if side is None:
                        continue
                    res = load(side.stream, c, c * runs_per_client(ctx, c), 120, 120)
                    results[name].setdefault(f"5:{c}", []).append(res)
                    print(
                        f"  round {r} 5 {side.label} clients={c}: first token {res.get('ttft_p50_ms')} ms"
                        f" last token {res.get('ttlt_p50_ms')} ms errors {res['errors']}",
                        flush=True,
                    )


def capacity_rounds(ctx: Context, sides: dict[str, Side | None], results: dict) -> None:
    """Scenario 4: N clients each send one blocking run of the 1 s model, all released at once;
    per round and level, ours and Agno in turn. Peak RSS (and PostgreSQL connections) sampled."""
    p = ctx.plan
    for r in range(1, p["s4_rounds"] + 1):
        for n in p["s4_levels"]:
            for name in ordered(r):
                side = sides[name]
                if side is None:
                    continue
                with RSSSampler(side.pids, side.database_url) as sampler:
                    res = load(side.capacity, n, n, 60, 180)
                res["rss_peak_kib"] = dict(sampler.peak)
                res["db_connections_peak"] = sampler.peak_connections if side.database_url else None
                res["level"] = n
                results[name].setdefault(f"4:{n}", []).append(res)
                print(
                    f"  round {r} 4 {side.label} N={n}: {res['per_s']} runs/s p99 {res['p99_ms']} ms"
                    f" errors {res['errors']} {res['error_kinds'] or ''} rss {res['rss_peak_kib']}"
                    + (f" db connections {res['db_connections_peak']}" if side.database_url else ""),
                    flush=True,
                )
                time.sleep(2)


def one(value: float | None) -> dict | None:
    return None if value is None else {"median": value, "min": value, "max": value, "n": 1}


def phase_rows(ctx: Context, which: set[int], mode: str, peer_name: str, results: dict, idle: dict) -> None:
    """The table rows of one phase: ours (embedded or distributed) against one AgentOS."""
    p = ctx.plan
    suffix = f"{mode} vs {peer_name}"
    ours, peer = results["ours"], results["agno"]

    def side_value(runs: dict, key: str, field_name: str, scale: float = 1.0, missing: bool = False) -> Any:
        if missing:
            return ctx.peer_missing
        found = runs.get(key)
        if not found:
            return None
        return agg([r[field_name] * scale if r.get(field_name) is not None else None for r in found if r["completed"]])

    no_peer = ctx.peer_py is None

    def errors_row(name: str, ours_key: str, peer_key: str) -> None:
        e_ours = sum(r["errors"] for r in ours.get(ours_key, []))
        e_peer = sum(r["errors"] for r in peer.get(peer_key, []))
        if e_ours or e_peer:
            ctx.table.add(
                name, "errors (all rounds)", one(e_ours), ctx.peer_missing if no_peer else one(e_peer), "", False
            )

    if 3 in which:
        for c in p["s3_levels"]:
            for kind, label in (("wait", ""), ("sse", " (ours SSE)")):
                key = f"3:{kind}:{c}"
                if key not in ours:
                    continue
                name = f"3 round trip, c={c}, {mode}{label} vs {peer_name}"
                note = "Agno: its blocking POST (stream=false)" if kind == "sse" else ""
                for metric, field_name, unit, hib in (
                    ("p50", "p50_ms", "ms", False),
                    ("p99", "p99_ms", "ms", False),
                    ("runs/s", "per_s", "/s", True),
                ):
                    ctx.table.add(
                        name,
                        metric,
                        side_value(ours, key, field_name),
                        side_value(peer, f"3:wait:{c}", field_name, missing=no_peer),
                        unit,
                        hib,
                        note,
                    )
                errors_row(name, key, f"3:wait:{c}")
    if 6 in which and "6" in ours:
        listed = ctx.raw.get(f"agents_listed_{mode}", {})
        name = f"6 REST GET agent list ({listed.get('ours', '?')} agents), c={p['s6_concurrency']}, {suffix}"
        ctx.table.add(
            name,
            "requests/s",
            side_value(ours, "6", "per_s"),
            side_value(peer, "6", "per_s", missing=no_peer),
            "/s",
            True,
            "Agno: GET /agents",
        )
        errors_row(name, "6", "6")
    if 5 in which:
        for c in p["s5_clients"]:
            key = f"5:{c}"
            if key not in ours:
                continue
            name = f"5 streaming {p['s5_tokens']} tokens, {c} client{'s' if c > 1 else ''}, {suffix}"
            for metric, field_name in (("first token p50", "ttft_p50_ms"), ("last token p50", "ttlt_p50_ms")):
                ctx.table.add(
                    name,
                    metric,
                    side_value(ours, key, field_name),
                    side_value(peer, key, field_name, missing=no_peer),
                    "ms",
                    False,
                )
            errors_row(name, key, key)
    if 4 in which:
        for n in p["s4_levels"]:
            key = f"4:{n}"
            if key not in ours:
                continue
            name = f"4 capacity, 1 s model, {n} at once, {suffix}"
            for metric, field_name, unit, higher in (
                ("completed runs/s", "per_s", "/s", True),
                ("p99 completion", "p99_ms", "ms", False),
            ):
                ours_value = side_value(ours, key, field_name)
                peer_value = side_value(peer, key, field_name, missing=no_peer)
                ctx.table.add(name, metric, ours_value, peer_value, unit, higher)
            errors_row(name, key, key)
            if mode == "distributed":
                ctx.table.add(
                    name,
                    "peak PostgreSQL connections",
                    side_value(ours, key, "db_connections_peak"),
                    side_value(peer, key, "db_connections_peak", missing=no_peer),
                    "",
                    False,
                )
            ceiling = ctx.ceiling.get(n)
            if ceiling:
                ctx.table.add(
                    name,
                    "SDK alone, the same calls (ceiling, 1 round)",
                    one(ceiling),
                    "-",
                    "/s",
                    True,
                    "bench/bench_sdk_floor.py, one client per 32 calls",
                    ratio=False,
                )
                ctx.table.add(
                    name,
                    "÷ SDK ceiling (target ≥ 0.8)",
                    side_value(ours, key, "per_s", 1 / ceiling),
                    side_value(peer, key, "per_s", 1 / ceiling, missing=no_peer),
                    "",
                    True,
                    ratio=False,
                )
    if 7 in which and idle:
        processes = "one process" if mode == "embedded" else "API + worker"
        name = f"7 RSS, {mode} ({processes}) vs {peer_name} (one process)"
        mib = 1 / 1024
        ctx.table.add(
            name,
            "idle",
            one(idle["ours"] * mib),
            ctx.peer_missing if no_peer else one(idle.get("agno", 0) * mib or None),
            "MiB",
            False,
        )
        top = p["s4_levels"][-1]

        def peaks(runs: dict) -> dict | None:
            return agg([sum(r["rss_peak_kib"].values()) * mib for r in runs.get(f"4:{top}", [])])

        if f"4:{top}" in ours:
            ctx.table.add(
                name,
                f"at scenario 4's peak ({top} at once)",
                peaks(ours),
                ctx.peer_missing if no_peer else peaks(peer),
                "MiB",
                False,
            )


def sdk_ceiling(ctx: Context) -> None:
    """Scenario 4's ceiling on this machine, in this run: the OpenAI SDK alone making the same calls."""
    found: dict[str, Any] = {}
    for n in ctx.plan["s4_levels"]:
        clients = max(1, math.ceil(n / 32))  # our worker's providers open one client per 32 streams
        command = [OURS_PY, str(BENCH / "bench_sdk_floor.py"), "--json", "--levels", str(n), "--rounds", "1"]
        command += ["--clients", str(clients), "--latency-ms", "1000"]
        result = micro_json(command, timeout=300)
        runs = result["levels"][str(n)]
        found[str(n)] = result
        ctx.ceiling[n] = statistics.median(run["calls_per_s"] for run in runs)
        print(f"  4 SDK alone N={n} ({clients} clients): {ctx.ceiling[n]:.1f} calls/s", flush=True)
    ctx.raw["sdk_ceiling"] = found


def spawn_to_healthy(stack: Stack, name: str, command: list[str], env: dict[str, str], url: str) -> float:
    """Milliseconds from spawning a server to its first 200 on ``url``; the server is stopped after."""
    started = time.perf_counter()
    proc = stack.start(name, command, env)
    try:
        while time.perf_counter() - started < 120:
            if not proc.alive():
                raise RuntimeError(f"{name} exited:\n{proc.tail()}")
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError),
                urllib.request.urlopen(url, timeout=2) as response,
            ):
                if response.status == 200:
                    return (time.perf_counter() - started) * 1000
            time.sleep(0.02)
        raise RuntimeError(f"{url} did not answer 200 within 120 s:\n{proc.tail()}")
    finally:
        stack.stop(proc)


def cold_starts(ctx: Context, ours_env: dict[str, str], peer_db: str) -> None:
    """Scenario 8: spawn to the first 200 on /health, ours embedded and Agno (SQLite), in turn."""
    stack = ctx.stack
    times: dict[str, list[float]] = {"ours": [], "agno": []}
    for r in range(1, ctx.plan["cold_starts"] + 1):
        for name in ordered(r):
            port = free_port()
            if name == "ours":
                ms = spawn_to_healthy(
                    stack, "ours-cold", stack.ours_command(port), ours_env, f"{stack.url(port)}/health"
                )
            elif ctx.peer_py:
                command, env = stack.peer_command(port, ctx.models, peer_db, ["--agents", str(ctx.plan["agents"])])
                ms = spawn_to_healthy(stack, "agno-cold", command, env, f"{stack.url(port)}/health")
            else:
                continue
            times[name].append(ms)
            print(f"  spawn {r} 8 {name}: healthy after {ms:.0f} ms", flush=True)
    ctx.raw["s8_cold_start_ms"] = times
    ctx.table.add(
        "8 cold start, spawn to /health 200, embedded vs Agno SQLite",
        f"median of {ctx.plan['cold_starts']} spawns",
        agg(times["ours"]),
        agg(times["agno"]) if ctx.peer_py else ctx.peer_missing,
        "ms",
        False,
        "ours: manage.py asteros serve; Agno: its AgentOS app under uvicorn",
    )


# ---------------------------------------------------------------------------------------------
# phases


def phase_embedded(ctx: Context, which: set[int]) -> None:
    """Ours embedded (one process, SQLite) against AgentOS on its default store, SQLite."""
    stack, p = ctx.stack, ctx.plan
    agents = ["--agents", str(p["agents"])]
    env = stack.ours_env(ctx.models, f"sqlite:///{stack.tmp / 'ours.sqlite3'}", None)
    stack.ours_setup(env, p["agents"])
    peer_db = f"sqlite:{stack.tmp / 'agno.sqlite3'}"
    results: dict[str, dict] = {"ours": {}, "agno": {}}
    ctx.raw["embedded"] = results
    idle: dict[str, int] = {}
    if {3, 5, 6, 7} & which:
        ours_proc, ours_url = stack.ours_server("ours-embedded", env)
        peer_proc = peer_url = None
        if ctx.peer_py:
            peer_proc, peer_url = stack.peer_server("agno-sqlite", ctx.models, peer_db, agents)
        sides = {"ours": ours_side("ours embedded", ours_url, {"ours": ours_proc.pid}), "agno": None}
        if peer_url and peer_proc:
            sides["agno"] = peer_side("Agno SQLite", peer_url, {"agno": peer_proc.pid})
        warm_all(sides)
        time.sleep(1)
        idle = {"ours": rss_kib(ours_proc.pid)} | ({"agno": rss_kib(peer_proc.pid)} if peer_proc else {})
        ctx.raw["rss_idle_kib_embedded"] = idle
        list_agents(ctx, "embedded", sides)
        fast_rounds(ctx, which, sides, results)
        stack.stop(ours_proc)
        if {4, 7} & which:
            # Scenario 4: the embedded process's model is the 1-second server (OPENAI_BASE_URL).
            ours_proc, ours_url = stack.ours_server(
                "ours-embedded-slow", env | {"OPENAI_BASE_URL": ctx.models["slow"] + "/v1"}
            )
            sides["ours"] = ours_side("ours embedded", ours_url, {"ours": ours_proc.pid})
            warm_up(sides["ours"].capacity)
            if sides["agno"]:
                warm_up(sides["agno"].capacity)
            time.sleep(1)
            capacity_rounds(ctx, sides, results)
            stack.stop(ours_proc)
        if peer_proc:
            stack.stop(peer_proc)
    phase_rows(ctx, which, "embedded", "Agno SQLite", results, idle)
    if 8 in which:
        cold_starts(ctx, env, peer_db)


def phase_distributed(ctx: Context, which: set[int], services: Services) -> None:
    """Ours distributed (API process + one Celery worker, PostgreSQL + Redis) against AgentOS on PostgreSQL."""
    stack, p = ctx.stack, ctx.plan
    agents = ["--agents", str(p["agents"])]
    ours_db = services.database("asteros_bench_ours")
    env = stack.ours_env(ctx.models, ours_db, services.redis_url)
    stack.ours_setup(env, p["agents"])
    api, url = stack.ours_server("ours-api", env)
    worker = stack.ours_worker("ours-worker", env)
    peer_proc = peer_url = None
    peer_db = services.database("asteros_bench_agno")
    if ctx.peer_py:
        peer_proc, peer_url = stack.peer_server("agno-postgres", ctx.models, f"postgres:{peer_db}", agents)
    ours_pids = {"api": api.pid, "worker": worker.pid}
    sides: dict[str, Side | None] = {"ours": ours_side("ours distributed", url, ours_pids, ours_db), "agno": None}
    if peer_url and peer_proc:
        sides["agno"] = peer_side("Agno PostgreSQL", peer_url, {"agno": peer_proc.pid}, peer_db)
    warm_all(sides)  # also proves the worker is up
    time.sleep(1)
    idle_detail = {"ours_api": rss_kib(api.pid), "ours_worker": rss_kib(worker.pid)}
    if peer_proc:
        idle_detail["agno"] = rss_kib(peer_proc.pid)
    ctx.raw["rss_idle_kib_distributed"] = idle_detail
    idle = {"ours": idle_detail["ours_api"] + idle_detail["ours_worker"]}
    if peer_proc:
        idle["agno"] = idle_detail["agno"]
    results: dict[str, dict] = {"ours": {}, "agno": {}}
    ctx.raw["distributed"] = results
    list_agents(ctx, "distributed", sides)
    fast_rounds(ctx, which, sides, results)
    if {4, 7} & which:
        # Scenario 4: the worker's model is the 1-second server (the runtime reads OPENAI_BASE_URL).
        stack.stop(worker)
        slow_env = env | {"OPENAI_BASE_URL": ctx.models["slow"] + "/v1"}
        worker = stack.ours_worker("ours-worker-slow", slow_env)
        if env.get("ASTEROS_API_RUNS"):  # the API executes runs too: it calls the slow model
            stack.stop(api)
            api, url = stack.ours_server("ours-api-slow", slow_env)
            sides["ours"] = ours_side("ours distributed", url, ours_pids, ours_db)
        sides["ours"].pids = {"api": api.pid, "worker": worker.pid}
        warm_up(sides["ours"].capacity)
        if sides["agno"]:
            warm_up(sides["agno"].capacity)
        time.sleep(2)
        capacity_rounds(ctx, sides, results)
    stack.stop(worker)
    stack.stop(api)
    if peer_proc:
        stack.stop(peer_proc)
    phase_rows(ctx, which, "distributed", "Agno PostgreSQL", results, idle)


def ours_side(label: str, url: str, pids: dict[str, int], database_url: str | None = None) -> Side:
    return Side(
        label=label,
        wait=ours_wait_args(url, "bench-0", "hello"),
        sse=ours_sse_args(url, "bench-0", "hello"),
        stream=ours_sse_args(url, "bench-stream", "talk"),
        list_url=f"{url}/api/agents",
        capacity=ours_wait_args(url, "bench-slow", "hello"),
        pids=pids,
        database_url=database_url,
    )


def peer_side(label: str, url: str, pids: dict[str, int], database_url: str | None = None) -> Side:
    return Side(
        label=label,
        wait=peer_wait_args(url, "bench-0", "hello"),
        sse=None,
        stream=peer_sse_args(url, "bench-stream", "talk"),
        list_url=f"{url}/agents",
        capacity=peer_wait_args(url, "bench-slow", "hello"),
        pids=pids,
        database_url=database_url,
    )


def warm_all(sides: dict[str, Side | None]) -> None:
    """Every request kind once or more on each side: both SDKs imported, connections open."""
    for side in sides.values():
        if side is None:
            continue
        for args in (side.wait, side.sse, side.stream):
            if args is not None:
                warm_up(args)


def list_agents(ctx: Context, mode: str, sides: dict[str, Side | None]) -> None:
    listed = {name: check_agent_list(side.list_url) for name, side in sides.items() if side is not None}
    ctx.raw[f"agents_listed_{mode}"] = listed
    if any(count != ctx.plan["agents"] for count in listed.values()):
        print(f"bench: warning: agents listed {listed}, expected {ctx.plan['agents']}", flush=True)


def check_agent_list(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())
    items = data.get("results", data) if isinstance(data, dict) else data
    return len(items)


def add_skipped(ctx: Context, which: set[int], reason: str) -> None:
    suffix = "distributed vs Agno PostgreSQL"
    if 3 in which:
        ctx.table.add(f"3 round trip, {suffix}", "p50 / p99 / runs/s", reason, reason, "", False)
    if 6 in which:
        ctx.table.add(f"6 REST GET agent list, {suffix}", "requests/s", reason, reason, "", True)
    if 5 in which:
        ctx.table.add(f"5 streaming, {suffix}", "first / last token p50", reason, reason, "", False)
    if 4 in which:
        ctx.table.add(f"4 capacity, 1 s model, {suffix}", "runs/s, p99, errors", reason, reason, "", True)
    if 7 in which:
        ctx.table.add(f"7 RSS, {suffix}", "idle and at scenario 4's peak", reason, reason, "", False)


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
        help="override a setting of the plan, e.g. --set 's4_levels=[200,500,1000]' --set rounds=1",
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
    stack.ours_serve_args = ["--server", ctx.plan["ours_server"]] if ctx.plan["ours_server"] else []
    stack.ours_extra_env = {key: str(value) for key, value in ctx.plan["ours_env"].items()}
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
        if 4 in which and ctx.plan["sdk_ceiling"]:
            print("scenario 4's ceiling: the OpenAI SDK alone, the same calls", flush=True)
            sdk_ceiling(ctx)
        if {3, 4, 5, 6, 7, 8} & which:
            tokens = ctx.plan["s5_tokens"]
            ctx.models = {
                "openai": stack.model_server("model-zero"),
                "anthropic": stack.model_server(f"model-{tokens}-tokens", reply_tokens=tokens),
            }
            if {4, 7} & which:
                ctx.models["slow"] = stack.model_server("model-1s", latency_ms=1000)
        if {3, 4, 5, 6, 7, 8} & which and "embedded" in ctx.plan["modes"]:
            print("phase: ours embedded (one process, SQLite) and AgentOS on SQLite, in turn", flush=True)
            phase_embedded(ctx, which)
        if {3, 4, 5, 6, 7} & which and "distributed" in ctx.plan["modes"]:
            if services.start():
                print(
                    f"phase: ours distributed and AgentOS on PostgreSQL, in turn; services {services.kind}", flush=True
                )
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
