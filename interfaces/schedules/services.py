"""Schedules' services: validation, the ticks due now, firing them exactly once, run now, the
Celery beat rows that wake the fire task, the embedded beat and the scheduler's status.

Exactly once: Celery beat (``DatabaseScheduler``) only wakes the task ``asteros.schedules.fire``
with a schedule's name. ``fire`` locks the schedule's row, computes the ticks of its grid after
``last_tick_at`` up to now, applies the missed policy, starts one run per tick with the caller
``schedule:<name>`` and the tick instant as idempotency key, and advances ``last_tick_at``, all in
one transaction. Two beats, a beat restarted mid-tick or a late wake-up find the ticks already
handled; and the unique (caller, idempotency key) of runs holds even without the lock.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from cosmos.models import Run
from cosmos.services.errors import NotFound, ServiceError
from cosmos.services.runs import start_run
from interfaces.webhooks.services import emit_schedule_failed

from .models import MissedPolicy, Schedule
from .ticks import CronError, cron_times, interval_times, parse_cron

logger = logging.getLogger(__name__)

FIRE_TASK = "asteros.schedules.fire"
PERIODIC_TASK_PREFIX = "asteros-schedule:"
GRACE_SECONDS = 60  # a tick later than this (or one interval, if longer) is missed
# Missed ticks older than this are never looked at (a schedule disabled for a year wakes up fast).
MAX_LOOKBACK = timedelta(days=31)
BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


# --- the grid


def grace(schedule: Schedule) -> timedelta:
    return timedelta(seconds=max(GRACE_SECONDS, schedule.interval_seconds or 0))


def _times_after(schedule: Schedule, after: datetime):
    if schedule.cron:
        return cron_times(parse_cron(schedule.cron), schedule.timezone, after)
    return interval_times(schedule.interval_seconds, schedule.start_at, after)


def ticks_after(schedule: Schedule, after: datetime):
    """The schedule's ticks strictly after ``after``, within its start and end dates, in order."""
    if schedule.start_at and after < schedule.start_at:
        after = schedule.start_at - timedelta(microseconds=1)
    for tick in _times_after(schedule, after):
        if schedule.end_at and tick > schedule.end_at:
            return
        yield tick


def next_fire_times(schedule: Schedule, n: int = 5, now: datetime | None = None) -> list[datetime]:
    """The next ``n`` ticks after now (after the last tick handled, if that is later); none when
    disabled or ended."""
    if not schedule.enabled or not (schedule.cron or schedule.interval_seconds):
        return []
    now = now or timezone.now()
    after = max(now, schedule.last_tick_at) if schedule.last_tick_at else now
    try:
        return list(islice(ticks_after(schedule, after), n))
    except CronError:
        return []


@dataclass
class Plan:
    """What one wake-up does: the ticks to fire, the missed ticks dropped, the new last tick."""

    fire: list[datetime] = field(default_factory=list)
    dropped: int = 0
    last: datetime | None = None


def plan_ticks(schedule: Schedule, now: datetime) -> Plan:
    """The ticks due at ``now`` after the last one handled, with the missed policy applied.

    A tick more than the grace late is missed. ``skip`` drops the missed ticks but the latest
    tick due; ``catch_up`` fires the latest ``catch_up_limit`` missed ones. Ticks within the
    grace all fire. The first ticks of a new schedule are those after it was created."""
    after = schedule.last_tick_at or schedule.created_at or now
    after = max(after, now - MAX_LOOKBACK)
    if schedule.interval_seconds and schedule.missed_policy == MissedPolicy.SKIP:
        # Only the ticks within the grace and the latest missed one can fire: skip the rest fast.
        after = max(after, now - grace(schedule) - timedelta(seconds=2 * schedule.interval_seconds))
    elif schedule.interval_seconds:
        lookback = grace(schedule) + timedelta(seconds=(schedule.catch_up_limit + 2) * schedule.interval_seconds)
        after = max(after, now - lookback)
    limit = 1 if schedule.missed_policy == MissedPolicy.SKIP else schedule.catch_up_limit
    missed: deque[datetime] = deque(maxlen=limit)
    on_time: list[datetime] = []
    seen_missed = 0
    late = now - grace(schedule)
    for tick in ticks_after(schedule, after):
        if tick > now:
            break
        if tick < late:
            missed.append(tick)
            seen_missed += 1
        else:
            on_time.append(tick)
    plan = Plan()
    if schedule.missed_policy == MissedPolicy.SKIP:
        plan.fire = on_time or list(missed)
        plan.dropped = seen_missed - (0 if on_time else len(missed))
    else:
        plan.fire = [*missed, *on_time]
        plan.dropped = seen_missed - len(missed)
    all_handled = [*missed, *on_time]
    plan.last = all_handled[-1] if all_handled else None
    return plan


