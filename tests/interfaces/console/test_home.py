"""``/``: the home page (what runs now, the latest runs, every door), and the JSON 404 kept for
every other unknown path."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from cosmos.models import RunStatus
from tests.factories import make_agent, make_run, make_star

pytestmark = pytest.mark.django_db


def test_the_home_page_is_html_with_a_link_to_every_door(client, settings_options):
    settings_options(enable_mcp=True, enable_a2a=True)
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<meta name="viewport"' in page  # readable on a phone
    for href in (
        reverse("admin:index"),
        reverse("dashboard:index"),
        reverse("asteros-api-root"),
        reverse("api:docs"),
        reverse("a2a-root-card"),
        reverse("a2a-cards"),
        "/mcp",
    ):
        assert f'href="{href}"' in page, href


def test_doors_that_are_off_are_not_linked(client, settings_options):
    settings_options(enable_mcp=False, enable_a2a=False, enable_metrics=False)
    page = client.get("/").content.decode()
    assert 'href="/mcp"' not in page
    assert "agent-card.json" not in page
    assert 'href="/metrics"' not in page


def test_the_home_page_shows_what_runs_now_and_the_latest_runs(client):
    agent = make_agent("helper-bot")
    star = make_star(leader=make_agent())
    for status in (RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.INTERRUPTED):
        make_run(target=agent.id, status=status)
    started = timezone.now()
    done = make_run(
        target=agent.id,
        status=RunStatus.SUCCEEDED,
        started_at=started,
        finished_at=started + timezone.timedelta(seconds=123.4),
        input={"message": "summarise the news"},
    )
    page = client.get("/").content.decode()
    counts = dict(re.findall(r'id="count-(\w+)"><span class="value">(\d+)</span>', page))
    assert counts == {"running": "2", "queued": "1", "paused": "1"}
    row = re.search(rf'<tr data-run-id="{done.id}">(.*?)</tr>', page, re.S).group(1)
    assert "2 min 3 s" in row and "summarise the news" in row
    assert reverse("admin:cosmos_run_change", args=[done.id]) in row
    # Each definition's A2A card is linked.
    assert f'href="/a2a/agents/{agent.id}/.well-known/agent-card.json"' in page
    assert f'href="/a2a/stars/{star.id}/.well-known/agent-card.json"' in page


def test_with_auth_on_runs_are_shown_to_staff_only(client, staff_user, settings_options):
    settings_options(enable_auth=True, api_key="k" * 32)
    make_run(status=RunStatus.RUNNING, input={"message": "a private question"})
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    page = anonymous.content.decode()
    assert "a private question" not in page and 'id="count-running"' not in page
    assert reverse("admin:login") in page and reverse("api:docs") in page
    client.force_login(staff_user)
    staff = client.get("/").content.decode()
    assert "a private question" in staff and 'id="count-running"' in staff


def test_the_home_page_answers_get_and_head_only(client):
    assert client.head("/").status_code == 200
    response = client.post("/", {"x": "1"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"  # the one error shape


@pytest.mark.parametrize("path", ["/api/x", "/api/agents/nobody", "/nothing-here", "/dashboard/nope"])
def test_unknown_paths_still_answer_the_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"
