#!/usr/bin/env python
"""What a worker killed mid-run costs star and workflow runs: model calls and time to recover.

    .venv/bin/python bench/bench_step_retry.py [--json] [--runs 20] [--latency-ms 1000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/asteros_bench_step_retry \\
        REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/bench_step_retry.py --json

Distributed mode on PostgreSQL and Redis (``DATABASE_URL`` and ``REDIS_URL``; by default the
database ``asteros_bench_step_retry`` on the local server, created and migrated here if it does
not exist, and Redis db 9). Every agent is an OpenAI agent of the local fake model server
(``tests/support/model_server.py``, in this process), which answers after ``--latency-ms``
by echoing the prompt: each child run's prompt is its own (it carries its parent's input), so
the server's records tell which model calls were made twice.

``--runs`` star runs (round_robin, one round: three members in turn, then the leader
concludes; 4 model calls) and ``--runs`` workflow runs (a quarter each of: four agent steps in
a row; a parallel step of two branches, then two steps; a loop of three iterations, then one
step; a router whose agent picks a route of three steps), all executed by one ``celery worker``
(threads pool). Once each run has two SUCCEEDED child runs, that worker is SIGKILLed; a second
worker, started meanwhile, re-queues the runs when their lease expires (``ASTEROS_LEASE_SECONDS``,
3 s here) and runs them again. Then the same runs again on that worker with nothing killed:
the model calls an uninterrupted run needs, and its wall time.

For stars and workflows separately, it reports: the model calls made, the model calls an
uninterrupted run needs (and the difference), how many of the child runs that had succeeded
before the kill were executed again, and the wall time from dispatch until every run had ended
(killed, and uninterrupted). Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.model_server import ModelServer  # noqa: E402

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/asteros_bench_step_retry"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
LEASE_SECONDS = 3
SUCCEEDED_BEFORE_KILL = 2  # child runs of each run that have succeeded when the worker is killed
KILL_AFTER_AT_MOST_S = 60  # kill anyway if some run never gets there
ALL_ENDED_WITHIN_S = 90
WORKER_CONCURRENCY = 100
STAR_MEMBERS = (("lead", ""), ("ann", "ann checks facts"), ("bob", "bob writes"))  # name, description
WORKFLOW_SHAPES = ("sequential", "parallel", "loop", "router")


# ---- the database and the environment ------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the database of ``url`` on its server if it does not exist."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        sys.exit("DATABASE_URL must name a database (the bench's own).")
    maintenance = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure(database_url: str, redis_url: str) -> None:
    """This process's environment (the workers inherit it), then Django, then the migrations."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-not-a-secret",
            "ASTEROS_LOG_LEVEL": "warning",
            "ASTEROS_ENABLE_LOGGING": "false",
            "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def end_leftovers(database_url: str) -> int:
    """Runs an earlier, interrupted bench left active in the bench's own database: ended, so the
    workers' reaper does not run them again during this one."""
    from django.utils import timezone

    from cosmos.models import ACTIVE_STATUSES, Run, RunStatus

    if not urlsplit(database_url).path.lstrip("/").startswith("asteros_bench"):
        return 0
    return Run.objects.filter(status__in=ACTIVE_STATUSES).update(
        status=RunStatus.CANCELLED, lease_expires_at=None, finished_at=timezone.now()
    )


# ---- the runs ------------------------------------------------------------------------------


def agent_step(name: str, agent: str, prompt: str) -> dict:
    return {"name": name, "type": "agent", "agent": agent, "prompt": prompt}


def definition(shape: str, agent: str) -> dict:
    if shape == "sequential":
        return {
            "steps": [
                agent_step("draft", agent, "draft {{ input }}"),
                *(agent_step(n, agent, n + " {{ previous }}") for n in ("review", "edit", "polish")),
            ]
        }
    if shape == "parallel":
        branches = [
            {"name": "short", "steps": [agent_step("short-1", agent, "short {{ input }}")]},
            {
                "name": "long",
                "steps": [
                    agent_step("long-1", agent, "long one {{ input }}"),
                    agent_step("long-2", agent, "long two {{ previous }}"),
                ],
            },
        ]
        return {
            "steps": [
                {"name": "fan", "type": "parallel", "branches": branches},
                agent_step("join", agent, "join {{ previous.short }} + {{ previous.long }}"),
                agent_step("sign", agent, "sign {{ previous }}"),
            ]
        }
    if shape == "loop":
        body = [agent_step("pass", agent, "pass {{ loop.iteration }}: {{ previous }}")]
        return {
            "steps": [
                {"name": "refine", "type": "loop", "max_iterations": 3, "steps": body},
                agent_step("finish", agent, "finish {{ previous }}"),
            ]
        }
    billing = [
        agent_step("bill", agent, "bill {{ input }}"),
        agent_step("invoice", agent, "invoice {{ previous }}"),
        agent_step("receipt", agent, "receipt {{ previous }}"),
    ]
    routes = [{"name": "billing", "steps": billing}, {"name": "support", "steps": [agent_step("help", agent, "hi")]}]
    # The model echoes the prompt, which names "billing" first: the route it picks.
    return {
        "steps": [
            {
                "name": "triage",
                "type": "router",
                "agent": agent,
                "prompt": "billing or support? {{ input }}",
                "routes": routes,
            }
        ]
    }


