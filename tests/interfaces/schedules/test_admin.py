"""The schedules' admin: next fire times on the list and the change page, "Run now", the runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from cosmos.models import Agent, Run
from interfaces.schedules import services
from interfaces.schedules.models import Schedule
from tests.factories import make_agent, make_schedule

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:schedules_schedule_changelist"


def test_the_list_shows_the_next_fire_and_the_last_error(staff_client):
    schedule = make_schedule("daily", cron="0 12 * * *", timezone="Europe/Paris")
    Schedule.objects.filter(pk="daily").update(last_error={"code": "not_found", "message": "No agent 'x'."})
    page = staff_client.get(reverse(CHANGELIST)).content.decode()
    next_fire = services.next_fire_times(schedule, 1)[0]
    assert "cron 0 12 * * * (Europe/Paris)" in page and "No agent &#x27;x&#x27;." in page
    assert next_fire.isoformat() in page and next_fire.astimezone(schedule.timezone).hour == 12


def test_the_change_page_lists_the_next_fire_times_and_links_to_the_runs(staff_client):
    schedule = make_schedule("hourly", interval_seconds=3600)
    services.run_now(schedule.pk)
    page = staff_client.get(reverse("admin:schedules_schedule_change", args=["hourly"])).content.decode()
    for tick in services.next_fire_times(schedule):
        assert tick.isoformat() in page
    runs_url = reverse("admin:cosmos_run_changelist") + "?caller=" + quote("schedule:hourly")
    assert runs_url.replace("&", "&amp;") in page and "1 run(s) of this schedule" in page
    listed = staff_client.get(runs_url)
    assert listed.status_code == 200 and str(Run.objects.get().id) in listed.content.decode()


def test_run_now_starts_a_run_of_each_selected_schedule(staff_client):
    make_schedule("first")
    make_schedule("second")
    broken = make_schedule("broken")
    Agent.objects.filter(pk=broken.target).delete()
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "run_now", "_selected_action": ["first", "second", "broken"]}
    )
    assert response.status_code == 302
    runs = Run.objects.order_by("caller")
    assert [run.caller for run in runs] == ["schedule:first", "schedule:second"]
    assert all(run.origin == "schedule" and run.idempotency_key.startswith("now:") for run in runs)
    notes = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("broken" in note and "No agent" in note for note in notes), notes
    assert sum("started run" in note for note in notes) == 2


def test_a_schedule_made_in_the_admin_is_validated_and_mirrored(staff_client):
    agent = make_agent()
    form = {
        "name": "made-here",
        "kind": "agent",
        "target": agent.id,
        "input": '{"message": "hi"}',
        "cron": "61 * * * *",
        "timezone": "UTC",
        "missed_policy": "skip",
        "catch_up_limit": "10",
        "enabled": "on",
    }
    refused = staff_client.post(reverse("admin:schedules_schedule_add"), form)
    assert refused.status_code == 200 and "Bad minute field" in refused.content.decode()
    saved = staff_client.post(reverse("admin:schedules_schedule_add"), form | {"cron": "*/5 * * * *"})
    assert saved.status_code == 302
    schedule = Schedule.objects.get(pk="made-here")
    assert schedule.caller == "user:staff"
    assert services.next_fire_times(schedule, 1)[0] - timezone.now() <= timedelta(minutes=5)
    assert schedule.last_tick_at is None and datetime.now(UTC) > schedule.created_at


def test_the_input_is_a_checked_json_editor(staff_client):
    page = staff_client.get(reverse("admin:schedules_schedule_add")).content.decode()
    assert re.search(r'<textarea name="input"[^>]*data-asteros-json="true"', page)
    agent = make_agent()
    data = {
        "name": "nightly",
        "kind": "agent",
        "target": agent.id,
        "input": '{"message": "hi",',
        "interval_seconds": 60,
    }
    response = staff_client.post(reverse("admin:schedules_schedule_add"), data)
    assert response.status_code == 200
    errors = " ".join(str(e) for e in response.context["adminform"].form.errors["input"])
    assert "This is not valid JSON" in errors and "line 1" in errors
    assert not Schedule.objects.exists()
