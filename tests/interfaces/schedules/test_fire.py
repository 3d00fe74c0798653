"""Firing a schedule's ticks: one run per tick, whoever fires and however often; failures
recorded and sent as ``schedule.failed`` once per tick; beat's rows kept in step."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from cosmos.models import Agent, Run
from cosmos.services.runs import normalize_input
from interfaces.schedules import services
from interfaces.schedules.models import Schedule
from interfaces.webhooks.models import Delivery, Event, Webhook
from tests.factories import build_schedule, make_agent, make_schedule


def backdate(schedule: Schedule, seconds: float) -> Schedule:
    """As if the schedule was created ``seconds`` ago."""
    Schedule.objects.filter(pk=schedule.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))
    schedule.refresh_from_db()
    return schedule


@pytest.mark.django_db
def test_a_tick_starts_one_run_keyed_by_the_tick():
    schedule = backdate(make_schedule(interval_seconds=1, input={"message": "tick"}), 3.5)
    report = services.fire(schedule.pk)
    runs = list(Run.objects.filter(caller=f"schedule:{schedule.pk}").order_by("idempotency_key"))
    assert len(runs) == len(report.started) in (3, 4)
    assert [r.idempotency_key for r in runs] == [r.metadata["tick"] for r in runs]
    assert all(r.origin == "schedule" and r.kind == "agent" and r.target == schedule.target for r in runs)
    assert all(r.input == normalize_input({"message": "tick"}) for r in runs)  # the schedule's input
    schedule.refresh_from_db()
    assert schedule.last_tick_at.isoformat() == runs[-1].idempotency_key
    # Fired again at once: nothing is due twice.
    assert services.fire(schedule.pk).started == []
    assert Run.objects.filter(caller=f"schedule:{schedule.pk}").count() == len(runs)


@pytest.mark.django_db
def test_a_fixed_session_takes_every_tick():
    schedule = backdate(make_schedule(interval_seconds=1, session_id="nightly"), 2.5)
    services.fire(schedule.pk)
    assert set(Run.objects.filter(caller=schedule.run_caller).values_list("session_id", flat=True)) == {"nightly"}


@pytest.mark.django_db
def test_a_disabled_or_deleted_schedule_fires_nothing():
    schedule = backdate(make_schedule(interval_seconds=1, enabled=False), 3)
    assert services.fire(schedule.pk).started == []
    assert services.fire("no-such-schedule").started == []


@pytest.mark.django_db(transaction=True)
def test_two_firings_at_once_start_each_tick_once():
    schedule = backdate(make_schedule(interval_seconds=1), 5.5)
    count = 8
    barrier = threading.Barrier(count)

    def fire(_n: int):
        barrier.wait(timeout=30)
        try:
            return services.fire(schedule.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        reports = list(pool.map(fire, range(count)))
    started = [run_id for report in reports for run_id in report.started]
    keys = list(Run.objects.filter(caller=schedule.run_caller).values_list("idempotency_key", flat=True))
    assert len(started) == len(set(started)) == len(keys) == len(set(keys)) >= 5


@pytest.mark.django_db(transaction=True)
def test_the_run_key_holds_even_without_the_lock():
    """Two firings that computed the same tick (the lock bypassed): still one run."""
    schedule = backdate(make_schedule(interval_seconds=1), 2.5)
    tick = services.plan_ticks(schedule, timezone.now()).fire[-1]
    first = services._start_tick(schedule, tick)
    second = services._start_tick(schedule, tick)
    assert first.id == second.id
    assert Run.objects.filter(caller=schedule.run_caller, idempotency_key=services.tick_key(tick)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_tick_that_cannot_start_its_run_is_recorded_and_sent_once():
    hook = Webhook.objects.create(name="ops", url="https://hooks.example.com/in", events=[Event.SCHEDULE_FAILED])
    other = Webhook.objects.create(name="runs only", url="https://hooks.example.com/r", events=[Event.RUN_FAILED])
    schedule = backdate(make_schedule(interval_seconds=1), 1.5)
    Agent.objects.filter(pk=schedule.target).delete()
    now = timezone.now()
    report = services.fire(schedule.pk, now=now)
    assert report.started == [] and len(report.failed) >= 1
    schedule.refresh_from_db()
    assert schedule.last_error["code"] == "not_found" and schedule.last_error["tick"] == report.failed[-1]
    deliveries = list(Delivery.objects.filter(event=Event.SCHEDULE_FAILED))
    assert {d.webhook_id for d in deliveries} == {hook.id} and other.id not in {d.webhook_id for d in deliveries}
    assert len(deliveries) == len(report.failed)
    assert sorted(d.payload["data"]["tick"] for d in deliveries) == report.failed
    payload = deliveries[-1].payload
    assert payload["type"] == "schedule.failed" and payload["data"]["error"]["code"] == "not_found"
    assert payload["data"]["schedule"]["id"] == schedule.pk and payload["data"]["target"] == schedule.target
    # Fired again for the same instant (another beat): no tick twice, no second delivery.
    assert services.fire(schedule.pk, now=now).failed == []
    assert Delivery.objects.filter(event=Event.SCHEDULE_FAILED).count() == len(deliveries)


@pytest.mark.django_db
def test_run_now_starts_a_run_linked_to_the_schedule():
    schedule = make_schedule()
    first = services.run_now(schedule.pk, caller="user:ops")
    second = services.run_now(schedule.pk, caller="user:ops")
    assert first.id != second.id
    assert first.caller == schedule.run_caller and first.origin == "schedule"
    assert first.idempotency_key.startswith("now:") and first.metadata["tick"] is None
    assert set(services.runs_of(schedule)) == {first, second}


@pytest.mark.django_db
def test_beats_rows_follow_the_schedule():
    schedule = make_schedule(cron="30 9 * * mon-fri", timezone="Europe/Paris")
    task = PeriodicTask.objects.get(name=f"asteros-schedule:{schedule.pk}")
    assert task.task == "asteros.schedules.fire" and json.loads(task.args) == [schedule.pk] and task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "9", "mon-fri")
    assert str(task.crontab.timezone) == "Europe/Paris" and task.interval is None
    schedule.cron, schedule.interval_seconds, schedule.enabled = "", 5, False
    schedule.end_at = timezone.now() + timedelta(days=1)
    schedule.save()
    task.refresh_from_db()
    assert task.interval.every == 5 and task.crontab is None and not task.enabled
    assert task.expires == schedule.end_at + timedelta(seconds=60)
    schedule.delete()
    assert not PeriodicTask.objects.filter(name=f"asteros-schedule:{schedule.pk}").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"target": "no-such-agent"}, "target"),
        ({"kind": "nothing"}, "kind"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 * * * *", "interval_seconds": 60}, "cron"),
        ({"interval_seconds": None}, "cron"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"start_at": timezone.now(), "end_at": timezone.now() - timedelta(hours=1)}, "end_at"),
        ({"input": 42}, "input"),
        ({"name": "Not A Slug"}, "name"),
    ],
)
def test_a_schedule_that_cannot_fire_is_refused(fields, field):
    target = make_agent().id
    with pytest.raises(ValidationError) as refused:
        build_schedule(**({"target": target} | fields)).full_clean()
    assert field in refused.value.message_dict
