"""The Agent Protocol's crons as schedules (``interfaces.schedules``): a cron is a ``Schedule``
with a cron expression (read in UTC), its assistant's kind and id, the run input, and the thread
as the schedule's session (none: a new session per tick). Beat fires it like any schedule,
exactly once per tick, through the run service. Runs ORM queries: call through ``db_call``.

A cron made here is named ``ap-<hex>`` (its ``cron_id``); search and delete see every schedule
with a cron expression, whichever door made it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cosmos.kinds import find_kind
from cosmos.services.errors import NotFound
from interfaces.agent_protocol.services import (
    MAX_PAGE,
    Unprocessable,
    as_object,
    assistant_id_of,
    check_assistant_access,
    iso,
    page_of,
    resolve_assistant,
    run_input_of,
    session_of,
    sort_of,
)
from interfaces.schedules.models import Schedule
from interfaces.schedules.services import next_fire_times

PREFIX = "ap-"


def cron_json(schedule: Schedule) -> dict:
    upcoming = next_fire_times(schedule, 1)
    return {
        "cron_id": schedule.name,
        "assistant_id": assistant_id_of(schedule.kind, schedule.target),
        "thread_id": schedule.session_id or None,
        "schedule": schedule.cron,
        "end_time": iso(schedule.end_at),
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
        "payload": {"input": schedule.input},
        "user_id": schedule.caller or None,
        "next_run_date": iso(upcoming[0]) if upcoming else None,
        "metadata": {"description": schedule.description} if schedule.description else {},
        "enabled": schedule.enabled,
    }


def _end_time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise Unprocessable("end_time must be an ISO 8601 date and time.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, timezone.UTC)


def create_cron(thread_id: str | None, body: Any, *, caller: str, principal: Any) -> dict:
    body = as_object(body)
    kind, row = resolve_assistant(body.get("assistant_id"))
    check_assistant_access(principal, kind, str(row.pk))
    expression = body.get("schedule")
    if not isinstance(expression, str) or not expression.strip():
        raise Unprocessable("schedule must be a cron expression of five fields, e.g. '0 9 * * *' (UTC).")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Unprocessable("enabled must be true or false.")
    if thread_id is not None:
        session_of(thread_id)
    schedule = Schedule(
        name=f"{PREFIX}{uuid.uuid4().hex[:24]}",
        description="Agent Protocol cron",
        kind=kind.name,
        target=str(row.pk),
        cron=expression,
        input=run_input_of(body.get("input"), []),
        session_id=thread_id or "",
        enabled=enabled,
        end_at=_end_time(body.get("end_time")),
        caller=caller,
    )
    try:
        schedule.full_clean()
    except ValidationError as exc:
        problems = exc.message_dict
        field = next(iter(problems))
        name = {"cron": "schedule", "end_at": "end_time"}.get(field, field)
        raise Unprocessable(f"{name}: {' '.join(problems[field])}", details=problems) from None
    schedule.save()
    return cron_json(schedule)


def _crons(body: dict):
    crons = Schedule.objects.exclude(cron="")
    assistant_id = body.get("assistant_id")
    if assistant_id is not None:
        kind, row = resolve_assistant(assistant_id)
        crons = crons.filter(kind=kind.name, target=str(row.pk))
    thread_id = body.get("thread_id")
    if thread_id is not None:
        if not isinstance(thread_id, str):
            raise Unprocessable("thread_id must be a string.")
        crons = crons.filter(session_id=thread_id)
    enabled = body.get("enabled")
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise Unprocessable("enabled must be true or false.")
        crons = crons.filter(enabled=enabled)
    return crons


def search_crons(body: Any) -> list[dict]:
    body = as_object(body)
    limit, offset = page_of(body)
    sort_by, reverse = sort_of(
        body,
        ("cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"),
        "created_at",
    )
    shown = [cron_json(s) for s in _crons(body).order_by("name")[: 10 * MAX_PAGE] if find_kind(s.kind)]
    shown.sort(key=lambda c: str(c.get(sort_by) or ""), reverse=reverse)
    return shown[offset : offset + limit]


def count_crons(body: Any) -> int:
    return _crons(as_object(body)).count()


def delete_cron(cron_id: str) -> None:
    deleted, _ = Schedule.objects.filter(name=cron_id).exclude(cron="").delete()
    if not deleted:
        raise NotFound(f"No cron {cron_id!r}.")
