"""AsterOS Prometheus metrics, recorded by the engine wherever runs execute.

Worker processes write to ``PROMETHEUS_MULTIPROC_DIR`` when it is set (distributed mode),
so the API's ``/metrics`` scrape sums every process; see docs/operations.md.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter("asteros_runs_total", "Runs finished, by kind and status.", ["kind", "status"])
RUN_DURATION = Histogram(
    "asteros_run_duration_seconds",
    "Run duration from start to end.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RUN_QUEUE = Histogram(
    "asteros_run_queue_seconds",
    "Time from queued to started.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
TOKENS = Counter("asteros_tokens_total", "Model tokens, by agent and direction.", ["agent", "direction"])
ACTIVE_RUNS = Gauge("asteros_active_runs", "Runs executing now.", multiprocess_mode="livesum")
EVENTS = Counter("asteros_events_total", "Run events written.")
AGENTS = Gauge("asteros_agents", "Registered agents.", multiprocess_mode="liveall")


def run_started(run: Any) -> None:
    ACTIVE_RUNS.inc()
    if run.started_at and run.created_at and run.attempts <= 1:
        RUN_QUEUE.observe(max(0.0, (run.started_at - run.created_at).total_seconds()))


def run_left() -> None:
    ACTIVE_RUNS.dec()


def run_finished(run: Any, result: Any) -> None:
    RUNS.labels(run.kind, run.status).inc()
    if run.started_at:
        RUN_DURATION.labels(run.kind).observe(max(0.0, (timezone.now() - run.started_at).total_seconds()))
    if result is not None and run.kind == "agent":
        if result.input_tokens:
            TOKENS.labels(run.target, "input").inc(result.input_tokens)
        if result.output_tokens:
            TOKENS.labels(run.target, "output").inc(result.output_tokens)


def events_written(count: int) -> None:
    EVENTS.inc(count)
