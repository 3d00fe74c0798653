"""The dashboard's page and services, and the live admin's actions and Run page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cosmos.models import Run, RunStatus
from cosmos.services.errors import Conflict, Invalid
from cosmos.services.runs import retry_run
from interfaces.console import services
from interfaces.keys import quotas
from interfaces.keys.models import APIKey
from tests.factories import add_event, make_agent, make_run, make_star, make_workflow

pytestmark = pytest.mark.django_db


# --- the page


def test_the_page_is_for_staff(django_user_model, staff_client):
    url = reverse("dashboard:index")
    assert Client().get(url).status_code == 302, "anonymous: to the admin login"
    user = django_user_model.objects.create_user(username="plain", password="pw-12345678")
    plain = Client()
    plain.force_login(user)
    assert plain.get(url).status_code == 302, "not staff: to the admin login"
    response = staff_client.get(url + "?run=0eb28b35-26ca-4e0f-9de8-d4fca8b380cb")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ws-dashboard="/ws/dashboard/"' in html and 'data-ws-runs="/ws/runs/"' in html
    assert 'data-initial-run="0eb28b35-26ca-4e0f-9de8-d4fca8b380cb"' in html
    assert '<script src="/dashboard/dashboard.js">' in html and "cdn" not in html.lower()
    assert 'data-initial-run=""' in staff_client.get(url + "?run=<script>").content.decode()


def test_the_script_is_served_by_django(client):
    response = client.get(reverse("dashboard:script"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert "/ws/" not in body.replace("wsUrl", ""), "socket paths come from the page, not hard-coded"
    assert "innerHTML" not in body, "everything is rendered with textContent"


# --- the services


def test_summary_counts_the_last_minute():
    agent = make_agent()
    now = timezone.now()
    make_run(target=agent.id, status=RunStatus.RUNNING)
    make_run(target=agent.id, status=RunStatus.QUEUED)
    done = make_run(target=agent.id, status=RunStatus.SUCCEEDED, input_tokens=10, output_tokens=5)
    failed = make_run(target=agent.id, status=RunStatus.FAILED, error={"code": "x", "message": "broke"})
    old = make_run(target=agent.id, status=RunStatus.SUCCEEDED, input_tokens=1000)
    two_seconds_ago = now - timedelta(seconds=2)
    Run.objects.filter(pk=done.pk).update(created_at=two_seconds_ago, started_at=two_seconds_ago, finished_at=now)
    Run.objects.filter(pk=failed.pk).update(created_at=two_seconds_ago, finished_at=now)
    Run.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=2), finished_at=now - timedelta(hours=2))
    summary = services.compute_summary()
    assert summary["activeRuns"] == 2 and summary["queued"] == 1 and summary["running"] == 1
    assert summary["runsPerMinute"] == 4, "created in the last minute, the old run excluded"
    assert summary["tokensPerMinute"] == 15
    assert summary["errorsPerMinute"] == 1 and summary["errorsLastHour"] == 1
    assert summary["latencyMs"] == {"avg": 2000, "p50": 2000, "p95": 2000}


def test_the_usage_panel_counts_today_by_agent_and_key():
    a, b = make_agent(), make_agent()
    key, _ = APIKey.generate("team key", ["run"])
    now = timezone.now()
    ended = {"status": RunStatus.SUCCEEDED, "finished_at": now}
    make_run(target=a.id, caller=key.caller, input_tokens=10, cache_read_tokens=90, cost=Decimal("0.25"), **ended)
    make_run(target=b.id, output_tokens=5, cost=Decimal("0.05"), cost_unpriced=True, **ended)
    make_run(target=a.id, finished_at=quotas.utc_midnight(now) - timedelta(seconds=1), cost=9, status="succeeded")

    usage = services.compute_summary()["usageToday"]
    assert usage["cost"] == "0.300000" and usage["currency"] == "USD"
    assert usage["runs"] == 2 and usage["tokens"] == 105 and usage["cachedTokens"] == 90
    assert usage["unpricedRuns"] == 1
    assert [(row["name"], row["cost"]) for row in usage["agents"]] == [(a.id, "0.250000"), (b.id, "0.050000")]
    assert usage["keys"] == [
        {"name": "team key", "runs": 1, "tokens": 100, "cachedTokens": 90, "cost": "0.250000", "unpricedRuns": 0}
    ]


def test_cards_and_rows():
    agent = make_agent(name="Helper")
    star = make_star(leader=make_agent())
    make_workflow()
    parent = make_run(kind="star", target=star.id, status=RunStatus.RUNNING)
    child = make_run(target=agent.id, status=RunStatus.RUNNING, parent=parent, input={"message": "  a\n  task  "})
    make_run(target=agent.id, status=RunStatus.FAILED, error={"message": "model down"}, finished_at=timezone.now())
    cards = {(c["kind"], c["id"]): c for c in services.targets()}
    assert cards[("agent", agent.id)]["active"] == 1 and cards[("agent", agent.id)]["name"] == "Helper"
    assert cards[("agent", agent.id)]["errors"][0]["message"] == "model down"
    assert cards[("star", star.id)]["active"] == 1
    assert {"workflow"} <= {kind for kind, _ in cards}
    rows = {row["id"]: row for row in services.recent_runs()}
    assert str(child.id) in rows, "active children are listed (the dashboard nests them)"
    assert rows[str(child.id)]["parent"] == str(parent.id) and rows[str(child.id)]["input"] == "a task"


def test_rows_carry_their_duration_in_whole_units():
    started = timezone.now()
    done = make_run(status=RunStatus.SUCCEEDED, started_at=started, finished_at=started + timedelta(seconds=123.4))
    running = make_run(status=RunStatus.RUNNING, started_at=started)
    rows = {row["id"]: row for row in services.run_rows([str(done.id), str(running.id)])}
    assert rows[str(done.id)]["durationMs"] == 123400
    assert rows[str(done.id)]["duration"] == "2 min 3 s"
    assert rows[str(running.id)]["duration"] is None  # the page ticks it, by the same rules


def test_retry_starts_a_new_run_with_the_same_input():
    agent = make_agent()
    failed = make_run(target=agent.id, status=RunStatus.FAILED, input={"message": "again"}, metadata={"k": 1})
    new = retry_run(failed.id, caller="user:x")
    assert new.pk != failed.pk and new.input == {"message": "again"} and new.status == RunStatus.QUEUED
    assert new.metadata == {"k": 1, "retry_of": str(failed.id)}
    with pytest.raises(Conflict):
        retry_run(make_run(target=agent.id, status=RunStatus.SUCCEEDED).id, caller="user:x")
    child = make_run(target=agent.id, status=RunStatus.FAILED, parent=failed)
    with pytest.raises(Invalid):
        retry_run(child.id, caller="user:x")


# --- the live admin


def test_run_with_an_input_from_the_agents_list(staff_client):
    agents = [make_agent(), make_agent()]
    url = reverse("admin:cosmos_agent_changelist")
    selected = {"action": "run_with_input", ACTION_CHECKBOX_NAME: [a.pk for a in agents]}
    page = staff_client.post(url, selected)
    assert page.status_code == 200 and b"One agent run will start for each of" in page.content
    response = staff_client.post(url, {**selected, "apply": "1", "input": "hello admin", "session": ""})
    assert response.status_code == 302
    runs = Run.objects.filter(origin="admin")
    assert sorted(runs.values_list("target", flat=True)) == sorted(a.pk for a in agents)
    assert {tuple(r.input.items()) for r in runs} == {(("message", "hello admin"),)}
    assert "Started 2 run(s)" in next(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("model", ["star", "workflow"])
def test_stars_and_workflows_have_the_action_too(staff_client, model):
    target = make_star(leader=make_agent()) if model == "star" else make_workflow()
    url = reverse(f"admin:{'stars' if model == 'star' else 'workflows'}_{model}_changelist")
    response = staff_client.post(
        url,
        {"action": "run_with_input", ACTION_CHECKBOX_NAME: [target.pk], "apply": "1", "input": '{"message": "go"}'},
    )
    assert response.status_code == 302
    run = Run.objects.get(origin="admin")
    assert (run.kind, run.target, run.input) == (model, target.pk, {"message": "go"})


def test_retry_and_cancel_actions_on_runs(staff_client):
    agent = make_agent()
    failed = make_run(target=agent.id, status=RunStatus.FAILED)
    succeeded = make_run(target=agent.id, status=RunStatus.SUCCEEDED)
    url = reverse("admin:cosmos_run_changelist")
    response = staff_client.post(url, {"action": "retry_runs", ACTION_CHECKBOX_NAME: [failed.pk, succeeded.pk]})
    assert response.status_code == 302
    retried = Run.objects.get(metadata__retry_of=str(failed.id))
    assert retried.status == RunStatus.QUEUED
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Retried as new run(s)" in t for t in texts) and any("Not retried" in t for t in texts)
    response = staff_client.post(url, {"action": "cancel_runs", ACTION_CHECKBOX_NAME: [retried.pk]})
    retried.refresh_from_db()
    assert retried.status == RunStatus.CANCELLED


def test_the_run_page_shows_children_usage_and_the_live_view(staff_client):
    agent = make_agent()
    parent = make_run(kind="star", target="team", status=RunStatus.RUNNING, events=["RUN_STARTED"])
    make_run(target=agent.id, parent=parent, status=RunStatus.SUCCEEDED, input_tokens=7, output_tokens=3)
    add_event(parent, {"type": "TEXT_MESSAGE_START", "messageId": "m"})
    html = staff_client.get(reverse("admin:cosmos_run_change", args=[parent.pk])).content.decode()
    assert f'href="/dashboard/?run={parent.pk}"' in html and "Watch live" in html
    assert 'id="asteros-children"' in html and "7 / 3" in html
    assert 'data-seq="2"' in html, "the timeline rows carry their seq for the live update"
    assert f"/ws/runs/{parent.pk}/?after=" in html, "a running run's timeline follows the websocket"
    done = make_run(target=agent.id, status=RunStatus.SUCCEEDED)
    assert "/ws/runs/" not in staff_client.get(reverse("admin:cosmos_run_change", args=[done.pk])).content.decode()