def make_targets(tag: str) -> tuple[str, dict[str, str]]:
    """The star and one workflow per shape, their agents calling the fake OpenAI server."""
    from cosmos.models import Agent
    from stars.models import Membership, Role, Star
    from workflows.models import Workflow

    def agent(agent_id: str) -> str:
        parameters = {"timeout": 60, "max_retries": 0}
        return Agent.objects.create(id=agent_id, provider="openai", model="fake-model", parameters=parameters).id

    star = Star.objects.create(id=f"bench-retry-{tag}", mode="round_robin", config={"rounds": 1})
    for order, (name, about) in enumerate(STAR_MEMBERS):
        role = Role.LEADER if order == 0 else Role.WORKER
        member = Agent.objects.get(id=agent(f"bench-retry-{tag}-{name}"))
        Membership.objects.create(star=star, agent=member, name=name, role=role, order=order, description=about)
    step_agent = agent(f"bench-retry-{tag}-steps")
    workflows = {
        shape: Workflow.objects.create(id=f"bench-retry-{tag}-{shape}", definition=definition(shape, step_agent)).id
        for shape in WORKFLOW_SHAPES
    }
    return star.id, workflows


def start_runs(phase: str, runs: int, star: str, workflows: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``runs`` star runs and ``runs`` workflow runs, sent to the broker: {run id: (group, input)}.
    Each input is unique to the run, and the prompts of its child runs all hold it."""
    from cosmos.services import runs as run_services

    started: dict[str, tuple[str, str]] = {}
    for i in range(runs):
        text = f"[{phase}:star:{i:03d}]"
        started[str(run_services.start_run("star", star, text, origin="cli")[0].id)] = ("stars", text)
    for i in range(runs):
        text = f"[{phase}:workflow:{i:03d}]"
        workflow = workflows[WORKFLOW_SHAPES[i % len(WORKFLOW_SHAPES)]]
        started[str(run_services.start_run("workflow", workflow, text, origin="cli")[0].id)] = ("workflows", text)
    return started


def wait_until_ended(run_ids: list[str], since: float, timeout: float) -> dict[str, float]:
    """{run id: seconds from ``since`` (a ``time.monotonic()``) until it was seen ended}."""
    from cosmos.models import TERMINAL_STATUSES, Run

    deadline = time.monotonic() + timeout
    ended: dict[str, float] = {}
    while len(ended) < len(run_ids):
        left = [r for r in run_ids if r not in ended]
        for run_id in Run.objects.filter(id__in=left, status__in=TERMINAL_STATUSES).values_list("id", flat=True):
            ended[str(run_id)] = time.monotonic() - since
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(run_ids) - len(ended)} run(s) still active after {timeout:.0f} s")
        time.sleep(0.05)
    return ended


def wall_times(ended: dict[str, float], runs: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Per group: the seconds until its last run ended."""
    return {
        group: round(max(t for r, t in ended.items() if runs[r][0] == group), 2) for group in ("stars", "workflows")
    }


def wait_until_mid_way(run_ids: list[str]) -> None:
    """Until each run has ``SUCCEEDED_BEFORE_KILL`` succeeded child runs (or a minute passed)."""
    from cosmos.models import Run, RunStatus

    deadline = time.monotonic() + KILL_AFTER_AT_MOST_S
    while time.monotonic() < deadline:
        done = Counter(
            str(parent)
            for parent in Run.objects.filter(parent_id__in=run_ids, status=RunStatus.SUCCEEDED).values_list(
                "parent_id", flat=True
            )
        )
        if all(done[run_id] >= SUCCEEDED_BEFORE_KILL for run_id in run_ids):
            return
        time.sleep(0.05)


def prompt_of(body: object) -> str:
    """The last user message of an OpenAI chat request."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def calls_by_group(server: ModelServer, runs: dict[str, tuple[str, str]]) -> tuple[Counter, Counter]:
    """(model calls per group, model calls per prompt) of these runs' child runs."""
    texts = {text: group for group, text in runs.values()}
    per_group: Counter = Counter()
    per_prompt: Counter = Counter()
    for request in server.model_requests():
        prompt = prompt_of(request.body)
        group = next((g for text, g in texts.items() if text in prompt), None)
        if group is not None:
            per_group[group] += 1
            per_prompt[prompt] += 1
    return per_group, per_prompt


# ---- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="star runs, and as many workflow runs")
    parser.add_argument("--latency-ms", type=int, default=1000, help="each model call's time")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    if urlsplit(database_url).scheme not in ("postgres", "postgresql"):
        sys.exit("DATABASE_URL must be a PostgreSQL database (the bench's own).")
    log = (lambda *_: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    ensure_database(database_url)
    configure(database_url, redis_url)
    ended_leftovers = end_leftovers(database_url)

    from cosmos.models import Run, RunStatus
    from tests.support.workers import WorkerProcess

    began = time.monotonic()
    server = ModelServer(latency_ms=args.latency_ms, max_records=100_000).start()
    env = {
        "REDIS_URL": redis_url,
        "ASTEROS_LEASE_SECONDS": str(LEASE_SECONDS),
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "OPENAI_API_KEY": "local",
    }
    tag = uuid.uuid4().hex[:6]
    star, workflows = make_targets(tag)
    holder = WorkerProcess(concurrency=WORKER_CONCURRENCY, env=env).spawn()
    rescuer = WorkerProcess(concurrency=WORKER_CONCURRENCY, env=env)
    try:
        holder.wait_ready(90)
        # 1. Killed mid-way: every run on the holder, which dies once each has done some steps.
        log(f"{2 * args.runs} runs on one worker, killed mid-way ...")
        dispatched = time.monotonic()
        killed_runs = start_runs(f"{tag}-killed", args.runs, star, workflows)
        killed_ids = list(killed_runs)
        while Run.objects.filter(id__in=killed_ids, status=RunStatus.QUEUED).exists():
            time.sleep(0.05)  # every run claimed by the holder: only then may another worker consume
        on_holder = Run.objects.filter(id__in=killed_ids, worker_id__startswith=holder.engine_id_prefix).count()
        rescuer.spawn()
        wait_until_mid_way(killed_ids)
        holder.kill()
        killed_after = time.monotonic() - dispatched
        active_at_kill = Counter(
            killed_runs[str(run_id)][0]
            for run_id in Run.objects.filter(id__in=killed_ids, status=RunStatus.RUNNING).values_list("id", flat=True)
        )
        done_at_kill: dict[str, list[str]] = {"stars": [], "workflows": []}
        for child_input, parent in Run.objects.filter(parent_id__in=killed_ids, status=RunStatus.SUCCEEDED).values_list(
            "input", "parent_id"
        ):
            done_at_kill[killed_runs[str(parent)][0]].append(child_input["message"])
        rescuer.wait_ready(90)
        killed_wall = wall_times(wait_until_ended(killed_ids, dispatched, ALL_ENDED_WITHIN_S), killed_runs)
        # 2. The same runs, nothing killed: what they need.
        log(f"{2 * args.runs} runs on one worker, uninterrupted ...")
        calm_dispatched = time.monotonic()
        calm_runs = start_runs(f"{tag}-calm", args.runs, star, workflows)
        calm_wall = wall_times(wait_until_ended(list(calm_runs), calm_dispatched, ALL_ENDED_WITHIN_S), calm_runs)
    finally:
        holder.close()
        rescuer.close()
        server.stop()

    rows = Run.objects.filter(id__in=[*killed_runs, *calm_runs]).values_list("id", "status")
    statuses = {str(run_id): status for run_id, status in rows}
    killed_calls, killed_prompts = calls_by_group(server, killed_runs)
    calm_calls, _ = calls_by_group(server, calm_runs)
    result: dict = {
        "bench": "step_retry",
        "latency_ms": args.latency_ms,
        "lease_seconds": LEASE_SECONDS,
        "runs_per_group": args.runs,
        "runs_on_killed_worker": on_holder,
        "killed_after_s": round(killed_after, 2),
        "leftover_runs_ended": ended_leftovers,
    }
    for group in ("stars", "workflows"):
        made, needed = killed_calls[group], calm_calls[group]
        succeeded = sum(1 for r, (g, _) in killed_runs.items() if g == group and statuses[r] == RunStatus.SUCCEEDED)
        calm_ok = sum(1 for r, (g, _) in calm_runs.items() if g == group and statuses[r] == RunStatus.SUCCEEDED)
        result[group] = {
            "runs_cut_off_by_kill": active_at_kill[group],
            "runs_succeeded": succeeded,
            "uninterrupted_runs_succeeded": calm_ok,
            "model_calls": made,
            "model_calls_uninterrupted": needed,
            "extra_model_calls": made - needed,
            "children_done_at_kill": len(done_at_kill[group]),
            "children_done_at_kill_executed_again": sum(1 for p in done_at_kill[group] if killed_prompts[p] > 1),
            "wall_s": killed_wall[group],
            "wall_s_uninterrupted": calm_wall[group],
        }
    result["bench_s"] = round(time.monotonic() - began, 1)
    if not args.json:
        print_table(result)
    print(json.dumps(result))


def print_table(result: dict) -> None:
    print(
        f"{result['runs_per_group']} star and {result['runs_per_group']} workflow runs, model calls of "
        f"{result['latency_ms']} ms; the worker holding them ({result['runs_on_killed_worker']}) killed "
        f"after {result['killed_after_s']} s, lease {result['lease_seconds']} s"
    )
    print(f"{'':40} {'stars':>10} {'workflows':>10}")
    for key in result["stars"]:
        print(f"{key:40} {result['stars'][key]:>10} {result['workflows'][key]:>10}")


if __name__ == "__main__":
    main()
