"""Whether a schedule can fire: checked by ``Schedule.clean()``, so by the admin and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from cosmos.kinds import all_kinds, either, find_kind
from cosmos.services.errors import ServiceError
from cosmos.services.runs import normalize_input

from .ticks import CronError, parse_cron

if TYPE_CHECKING:
    from .models import Schedule


def validate_schedule(schedule: Schedule) -> None:
    """Raise ``ValidationError`` (per field) unless the schedule can fire: its target exists, its
    cron parses, exactly one of cron / interval, the end after the start, an input a run takes."""
    errors: dict[str, list[str]] = {}
    kind = find_kind(schedule.kind)
    if kind is None:
        errors["kind"] = [f"Unknown kind {schedule.kind!r}; one of {either(k.name for k in all_kinds())}."]
    elif schedule.target:
        try:
            kind.check_target(schedule.target)
        except ServiceError as exc:
            errors["target"] = [exc.message]
    schedule.cron = " ".join((schedule.cron or "").split())
    if bool(schedule.cron) == (schedule.interval_seconds is not None):
        errors["cron"] = ["Set either a cron expression or an interval in seconds (exactly one)."]
    elif schedule.cron:
        try:
            parse_cron(schedule.cron)
        except CronError as exc:
            errors["cron"] = [str(exc)]
    if schedule.interval_seconds is not None and schedule.interval_seconds < 1:
        errors["interval_seconds"] = ["At least 1 second."]
    if schedule.start_at and schedule.end_at and schedule.end_at <= schedule.start_at:
        errors["end_at"] = ["The end must be after the start."]
    try:
        normalize_input(schedule.input)
    except ServiceError as exc:
        errors["input"] = [exc.message]
    if errors:
        raise ValidationError(errors)