# --- firing


def tick_key(tick: datetime) -> str:
    """A tick's idempotency key: the instant, ISO 8601 in UTC (``2026-12-07T09:00:00+00:00``)."""
    return tick.astimezone(UTC).isoformat()


@dataclass
class FireReport:
    schedule: str
    started: list[str] = field(default_factory=list)  # run ids
    failed: list[str] = field(default_factory=list)  # tick keys
    dropped: int = 0


def fire(name: str, now: datetime | None = None) -> FireReport:
    """Start the runs of the ticks due now (the fire task's body; safe to call any number of
    times, from any number of processes, at once)."""
    report = FireReport(name)
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(pk=name).first()
        if schedule is None or not schedule.enabled:
            return report
        plan = plan_ticks(schedule, now or timezone.now())
        report.dropped = plan.dropped
        if plan.last is None:
            return report
        for tick in plan.fire:
            run = _start_tick(schedule, tick)
            if run is None:
                report.failed.append(tick_key(tick))
            else:
                report.started.append(str(run.id))
                schedule.last_run_id = run.id
        schedule.last_tick_at = plan.last
        Schedule.objects.filter(pk=schedule.pk).update(
            last_tick_at=schedule.last_tick_at,
            last_run_id=schedule.last_run_id,
            last_error=schedule.last_error,
            last_error_at=schedule.last_error_at,
        )
    if plan.dropped:
        logger.info("schedule %s: %d missed tick(s) dropped (%s)", name, plan.dropped, schedule.missed_policy)
    return report


def _start_tick(schedule: Schedule, tick: datetime) -> Run | None:
    key = tick_key(tick)
    try:
        return _start(schedule, key, {"schedule": schedule.pk, "tick": key})
    except (ServiceError, ValidationError) as exc:
        error = {
            "code": getattr(exc, "code", None) or "invalid",
            "message": getattr(exc, "message", None) or "; ".join(getattr(exc, "messages", [str(exc)])),
            "tick": key,
        }
        schedule.last_error = error
        schedule.last_error_at = timezone.now()
        logger.warning("schedule %s: the tick %s could not start its run: %s", schedule.pk, key, error["message"])
        emit_schedule_failed(schedule.pk, schedule.name, schedule.kind, schedule.target, tick, error)
        return None


def run_now(name: str, *, caller: str = "") -> Run:
    """Start a run of the schedule at once, outside its grid (the admin's and the API's "run now")."""
    schedule = Schedule.objects.filter(pk=name).first()
    if schedule is None:
        raise NotFound(f"Schedule {name!r} does not exist.")
    return _start(schedule, f"now:{uuid.uuid4()}", {"schedule": schedule.pk, "tick": None, "run_now_by": caller})


def _start(schedule: Schedule, idempotency_key: str, metadata: dict) -> Run:
    """A run of the schedule's target, owned by the schedule (its caller), keyed by its tick."""
    run, _ = start_run(
        schedule.kind,
        schedule.target,
        schedule.input,
        origin="schedule",
        caller=schedule.run_caller,
        idempotency_key=idempotency_key,
        session_id=schedule.session_id or None,
        metadata=metadata,
    )
    return run


def runs_of(schedule: Schedule):
    """The runs the schedule started (its ticks and its "run now"), newest first."""
    return Run.objects.filter(caller=schedule.run_caller).order_by("-created_at")


