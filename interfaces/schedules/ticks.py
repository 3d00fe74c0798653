"""A schedule's grid of ticks: cron fire times in a timezone, or an interval's multiples.

Pure functions of a schedule's fields and instants (no database), so the units can test them.

Cron: five fields (minute hour day-of-month month day-of-week), parsed by Celery's own
``crontab_parser`` (the parser of the ``CrontabSchedule`` rows that wake the fire task), read
as wall-clock times in the schedule's timezone. As in Celery, a day must match both the
day-of-month and the day-of-week fields. Daylight saving time: a wall-clock time that does not
exist that day (the hour skipped in spring) does not fire; one that happens twice (the hour
repeated in autumn) fires once, at its first occurrence.

Interval: ``anchor + k * interval_seconds``, the anchor being the schedule's start date, or
1970-01-01T00:00:00Z when it has none (so every 60 s fires on whole minutes, UTC).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import ParseException, crontab_parser

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far a cron search looks ahead for the next day that matches (Feb 29 on a Monday: 28 years).
MAX_SEARCH_DAYS = 366 * 30
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron and Celery
    fields: tuple[str, ...]  # the five fields as written (for the CrontabSchedule row)

    def matches_day(self, day: date) -> bool:
        return day.month in self.months and day.day in self.days and day.isoweekday() % 7 in self.weekdays


def parse_cron(expression: str) -> Cron:
    """Five fields, each as cron writes them (``*``, ``*/5``, ``1-5``, ``mon-fri``, ``jan,jul``)."""
    fields = tuple(expression.split())
    if len(fields) != 5:
        raise CronError(
            f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); {expression!r} has "
            f"{len(fields)}."
        )
    limits = ((60, 0), (24, 0), (31, 1), (12, 1), (7, 0))
    parsed = []
    for field, name, (maximum, minimum) in zip(fields, CRON_FIELDS, limits, strict=True):
        try:
            values = crontab_parser(maximum, minimum).parse(field)
        except (ValueError, ParseException) as exc:
            raise CronError(f"Bad {name.replace('_', '-')} field {field!r}: {exc}") from None
        if not values:
            raise CronError(f"The {name.replace('_', '-')} field {field!r} matches nothing.")
        parsed.append(values)
    minutes, hours, days, months, weekdays = parsed
    cron = Cron(
        tuple(sorted(minutes)), tuple(sorted(hours)), frozenset(days), frozenset(months), frozenset(weekdays), fields
    )
    if not any(cron.matches_day(date(2000, 1, 1) + timedelta(days=i)) for i in range(366 * 28)):
        raise CronError(f"{expression!r} never fires (no day matches both day fields and the month).")
    return cron


def _exists(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of this wall-clock time (first occurrence), or None in a DST gap."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def cron_times(cron: Cron, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The fire times strictly after ``after``, in order, as UTC instants."""
    day = after.astimezone(zone).date() - timedelta(days=1)  # a day earlier: offsets may cross midnight
    for _ in range(MAX_SEARCH_DAYS):
        if cron.matches_day(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    instant = _exists(datetime(day.year, day.month, day.day, hour, minute), zone)
                    if instant is not None and instant > after:
                        yield instant
        day += timedelta(days=1)


def interval_times(every: int, anchor: datetime | None, after: datetime) -> Iterator[datetime]:
    """``anchor + k * every`` strictly after ``after``, in order."""
    anchor = anchor or EPOCH
    step = timedelta(seconds=every)
    k = 0 if after < anchor else int((after - anchor) // step) + 1
    while True:
        yield anchor + k * step
        k += 1
