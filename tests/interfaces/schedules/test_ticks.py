"""The grid of ticks and the missed policies: pure computations on a schedule's fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from interfaces.schedules.models import MissedPolicy, Schedule
from interfaces.schedules.services import next_fire_times, plan_ticks, tick_key, ticks_after
from interfaces.schedules.ticks import CronError, cron_times, interval_times, parse_cron

PARIS = ZoneInfo("Europe/Paris")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def schedule(**fields) -> Schedule:
    """An unsaved schedule: the grid needs no database."""
    defaults = {"name": "s", "kind": "agent", "target": "a", "created_at": at(2026, 1, 1), "enabled": True}
    return Schedule(**(defaults | fields))


def first(iterator, n: int) -> list[datetime]:
    return list(islice(iterator, n))


# --- cron


def test_cron_fields_are_read_in_the_schedules_timezone():
    times = first(cron_times(parse_cron("30 9 * * mon-fri"), PARIS, at(2026, 1, 2, 12)), 3)
    # Friday Jan 2 09:30 has passed; Monday, Tuesday, Wednesday at 09:30 Paris (UTC+1 in winter)
    assert times == [at(2026, 1, 5, 8, 30), at(2026, 1, 6, 8, 30), at(2026, 1, 7, 8, 30)]


def test_a_time_skipped_by_daylight_saving_does_not_fire():
    # Paris, March 29 2026: 02:00 -> 03:00; 02:30 does not exist that day.
    times = first(cron_times(parse_cron("30 2 * * *"), PARIS, at(2026, 3, 27)), 3)
    assert times == [at(2026, 3, 27, 1, 30), at(2026, 3, 28, 1, 30), at(2026, 3, 30, 0, 30)]


def test_a_time_repeated_by_daylight_saving_fires_once():
    # Paris, October 25 2026: 03:00 -> 02:00; 02:30 happens twice (00:30 and 01:30 UTC).
    times = first(cron_times(parse_cron("30 * * * *"), PARIS, at(2026, 10, 24, 23, 45)), 3)
    assert times == [at(2026, 10, 25, 0, 30), at(2026, 10, 25, 2, 30), at(2026, 10, 25, 3, 30)]


def test_summer_time_moves_the_utc_instant():
    winter, summer = first(cron_times(parse_cron("0 9 1 1,7 *"), PARIS, at(2026, 1, 1)), 2)
    assert (winter, summer) == (at(2026, 1, 1, 8), at(2026, 7, 1, 7))


def test_steps_ranges_and_names():
    times = first(cron_times(parse_cron("*/20 8-9 * jan *"), ZoneInfo("UTC"), at(2026, 1, 1)), 7)
    assert [t.strftime("%H:%M") for t in times] == ["08:00", "08:20", "08:40", "09:00", "09:20", "09:40", "08:00"]


def test_both_day_fields_must_match():
    # The 13th that is a Friday (as Celery reads the two fields: both).
    times = first(cron_times(parse_cron("0 0 13 * fri"), ZoneInfo("UTC"), at(2026, 1, 1)), 2)
    assert [t.date().isoformat() for t in times] == ["2026-02-13", "2026-03-13"]


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "* * * * * *", "61 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * funday", "0 0 30 2 *"],
)
def test_bad_cron_expressions_are_refused(expression):
    with pytest.raises(CronError):
        parse_cron(expression)


# --- interval


def test_interval_ticks_sit_on_a_grid_from_the_epoch_or_the_start():
    assert first(interval_times(60, None, at(2026, 1, 1, 0, 0, 30)), 2) == [at(2026, 1, 1, 0, 1), at(2026, 1, 1, 0, 2)]
    start = at(2026, 1, 1, 0, 0, 7)
    assert first(interval_times(10, start, at(2025, 1, 1)), 2) == [start, start + timedelta(seconds=10)]
    assert first(interval_times(10, start, start), 1) == [start + timedelta(seconds=10)]


def test_start_and_end_bound_the_ticks():
    s = schedule(interval_seconds=3600, start_at=at(2026, 1, 1, 5), end_at=at(2026, 1, 1, 7, 30))
    assert list(ticks_after(s, at(2025, 1, 1))) == [at(2026, 1, 1, 5), at(2026, 1, 1, 6), at(2026, 1, 1, 7)]


def test_next_fire_times():
    s = schedule(cron="0 12 * * *", timezone=PARIS)
    # Noon in Paris is 10:00 UTC in summer; June 1st's has passed at 10:30 UTC.
    assert next_fire_times(s, 2, now=at(2026, 6, 1, 10, 30)) == [at(2026, 6, 2, 10), at(2026, 6, 3, 10)]
    assert next_fire_times(schedule(cron="0 12 * * *", enabled=False), now=at(2026, 6, 1)) == []
    ended = schedule(interval_seconds=60, end_at=at(2026, 1, 1))
    assert next_fire_times(ended, now=at(2026, 6, 1)) == []


def test_the_tick_key_is_the_instant_in_utc():
    assert tick_key(datetime(2026, 3, 1, 10, 0, tzinfo=PARIS)) == "2026-03-01T09:00:00+00:00"


# --- the missed policies


def test_ticks_within_the_grace_all_fire_and_the_last_one_is_remembered():
    s = schedule(interval_seconds=1, last_tick_at=at(2026, 1, 1, 0, 0, 0))
    plan = plan_ticks(s, at(2026, 1, 1, 0, 0, 3, 500000))
    assert plan.fire == [at(2026, 1, 1, 0, 0, 1), at(2026, 1, 1, 0, 0, 2), at(2026, 1, 1, 0, 0, 3)]
    assert plan.last == at(2026, 1, 1, 0, 0, 3) and plan.dropped == 0


def test_nothing_is_due_twice():
    s = schedule(interval_seconds=60, last_tick_at=at(2026, 1, 1, 0, 1))
    assert plan_ticks(s, at(2026, 1, 1, 0, 1, 59)).fire == []


def test_skip_keeps_only_the_latest_missed_tick():
    s = schedule(cron="0 * * * *", missed_policy=MissedPolicy.SKIP, last_tick_at=at(2026, 1, 1, 0, 0))
    plan = plan_ticks(s, at(2026, 1, 1, 10, 5))  # every tick is more than the 60 s grace late
    assert plan.fire == [at(2026, 1, 1, 10)] and plan.last == at(2026, 1, 1, 10)
    assert plan.dropped == 9


def test_skip_fires_the_ticks_on_time_and_drops_the_missed_ones():
    s = schedule(cron="* * * * *", missed_policy=MissedPolicy.SKIP, last_tick_at=at(2026, 1, 1, 0, 0))
    plan = plan_ticks(s, at(2026, 1, 1, 0, 10, 30))
    assert plan.fire == [at(2026, 1, 1, 0, 10)]  # 00:09 is 90 s late: missed
    assert plan.dropped == 9 and plan.last == at(2026, 1, 1, 0, 10)


def test_an_intervals_grace_is_one_interval_when_longer_than_60_seconds():
    s = schedule(interval_seconds=600, missed_policy=MissedPolicy.SKIP, last_tick_at=at(2026, 1, 1, 0, 0))
    plan = plan_ticks(s, at(2026, 1, 1, 0, 29))
    assert plan.fire == [at(2026, 1, 1, 0, 20)] and plan.dropped == 1  # 00:10 is 19 min late


def test_catch_up_fires_the_latest_missed_ticks_up_to_the_limit():
    s = schedule(
        cron="0 * * * *",
        missed_policy=MissedPolicy.CATCH_UP,
        catch_up_limit=3,
        last_tick_at=at(2026, 1, 1, 0, 0),
    )
    plan = plan_ticks(s, at(2026, 1, 1, 10, 0, 5))
    assert plan.fire == [at(2026, 1, 1, 7), at(2026, 1, 1, 8), at(2026, 1, 1, 9), at(2026, 1, 1, 10)]
    assert plan.dropped == 6 and plan.last == at(2026, 1, 1, 10)


def test_a_new_schedule_starts_after_its_creation_and_not_before_its_start():
    s = schedule(interval_seconds=10, created_at=at(2026, 1, 1, 0, 0, 5))
    assert plan_ticks(s, at(2026, 1, 1, 0, 0, 21)).fire == [at(2026, 1, 1, 0, 0, 10), at(2026, 1, 1, 0, 0, 20)]
    later = schedule(interval_seconds=10, created_at=at(2026, 1, 1), start_at=at(2026, 1, 1, 0, 0, 15))
    assert plan_ticks(later, at(2026, 1, 1, 0, 0, 14)).fire == []
    assert plan_ticks(later, at(2026, 1, 1, 0, 0, 26)).fire == [at(2026, 1, 1, 0, 0, 15), at(2026, 1, 1, 0, 0, 25)]


def test_no_tick_after_the_end():
    s = schedule(interval_seconds=10, created_at=at(2026, 1, 1), end_at=at(2026, 1, 1, 0, 0, 20))
    plan = plan_ticks(s, at(2026, 1, 1, 0, 0, 45))
    assert plan.fire == [at(2026, 1, 1, 0, 0, 10), at(2026, 1, 1, 0, 0, 20)]