# --- Celery beat's rows: what wakes the fire task


def periodic_task_name(name: str) -> str:
    return f"{PERIODIC_TASK_PREFIX}{name}"


def sync_periodic_task(schedule: Schedule) -> PeriodicTask:
    """Mirror the schedule into the ``PeriodicTask`` beat reads (on every save)."""
    clocks: dict[str, Any] = {"interval": None, "crontab": None, "solar": None, "clocked": None}
    if schedule.cron:
        minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
        spec = {
            "minute": minute,
            "hour": hour,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
            "day_of_week": day_of_week,
            "timezone": str(schedule.timezone),
        }
        clocks["crontab"] = CrontabSchedule.objects.filter(**spec).first() or CrontabSchedule.objects.create(**spec)
    else:
        spec = {"every": schedule.interval_seconds, "period": IntervalSchedule.SECONDS}
        clocks["interval"] = IntervalSchedule.objects.filter(**spec).first() or IntervalSchedule.objects.create(**spec)
    task, _ = PeriodicTask.objects.update_or_create(
        name=periodic_task_name(schedule.pk),
        defaults={
            **clocks,
            "task": FIRE_TASK,
            "args": json.dumps([schedule.pk]),
            "enabled": schedule.enabled,
            "start_time": schedule.start_at,
            # Beat stops waking it a grace after the end (the last tick still needs its wake-up).
            # Without an end, a wake-up no worker took within the grace is dropped: the next
            # one does its work (beat takes one of the two settings, not both).
            "expires": schedule.end_at + grace(schedule) if schedule.end_at else None,
            "expire_seconds": None if schedule.end_at else int(grace(schedule).total_seconds()),
            "description": f"Wakes the schedule {schedule.pk} (edit the schedule, not this row).",
        },
    )
    return task


def remove_periodic_task(name: str) -> None:
    for task in PeriodicTask.objects.filter(name=periodic_task_name(name)):
        task.delete()  # one by one: beat hears of each delete (PeriodicTasks.changed)


# --- the scheduler in this deployment


def scheduler_mode() -> str:
    options = settings.ASTEROS
    if not options.enable_scheduler:
        return "off"
    return "celery beat (distributed)" if options.distributed else "embedded beat"


def scheduler_status(*, read_database: bool = True) -> dict:
    """For /health: on or off, how, and when beat last ran a task (as of its last sync). Without
    ``read_database`` (the database check failed) only what needs no query."""
    options = settings.ASTEROS
    status: dict[str, Any] = {
        "enabled": options.enable_scheduler,
        "mode": "off" if not options.enable_scheduler else ("distributed" if options.distributed else "embedded"),
    }
    if not options.enable_scheduler:
        return status
    if not options.distributed:
        status["embedded_beat_running"] = embedded_beat_started()
    if not read_database:
        return status
    try:
        last_beat = PeriodicTask.objects.aggregate(last=Max("last_run_at"))["last"]
        last_tick = Schedule.objects.aggregate(last=Max("last_tick_at"))["last"]
        status["schedules"] = Schedule.objects.filter(enabled=True).count()
    except Exception as exc:  # the database check reports the database; this never fails /health
        status["error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
        return status
    status["last_beat_at"] = last_beat.isoformat() if last_beat else None
    status["last_tick_at"] = last_tick.isoformat() if last_tick else None
    return status


_beat_lock = threading.Lock()
_beat = None


def start_embedded_beat():
    """Embedded mode: Celery beat (``DatabaseScheduler``) on a thread of the serving process, once.
    A no-op in distributed mode (``celery -A asteros_site beat`` runs it) or with the scheduler off."""
    global _beat
    options = settings.ASTEROS
    if options.distributed or not options.enable_scheduler:
        return None
    with _beat_lock:
        if _beat is not None:
            return _beat
        from celery import current_app
        from celery.beat import EmbeddedService

        _beat = EmbeddedService(current_app, thread=True, scheduler_cls=BEAT_SCHEDULER)
        _beat.start()
        logger.info("embedded beat started")
        return _beat


def embedded_beat_started() -> bool:
    return _beat is not None
