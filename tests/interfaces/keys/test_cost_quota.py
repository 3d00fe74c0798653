"""An API key's quota in currency per day (``cost_per_day``): the runs' cost since 00:00 UTC,
refused like the token quota once spent, and reported by ``GET /api/keys/me/usage``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cosmos.models import Run, RunStatus
from interfaces.keys import quotas
from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_run
from tests.interfaces.http.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db


def run_request(client, agent_id: str, raw_key: str):
    return client.post(f"/api/agents/{agent_id}/run", {"input": "hi"}, format="json", **bearer(raw_key))


def test_the_cost_budget_refuses_new_runs_once_spent_until_midnight(api_client, auth_on):
    agent = make_agent()
    key, raw = APIKey.generate("spender", ["run"], cost_per_day=Decimal("0.50"))
    now = timezone.now()
    done = {"status": RunStatus.SUCCEEDED, "caller": key.caller, "target": agent.id}
    parent = make_run(**done, finished_at=now, cost=Decimal("0.30"))
    make_run(**done, finished_at=quotas.utc_midnight(now) - timedelta(seconds=1), cost=Decimal(90))  # yesterday's
    make_run(**(done | {"caller": "key:someone-else"}), finished_at=now, cost=Decimal(90))
    assert quotas.cost_today(key.caller) == Decimal("0.30")
    assert run_request(api_client, agent.id, raw).status_code == 202

    make_run(**done, parent=parent, finished_at=now, cost=Decimal("0.20"))  # a child's model calls count
    refused = run_request(api_client, agent.id, raw)
    error = assert_error(refused, 429, "quota_exceeded")
    assert error["details"]["quota"] == quotas.COST_PER_DAY and error["details"]["limit"] == "0.50"
    assert "spent its 0.50 USD for today" in error["message"]
    to_midnight = (quotas.next_utc_midnight() - datetime.now(UTC)).total_seconds()
    assert abs(int(refused["Retry-After"]) - to_midnight) <= 5
    assert Run.objects.filter(caller=key.caller).count() == 4  # three of its runs made here, one accepted


def test_a_key_with_no_cost_budget_is_not_limited_by_cost(api_client, auth_on):
    agent = make_agent()
    key, raw = APIKey.generate("free", ["run"])
    make_run(status=RunStatus.SUCCEEDED, caller=key.caller, target=agent.id, finished_at=timezone.now(), cost=99)
    assert run_request(api_client, agent.id, raw).status_code == 202


def test_usage_reports_the_cost_budget(api_client, auth_on):
    key, raw = APIKey.generate("metered", ["read"], cost_per_day=Decimal("2.00"))
    make_run(status=RunStatus.SUCCEEDED, caller=key.caller, finished_at=timezone.now(), cost=Decimal("0.125"))

    cost = api_client.get("/api/keys/me/usage", **bearer(raw)).json()["quotas"]["cost_per_day"]
    assert cost["limit"] == "2.00" and cost["used"] == "0.125000" and cost["remaining"] == "1.875000"
    assert cost["currency"] == "USD" and cost["resets_in_seconds"] >= 1


def test_the_admin_lists_and_edits_the_cost_budget(staff_client):
    key, _ = APIKey.generate("edited", ["read"])
    make_run(status=RunStatus.SUCCEEDED, caller=key.caller, finished_at=timezone.now(), cost=Decimal("0.25"))
    listing = staff_client.get("/admin/keys/apikey/")
    assert "0.2500 USD" in listing.content.decode()

    form = {"name": "edited", "scopes": ["read"], "resources": "[]", "cost_per_day": "not money"}
    refused = staff_client.post(f"/admin/keys/apikey/{key.pk}/change/", form)
    assert refused.status_code == 200 and "Enter a number" in refused.content.decode()
    saved = staff_client.post(f"/admin/keys/apikey/{key.pk}/change/", form | {"cost_per_day": "1.50"})
    assert saved.status_code == 302
    key.refresh_from_db()
    assert key.cost_per_day == Decimal("1.50")
