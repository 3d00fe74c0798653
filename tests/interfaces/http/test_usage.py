"""``GET /api/usage``: tokens and cost of ended runs by agent, API key, day or model."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cosmos.models import RunStatus
from interfaces.keys.models import APIKey
from tests.factories import make_agent, make_run
from tests.interfaces.http.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db

USAGE = "/api/usage"


@pytest.fixture
def world():
    """Two agents, two keys, two days."""
    today = timezone.now()
    yesterday = today - timedelta(days=1)
    a, b = make_agent(), make_agent()
    first, _ = APIKey.generate("first", ["run"])
    second, _ = APIKey.generate("second", ["run"])
    done = {"status": RunStatus.SUCCEEDED, "provider": "anthropic", "model": "claude-sonnet-4-5"}
    make_run(target=a.id, caller=first.caller, finished_at=today, input_tokens=10, cost=Decimal("0.10"), **done)
    make_run(target=a.id, caller=second.caller, finished_at=yesterday, output_tokens=5, cost=Decimal("0.20"), **done)
    make_run(target=b.id, caller=first.caller, finished_at=yesterday, cache_read_tokens=7, cost=Decimal("0.40"), **done)
    make_run(target=b.id, caller="user:staff", finished_at=today, cost=Decimal("1"), cost_unpriced=False, **done)
    return {"a": a, "b": b, "first": first, "second": second, "today": today, "yesterday": yesterday}


def test_by_agent_key_day_and_model(api_client, world):
    by_agent = api_client.get(USAGE).json()  # auth off: anyone, like every route
    assert by_agent["group"] == "agent" and by_agent["currency"] == "USD"
    rows = {row["group"]: row for row in by_agent["rows"]}
    assert rows[world["b"].id]["cost"] == "1.400000" and rows[world["b"].id]["cache_read_tokens"] == 7
    assert rows[world["a"].id]["cost"] == "0.300000" and rows[world["a"].id]["runs"] == 2
    assert by_agent["total"]["cost"] == "1.700000" and by_agent["total"]["runs"] == 4

    by_key = api_client.get(USAGE, {"group": "key"}).json()
    keys = {row["group"]: row for row in by_key["rows"]}
    assert set(keys) == {world["first"].prefix, world["second"].prefix}  # users' runs are not keys'
    assert keys[world["first"].prefix]["name"] == "first" and keys[world["first"].prefix]["cost"] == "0.500000"
    assert keys[world["second"].prefix]["output_tokens"] == 5

    by_day = api_client.get(USAGE, {"group": "day"}).json()
    assert [(row["group"], row["cost"]) for row in by_day["rows"]] == [
        (world["yesterday"].date().isoformat(), "0.600000"),
        (world["today"].date().isoformat(), "1.100000"),
    ]
    only_today = api_client.get(USAGE, {"group": "day", "since": world["today"].date().isoformat()}).json()
    assert [row["group"] for row in only_today["rows"]] == [world["today"].date().isoformat()]

    by_model = api_client.get(USAGE, {"group": "model"}).json()
    assert [row["group"] for row in by_model["rows"]] == ["anthropic:claude-sonnet-4-5"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"group": "weekday"}, "group"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-12-07", "until": "2026-12-01"}, "since"),
        ({"since": "2024-01-01", "until": "2026-01-01"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"since": "0001-01-01"}, "since"),
        ({"since": "2026-1-5"}, "since"),
    ],
)
def test_bad_input_is_a_clear_400(api_client, query, field):
    error = assert_error(api_client.get(USAGE, query), 400, "invalid")
    assert field in error["details"]


def test_auth_denied(api_client, auth_on, keys):
    assert_error(api_client.get(USAGE), 401)
    assert_error(api_client.get(USAGE, **bearer(keys.run)), 403)
    _, limited = APIKey.generate("limited", ["admin"], resources=["agents:one"])
    assert_error(api_client.get(USAGE, **bearer(limited)), 403)
    assert api_client.get(USAGE, **bearer(keys.admin)).status_code == 200


def test_runs_show_their_own_figures_and_the_sum_of_their_tree(api_client):
    star = make_run(kind="star", target="team", status=RunStatus.SUCCEEDED)
    member = make_run(parent=star, input_tokens=3, cost=Decimal("0.03"), status=RunStatus.SUCCEEDED)
    make_run(parent=star, output_tokens=4, cache_write_tokens=2, cost=Decimal("0.04"))

    detail = api_client.get(f"/api/runs/{star.id}").json()
    assert detail["cost"] == "0.000000" and detail["input_tokens"] == 0  # its own: none
    assert detail["total"] == {
        "runs": 3,
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_read_tokens": 0,
        "cache_write_tokens": 2,
        "total_tokens": 9,
        "cost": "0.070000",
    }
    listed = {row["id"]: row for row in api_client.get("/api/runs").json()["results"]}
    assert listed[str(star.id)]["total"] == detail["total"]
    assert listed[str(member.id)]["total"]["runs"] == 1 and listed[str(member.id)]["total"]["cost"] == "0.030000"


def test_an_agents_status_totals_its_tokens_and_cost(api_client):
    agent = make_agent()
    make_run(target=agent.id, input_tokens=3, cache_read_tokens=100, output_tokens=2, cost=Decimal("0.5"))
    make_run(target=agent.id, cache_write_tokens=10, cost=Decimal("0.25"))
    make_run(target="another", input_tokens=1000, cost=Decimal(7))
    status = api_client.get(f"/api/agents/{agent.id}/status").json()
    assert status["total_tokens"] == 115 and status["total_cost"] == "0.750000" and status["total_runs"] == 2
