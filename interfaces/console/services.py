"""What the live dashboard shows and does: run rows, per-target cards, the per-second summary,
and starting, cancelling and retrying runs. Plain functions over the ORM (call them from async
code with ``cosmos.db.db_call``); the views, the websocket consumer and the admin actions call
these and nothing else.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from cosmos.formatting import format_duration
from cosmos.kinds import all_kinds
from cosmos.models import ACTIVE_STATUSES, Interrupt, InterruptStatus, Run, RunStatus, WorkerHeartbeat
from cosmos.services import costs
from cosmos.services import interrupts as interrupt_services
from cosmos.services.errors import Invalid
from cosmos.services.runs import cancel_run, retry_run, start_run
from interfaces.keys import quotas

RECENT_RUNS = 50
ACTIVE_LIMIT = 500
TARGET_LIMIT = 200
RECENT_ERRORS = 3
ERROR_WINDOW = timedelta(hours=24)
SUMMARY_TTL = 0.9  # seconds: every dashboard of a process shares one summary per second
PREVIEW_CHARS = 120
RUN_FIELDS = (
    "id",
    "kind",
    "target",
    "status",
    "origin",
    "parent_id",
    "session_id",
    "created_at",
    "started_at",
    "finished_at",
    "input_tokens",
    "output_tokens",
    "error",
    "input",
    "attempts",
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def input_preview(run_input: Any) -> str:
    """A line of what the run was asked: its message, or the last user message of a conversation."""
    text: Any = ""
    if isinstance(run_input, dict):
        text = run_input.get("message")
        if text is None:
            for message in reversed(run_input.get("messages") or []):
                if isinstance(message, dict) and message.get("role") == "user":
                    text = message.get("content")
                    break
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def run_row(values: dict) -> dict:
    """One run as the dashboard shows it (JSON-ready)."""
    error = values.get("error") or {}
    started, finished = values.get("started_at"), values.get("finished_at")
    return {
        "id": str(values["id"]),
        "kind": values["kind"],
        "target": values["target"],
        "status": values["status"],
        "origin": values["origin"],
        "parent": str(values["parent_id"]) if values.get("parent_id") else None,
        "session": values.get("session_id"),
        "createdAt": _iso(values["created_at"]),
        "startedAt": _iso(started),
        "finishedAt": _iso(finished),
        "durationMs": round((finished - started).total_seconds() * 1000) if started and finished else None,
        "duration": format_duration((finished - started).total_seconds()) if started and finished else None,
        "inputTokens": values["input_tokens"],
        "outputTokens": values["output_tokens"],
        "error": error.get("message") if isinstance(error, dict) else str(error),
        "input": input_preview(values.get("input")),
        "attempts": values.get("attempts", 0),
    }


def with_interrupts(rows: list[dict]) -> list[dict]:
    """Each row with ``interrupts``: the pending interrupts of a waiting run (one query in all)."""
    waiting = [row["id"] for row in rows if row["status"] == RunStatus.INTERRUPTED]
    found: dict[str, list[dict]] = defaultdict(list)
    if waiting:
        pending = Interrupt.objects.filter(run_id__in=waiting, status=InterruptStatus.PENDING).order_by("created_at")
        for interrupt in pending:
            found[str(interrupt.run_id)].append(interrupt_services.describe(interrupt))
    for row in rows:
        row["interrupts"] = found.get(row["id"], [])
    return rows


def run_rows(ids: list[str]) -> list[dict]:
    rows = Run.objects.filter(id__in=ids).values(*RUN_FIELDS)
    return with_interrupts([run_row(row) for row in rows])


def recent_runs() -> list[dict]:
    """The latest top-level runs, and every active run at any level (children included)."""
    recent = list(Run.objects.filter(parent__isnull=True).order_by("-created_at").values(*RUN_FIELDS)[:RECENT_RUNS])
    seen = {row["id"] for row in recent}
    active = Run.objects.filter(status__in=ACTIVE_STATUSES).order_by("-created_at").values(*RUN_FIELDS)[:ACTIVE_LIMIT]
    rows = [run_row(row) for row in recent] + [run_row(row) for row in active if row["id"] not in seen]
    return with_interrupts(rows)


def targets() -> list[dict]:
    """Cards: every agent, star and workflow with its active runs and its recent errors."""
    active: dict[tuple[str, str], int] = {
        (row["kind"], row["target"]): row["n"]
        for row in Run.objects.filter(status__in=ACTIVE_STATUSES).values("kind", "target").annotate(n=Count("id"))
    }
    errors: dict[tuple[str, str], list[dict]] = defaultdict(list)
    failed = (
        Run.objects.filter(status=RunStatus.FAILED, finished_at__gte=timezone.now() - ERROR_WINDOW)
        .order_by("-finished_at")
        .values("id", "kind", "target", "error", "finished_at")[:500]
    )
    for row in failed:
        bucket = errors[(row["kind"], row["target"])]
        if len(bucket) < RECENT_ERRORS:
            error = row["error"] or {}
            bucket.append(
                {
                    "run": str(row["id"]),
                    "message": error.get("message", "") if isinstance(error, dict) else str(error),
                    "at": _iso(row["finished_at"]),
                }
            )
    cards = []
    for run_kind in all_kinds():
        if run_kind.target_model is None:
            continue
        kind, model = run_kind.name, run_kind.target_model
        for row in model.objects.order_by("id").values("id", "name", "description", "enabled")[:TARGET_LIMIT]:
            key = (kind, row["id"])
            cards.append(
                {
                    "kind": kind,
                    "label": run_kind.label,  # the kind's group in the dashboard: "Agents"
                    "id": row["id"],
                    "name": row["name"] or row["id"],
                    "description": row["description"],
                    "enabled": row["enabled"],
                    "active": active.get(key, 0),
                    "errors": errors.get(key, []),
                }
            )
    return cards


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def compute_summary() -> dict:
    """The last minute: runs started, finished, failed, tokens, end-to-end latency; and now: active runs."""
    now = timezone.now()
    minute_ago = now - timedelta(seconds=60)
    by_status = dict(
        Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("status").annotate(n=Count("id")).order_by()
    )
    started = Run.objects.filter(created_at__gte=minute_ago, parent__isnull=True).count()
    finished = list(
        Run.objects.filter(finished_at__gte=minute_ago)
        .values_list("parent_id", "status", "created_at", "finished_at", *costs.TOKEN_FIELDS)
        .order_by()[:10000]
    )
    latencies = [
        max(0.0, (done - created).total_seconds() * 1000)
        for parent, _status, created, done, *_tokens in finished
        if parent is None
    ]
    latency = (
        {
            "avg": round(statistics.fmean(latencies)),
            "p50": round(_percentile(latencies, 0.5)),
            "p95": round(_percentile(latencies, 0.95)),
        }
        if latencies
        else {"avg": None, "p50": None, "p95": None}
    )
    workers = WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(seconds=60)).count()
    return {
        "at": now.isoformat(),
        "activeRuns": sum(by_status.values()),
        "queued": by_status.get(RunStatus.QUEUED, 0),
        "running": by_status.get(RunStatus.RUNNING, 0),
        "runsPerMinute": started,
        "finishedPerMinute": sum(1 for row in finished if row[0] is None),
        "tokensPerMinute": sum(sum(row[4:]) for row in finished),
        "errorsPerMinute": sum(1 for row in finished if row[1] == RunStatus.FAILED),
        "errorsLastHour": Run.objects.filter(
            status=RunStatus.FAILED, finished_at__gte=now - timedelta(hours=1)
        ).count(),
        "latencyMs": latency,
        "workers": workers,
        "usageToday": usage_today(now),
    }


USAGE_ROWS = 5


def _usage_row(row: dict) -> dict:
    return {
        "name": row.get("name") or row["group"],
        "runs": row["runs"],
        "tokens": row["total_tokens"],
        "cachedTokens": row["cache_read_tokens"] + row["cache_write_tokens"],
        "cost": str(row["cost"]),
        "unpricedRuns": row["unpriced_runs"],
    }


def usage_today(now=None) -> dict:
    """The usage panel: tokens and cost of the runs that ended since 00:00 UTC, with the agents
    and API keys that spent most (the same totals as the admin's and ``GET /api/usage``)."""
    since = quotas.utc_midnight(now)
    total = costs.sum_rows(costs.usage_totals("day", since=since))
    return {
        "currency": total["currency"],
        "runs": total["runs"],
        "tokens": total["total_tokens"],
        "cachedTokens": total["cache_read_tokens"] + total["cache_write_tokens"],
        "cost": str(total["cost"]),
        "unpricedRuns": total["unpriced_runs"],
        "agents": [_usage_row(row) for row in costs.usage_totals("agent", since=since, limit=USAGE_ROWS)],
        "keys": [_usage_row(row) for row in quotas.usage_by_key(since=since)[:USAGE_ROWS]],
    }


_summary_lock = threading.Lock()
_summary_cache: tuple[float, dict] | None = None


def summary() -> dict:
    """``compute_summary``, computed at most once per ``SUMMARY_TTL`` per process."""
    global _summary_cache
    with _summary_lock:
        if _summary_cache is not None and time.monotonic() - _summary_cache[0] < SUMMARY_TTL:
            return _summary_cache[1]
        value = compute_summary()
        _summary_cache = (time.monotonic(), value)
        return value


def snapshot() -> dict:
    """Everything a dashboard shows when it connects; then lifecycle changes and summaries follow."""
    return {"runs": recent_runs(), "targets": targets(), "summary": summary()}


HOME_RECENT = 10
HOME_CARDS = 20


def home_overview() -> dict:
    """What the home page shows: how many runs run, wait and pause now, the latest top-level
    runs (with their durations in whole units), and the definitions A2A serves cards for."""
    counts = dict(
        Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("status").annotate(n=Count("id")).order_by()
    )
    recent = [
        run_row(values)
        for values in Run.objects.filter(parent__isnull=True).order_by("-created_at").values(*RUN_FIELDS)[:HOME_RECENT]
    ]
    for row in recent:
        if row["duration"] is None and row["startedAt"]:
            row["duration"] = "running"
    cards = []
    for run_kind in all_kinds():
        if run_kind.target_model is None:
            continue
        for target in run_kind.target_model.objects.filter(enabled=True).order_by("id").values_list("id", flat=True):
            cards.append({"kind": run_kind.name, "collection": run_kind.collection, "id": target})
            if len(cards) >= HOME_CARDS:
                break
    return {
        "running": counts.get(RunStatus.RUNNING, 0),
        "queued": counts.get(RunStatus.QUEUED, 0),
        "paused": counts.get(RunStatus.INTERRUPTED, 0),
        "recent": recent,
        "cards": cards[:HOME_CARDS],
    }


# --- acting


def start(kind: str, target: str, message: Any, *, caller: str, session_id: str | None = None) -> dict:
    run, _ = start_run(kind, target, message, session_id=session_id or None, origin="dashboard", caller=caller)
    return run_rows([str(run.id)])[0]


def cancel(run_id: str) -> dict:
    run = cancel_run(run_id)
    return run_rows([str(run.id)])[0]


def retry(run_id: str, *, caller: str) -> dict:
    return run_rows([str(retry_run(run_id, caller=caller).id)])[0]


def resolve_interrupt(interrupt_id: str, body: Any, *, reviewer: str) -> dict:
    """A decision sent by the dashboard (``{"decision", "arguments"?, "answer"?, "message"?}``):
    the interrupt as every door shows it, and its run's row as it is now."""
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object with a decision.", code="invalid_decision")
    decision = body.get("decision")
    if not isinstance(decision, str) or not decision:
        raise Invalid("'decision' must be approve, reject, edit or answer.", code="invalid_decision")
    message = body.get("message") or ""
    if not isinstance(message, str):
        raise Invalid("'message' must be text.", code="invalid_decision")
    answer = body.get("answer")
    if answer == "":
        answer = None  # an empty box is no answer
    elif isinstance(answer, str):
        answer = interrupt_services.answer_from_text(interrupt_services.get_interrupt(interrupt_id), answer)
    interrupt = interrupt_services.resolve(
        interrupt_id,
        decision,
        arguments=body.get("arguments"),
        answer=answer,
        message=message,
        resolved_by=reviewer,
    )
    return {"interrupt": interrupt_services.describe(interrupt), "run": run_rows([str(interrupt.run_id)])[0]}
