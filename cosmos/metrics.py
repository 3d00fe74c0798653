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
# direction: input (uncached), output, cache_read, cache_write. Agents are capped by
# ASTEROS_MAX_AGENTS and models are few: the label sets stay small.
TOKENS = Counter("asteros_tokens_total", "Model tokens, by agent and direction.", ["agent", "direction"])
COST = Counter(
    "asteros_cost_usd_total", "What agent runs' model calls cost (USD, from the price table).", ["agent", "model"]
)
UNPRICED = Counter("asteros_unpriced_runs_total", "Agent runs whose model has no price.", ["agent", "model"])
ACTIVE_RUNS = Gauge("asteros_active_runs", "Runs executing now.", multiprocess_mode="livesum")
EVENTS = Counter("asteros_events_total", "Run events written.")
AGENTS = Gauge("asteros_agents", "Registered agents.", multiprocess_mode="liveall")


DIRECTIONS = ("input", "output", "cache_read", "cache_write")


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
        for direction in DIRECTIONS:
            count = getattr(result, f"{direction}_tokens")
            if count:
                TOKENS.labels(run.target, direction).inc(count)
        if result.model and any(getattr(result, f"{d}_tokens") for d in DIRECTIONS):
            model = f"{result.provider}:{result.model}"
            if result.cost:
                COST.labels(run.target, model).inc(float(result.cost))
            if result.cost_unpriced:
                UNPRICED.labels(run.target, model).inc()


def events_written(count: int) -> None:
    EVENTS.inc(count)
