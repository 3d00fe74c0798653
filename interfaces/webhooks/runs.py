"""Run events: a top-level run that ends (succeeded, failed, cancelled) or waits for people.

Two paths write the same deliveries, keyed so that the second finds them written:

- the fast path, ``on_run_changed``: a receiver of ``cosmos.services.leases.run_changed``, sent
  in the process that changed the run, after the commit (the engine sends it from its thread
  pool, off the run loop). With no enabled webhook it costs one cached check and nothing else.
- the backstop, ``sweep_missed`` (every engine, every ``SWEEP_MISSED_SECONDS``): the top-level
  runs that ended or paused in the last ``LOOKBACK`` (and after a webhook was created) and lack
  their delivery, e.g. because the process died between the commit and the signal.

The event key is ``<run id>:<event>`` (for ``run.interrupted`` the ids of the pending
interrupts too: every pause is its own event), so both paths make one delivery per subscription.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cosmos.models import Interrupt, InterruptStatus, Run, RunStatus
from cosmos.services.interrupts import describe
from interfaces.edge.links import run_links

from .models import Delivery, Event, Webhook
from .services import emit, message_id, subscribers

logger = logging.getLogger(__name__)

EVENT_OF_STATUS = {
    RunStatus.SUCCEEDED: Event.RUN_SUCCEEDED,
    RunStatus.FAILED: Event.RUN_FAILED,
    RunStatus.CANCELLED: Event.RUN_CANCELLED,
    RunStatus.INTERRUPTED: Event.RUN_INTERRUPTED,
}
SWEEP_MISSED_SECONDS = 10.0
LOOKBACK = timedelta(minutes=15)
SWEEP_MISSED_BATCH = 500
# How long this process trusts its answer to "is any webhook enabled?"; a save or delete in this
# process forgets it at once, another process's within this time (the sweep covers the gap).
ENABLED_CACHE_SECONDS = 2.0

_enabled_cache: tuple[float, bool] | None = None
_enabled_lock = threading.Lock()


def any_enabled() -> bool:
    """Whether any webhook is enabled: one query every ``ENABLED_CACHE_SECONDS`` at most."""
    global _enabled_cache
    cached = _enabled_cache
    now = time.monotonic()
    if cached is not None and now - cached[0] < ENABLED_CACHE_SECONDS:
        return cached[1]
    with _enabled_lock:
        value = Webhook.objects.filter(enabled=True).exists()
        _enabled_cache = (now, value)
    return value


def forget_enabled(**_kwargs: Any) -> None:
    """Drop the cached answer (a webhook was saved or deleted in this process)."""
    global _enabled_cache
    _enabled_cache = None


def on_run_changed(sender: Any, message: dict, **_kwargs: Any) -> None:
    """The fast path: a run's status change, committed, in this process."""
    if message.get("parent") or message.get("status") not in EVENT_OF_STATUS:
        return
    if not any_enabled():
        return
    run = Run.objects.filter(id=message["id"]).first()
    if run is None or run.parent_id is not None or run.status != message["status"]:
        return  # deleted, or changed again meanwhile (its own signal follows)
    emit_run_event(run)


def occurrence(run: Run) -> tuple[str, str] | None:
    """(event, event key) of a top-level run's current status, or None if it has none."""
    event = EVENT_OF_STATUS.get(run.status)
    if event is None or run.parent_id is not None:
        return None
    key = f"{run.id}:{event}"
    if event == Event.RUN_INTERRUPTED:
        pending = _pending(run).values_list("id", flat=True)
        if not pending:
            return None  # resolved meanwhile: nothing waits any more
        key += ":" + ",".join(sorted(str(interrupt_id) for interrupt_id in pending))
    return event, key


def run_event(run: Run) -> tuple[str, str, dict] | None:
    """(event, event key, data) of a top-level run's current status, or None if it has none."""
    found = occurrence(run)
    return None if found is None else (*found, run_summary(run))


def _pending(run: Run):
    return Interrupt.objects.filter(root_run_id=run.id, status=InterruptStatus.PENDING).order_by("created_at")


def emit_run_event(run: Run, hooks: list[Webhook] | None = None) -> list[Delivery]:
    found = run_event(run)
    if found is None:
        return []
    event, key, data = found
    return emit(
        event,
        data,
        event_key=key,
        kind=run.kind,
        target=run.target,
        run_id=run.id,
        occurred_at=_occurred_at(run),
        hooks=hooks,
    )


def run_summary(run: Run) -> dict:
    """What a run event carries about the run."""
    summary: dict[str, Any] = {
        "id": str(run.id),
        "kind": run.kind,
        "target": run.target,
        "status": run.status,
        "origin": run.origin,
        "session": run.session_id or None,
        "output": run.output,
        "error": run.error,
        "usage": {
            "input_tokens": run.input_tokens,  # the prompts' uncached part
            "output_tokens": run.output_tokens,
            "cache_read_tokens": run.cache_read_tokens,
            "cache_write_tokens": run.cache_write_tokens,
            "total_tokens": run.input_tokens + run.cache_read_tokens + run.cache_write_tokens + run.output_tokens,
            "cost": str(run.cost),  # USD, the run's own model calls (docs/models.md, "Cost")
        },
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }
    if run.status == RunStatus.INTERRUPTED:
        summary["interrupts"] = [describe(interrupt) for interrupt in _pending(run)]
    if settings.ASTEROS.public_url:
        summary["links"] = run_links(None, run.id)
    return summary


def sweep_missed(limit: int = SWEEP_MISSED_BATCH) -> int:
    """Emit what the fast path missed: recent top-level ends and pauses lacking their delivery
    for a subscription that existed then. Returns how many deliveries it wrote."""
    hooks = list(Webhook.objects.filter(enabled=True))
    if not hooks:
        return 0
    now = timezone.now()
    since = max(now - LOOKBACK, min(hook.created_at for hook in hooks))
    ended = Q(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED], finished_at__gte=since)
    paused = Q(status=RunStatus.INTERRUPTED, updated_at__gte=since)
    candidates = Run.objects.filter(parent__isnull=True).filter(ended | paused).order_by("-updated_at")[:limit]
    # Every delivery the candidates should have, by message id; then one query for those written.
    expected: dict[str, tuple[Run, Webhook]] = {}
    for run in candidates:
        found = occurrence(run)
        if found is None:
            continue
        event, key = found
        occurred_at = _occurred_at(run)
        for hook in subscribers(event, run.kind, run.target, hooks):
            if hook.created_at <= occurred_at:
                expected[message_id(hook.pk, key)] = (run, hook)
    written_ids = set()
    wanted = list(expected)
    for start in range(0, len(wanted), SWEEP_MISSED_BATCH):
        chunk = wanted[start : start + SWEEP_MISSED_BATCH]
        written_ids.update(Delivery.objects.filter(message_id__in=chunk).values_list("message_id", flat=True))
    missing: dict[Any, tuple[Run, list[Webhook]]] = {}
    for mid, (run, hook) in expected.items():
        if mid not in written_ids:
            missing.setdefault(run.id, (run, []))[1].append(hook)
    written = 0
    for run, lacking in missing.values():
        written += len(emit_run_event(run, hooks=lacking))
    if written:
        logger.info("webhooks: the sweep emitted missed run events", extra={"deliveries": written})
    return written


def _occurred_at(run: Run) -> datetime:
    return run.finished_at or run.updated_at or timezone.now()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
