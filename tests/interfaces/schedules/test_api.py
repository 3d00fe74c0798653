"""``/api/schedules``: create, read, change and delete schedules, run one now, list its runs."""

from __future__ import annotations

import pytest

from cosmos.models import Run
from interfaces.keys.models import APIKey
from interfaces.schedules.models import Schedule
from tests.factories import make_agent, make_schedule
from tests.interfaces.http.conftest import SETTINGS_KEY, assert_error, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    return {
        "reader": APIKey.generate("reader", ["read"])[1],
        "runner": APIKey.generate("runner", ["run"])[1],
        "admin": APIKey.generate("admin", ["admin"])[1],
        "other": APIKey.generate("other", ["admin"], resources=["schedules:someone-else"])[1],
    }


def test_create_read_change_delete(api_client, keys):
    agent = make_agent()
    admin = bearer(keys["admin"])
    body = {
        "name": "morning-report",
        "kind": "agent",
        "target": agent.id,
        "cron": "30 9 * * mon-fri",
        "timezone": "Europe/Paris",
        "input": {"message": "the report"},
        "missed_policy": "catch_up",
        "catch_up_limit": 2,
    }
    created = api_client.post("/api/schedules", body, format="json", **admin)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["timezone"] == "Europe/Paris" and data["enabled"] is True and data["interval_seconds"] is None
    assert len(data["next_fire_times"]) == 5 and all(t.endswith(("+00:00", "Z")) for t in data["next_fire_times"])
    assert data["runs"].endswith("/api/schedules/morning-report/runs") and data["caller"]

    listed = api_client.get("/api/schedules", **bearer(keys["reader"])).json()
    assert [row["name"] for row in listed["results"]] == ["morning-report"]

    changed = api_client.patch(
        "/api/schedules/morning-report", {"cron": "", "interval_seconds": 3600}, format="json", **admin
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["interval_seconds"] == 3600 and changed.json()["cron"] == ""
    renamed = api_client.patch("/api/schedules/morning-report", {"name": "other"}, format="json", **admin)
    assert renamed.json()["name"] == "morning-report"  # the name is the id: set once

    assert api_client.delete("/api/schedules/morning-report", **admin).status_code == 204
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": "no-such-agent"}, "target"),
        ({"kind": "nothing"}, "kind"),
        ({"cron": "every day"}, "cron"),
        ({"cron": "0 9 * * *", "interval_seconds": 60}, "cron"),
        ({"interval_seconds": None}, "cron"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"start_at": "2026-02-01T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"}, "end_at"),
        ({"missed_policy": "sometimes"}, "missed_policy"),
        ({"input": 42}, "input"),
        ({"name": "Has Space"}, "name"),
    ],
)
def test_bad_input_is_a_400_that_says_why(api_client, keys, change, field):
    body = {"name": "bad", "kind": "agent", "target": make_agent().id, "interval_seconds": 60} | change
    response = api_client.post("/api/schedules", body, format="json", **bearer(keys["admin"]))
    details = assert_error(response, 400, "invalid")["details"]
    assert field in details, details
    assert not Schedule.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api_client, keys):
    response = api_client.post("/api/schedules", "{not json", content_type="application/json", **bearer(keys["admin"]))
    assert_error(response, 400)


def test_run_now_and_the_schedules_runs(api_client, keys):
    schedule = make_schedule("nightly", input={"message": "now"})
    started = api_client.post("/api/schedules/nightly/run", **bearer(keys["runner"]))
    assert started.status_code == 202, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert run.caller == schedule.run_caller and run.origin == "schedule"
    assert started["Location"].endswith(f"/api/runs/{run.id}")

    runs = api_client.get("/api/schedules/nightly/runs", **bearer(keys["reader"]))
    assert runs.status_code == 200
    assert [row["id"] for row in runs.json()["results"]] == [str(run.id)]


def test_run_now_of_a_schedule_whose_target_is_gone_is_a_404(api_client, keys):
    schedule = make_schedule("orphan")
    from cosmos.models import Agent

    Agent.objects.filter(pk=schedule.target).delete()
    assert_error(api_client.post("/api/schedules/orphan/run", **bearer(keys["runner"])), 404)
    assert_error(api_client.post("/api/schedules/missing/run", **bearer(keys["runner"])), 404)
    assert not Run.objects.exists()


def test_auth_denied(api_client, keys):
    make_schedule("guarded")
    assert_error(api_client.get("/api/schedules"), 401, "not_authenticated")
    body = {"name": "more", "kind": "agent", "target": make_agent().id, "interval_seconds": 60}
    assert_error(api_client.post("/api/schedules", body, format="json", **bearer(keys["reader"])), 403)
    assert_error(api_client.delete("/api/schedules/guarded", **bearer(keys["runner"])), 403)
    assert_error(api_client.post("/api/schedules/guarded/run", **bearer(keys["reader"])), 403)
    assert_error(api_client.post("/api/schedules/guarded/run", **bearer(keys["other"])), 404)
    assert_error(api_client.get("/api/schedules/guarded/runs"), 401)
    assert Schedule.objects.filter(pk="guarded").exists() and not Run.objects.exists()
