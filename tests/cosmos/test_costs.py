"""Token accounting and cost: the price table, runs priced when their usage is recorded (scripted
and the fake Anthropic API with the real SDK), the admin's price override, totals and metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cosmos.models import ModelPrice, Run, RunStatus
from cosmos.services import costs
from cosmos.services import runs as run_services
from tests.factories import make_agent, make_run
from tests.interfaces.http.test_metrics import scrape, value
from tests.support.model_runs import RunsWithEnv, runs_with_env
from tests.support.model_server import ModelServer
from tests.support.runs import wait_for_run

LONG_PROMPT = "You answer questions about the house rules. " * 200
QUEUE = f"costs-{uuid.uuid4().hex[:8]}"
API_KEY = "costs-test-key"


ZERO_PRICES = {"input": "0", "output": "0", "cache_read": "0", "cache_write": "0"}


def price(**per_million: str) -> dict[str, Decimal]:
    return {f"{name}_per_million": Decimal(amount) for name, amount in per_million.items()}


# --- the price table


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("anthropic", "claude-sonnet-4-5-20250929", ("3", "15", "0.3", "3.75")),
        ("anthropic", "claude-opus-4-5", ("5", "25", "0.5", "6.25")),
        ("anthropic", "claude-opus-4-1-20250805", ("15", "75", "1.5", "18.75")),
        ("anthropic", "claude-haiku-4-5", ("1", "5", "0.1", "1.25")),
        ("openai", "gpt-4o-mini-2024-07-18", ("0.15", "0.6", "0.075", "0.15")),  # longer prefix than gpt-4o*
        ("openai", "gpt-4o-2024-05-13", ("5", "15", "5", "5")),  # an exact row beats the gpt-4o* prefix
        ("openai", "gpt-4o", ("2.5", "10", "1.25", "2.5")),
        ("scripted", "scripted-offline", ("0", "0", "0", "0")),
    ],
)
def test_shipped_prices(provider, model, expected):
    found = costs.find_price(provider, model)
    assert found is not None
    columns = ("input_per_million", "output_per_million", "cache_read_per_million", "cache_write_per_million")
    assert tuple(getattr(found, column) for column in columns) == tuple(Decimal(e) for e in expected)
    assert found.currency == "USD"


@pytest.mark.django_db
def test_an_unknown_model_is_unpriced_not_guessed():
    assert costs.find_price("anthropic", "claude-unknown-9") is None
    assert costs.find_price("openai", "") is None
    recorded = costs.priced_usage("anthropic", "claude-unknown-9", {"input_tokens": 10, "output_tokens": 5})
    assert recorded["cost"] == 0 and recorded["cost_unpriced"] is True and recorded["input_tokens"] == 10
    # No tokens at all (a star's own run): nothing to price, nothing unpriced.
    assert costs.priced_usage("", "", {})["cost_unpriced"] is False


@pytest.mark.django_db
def test_cost_adds_each_kind_of_token_at_its_price():
    ModelPrice.objects.create(
        provider="anthropic",
        model="house-model*",
        **price(input="3", output="15", cache_read="0.30", cache_write="3.75"),
    )
    usage = {"input_tokens": 1000, "output_tokens": 200, "cache_read_tokens": 50_000, "cache_write_tokens": 4000}
    recorded = costs.priced_usage("anthropic", "house-model-1", usage)
    # 1000*3 + 200*15 + 50000*0.30 + 4000*3.75 = 3000 + 3000 + 15000 + 15000 = 36000 per million
    assert recorded["cost"] == Decimal("0.036000") and recorded["cost_unpriced"] is False
    assert recorded | {"cost": None} == usage | {
        "provider": "anthropic",
        "model": "house-model-1",
        "cost": None,
        "cost_unpriced": False,
    }


# --- runs priced when their usage is recorded


@pytest.mark.django_db(transaction=True)
def test_a_scripted_run_records_tokens_at_price_zero_then_an_admin_price_applies_to_the_next(
    embedded_worker, staff_client
):
    agent = make_agent(parameters={"reply_tokens": 5})
    ModelPrice.objects.update_or_create(provider="scripted", model="*", defaults=price(**ZERO_PRICES))
    first = wait_for_run(run_services.start_run("agent", agent.id, "hello")[0].id)
    assert first.status == RunStatus.SUCCEEDED
    assert first.output_tokens == 5 and first.input_tokens > 0
    assert (first.provider, first.model, first.cost, first.cost_unpriced) == ("scripted", "scripted-offline", 0, False)

    # Seeded by the data migration (a transactional test before this one may have flushed it).
    row, _ = ModelPrice.objects.get_or_create(provider="scripted", model="*", defaults=price(**ZERO_PRICES))
    form = {
        "provider": "scripted",
        "model": "*",
        "input_per_million": "2",
        "output_per_million": "4000",
        "cache_read_per_million": "0",
        "cache_write_per_million": "0",
        "currency": "USD",
    }
    refused = staff_client.post(f"/admin/cosmos/modelprice/{row.pk}/change/", form | {"output_per_million": "-1"})
    assert refused.status_code == 200  # the form again, with the error
    assert staff_client.post(f"/admin/cosmos/modelprice/{row.pk}/change/", form).status_code == 302

    second = wait_for_run(run_services.start_run("agent", agent.id, "hello")[0].id)
    expected = (Decimal(second.input_tokens) * 2 + Decimal(second.output_tokens) * 4000) / 1_000_000
    assert second.cost == expected.quantize(Decimal("0.000001")) and second.cost > 0
    first.refresh_from_db()
    assert first.cost == 0  # the price change did not rewrite history


@pytest.fixture(scope="module")
def server(module_model_server: ModelServer) -> ModelServer:
    return module_model_server


@pytest.fixture(scope="module")
def engine(request, server: ModelServer, django_db_setup, django_db_blocker) -> Iterator[RunsWithEnv]:
    env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": API_KEY}
    with runs_with_env(request, django_db_blocker, env, queue=QUEUE) as runs:
        yield runs


@pytest.mark.django_db(transaction=True)
def test_anthropic_runs_record_cache_tokens_and_cost_from_the_table(engine, server, api_client):
    agent = make_agent(
        provider="anthropic",
        model="fake-model-2",
        system_prompt=LONG_PROMPT,
        tools=["calculator"],
        parameters={"timeout": 5, "max_retries": 0},
    )
    unpriced = engine.finished(engine.start(agent.id))
    assert unpriced.status == RunStatus.SUCCEEDED, unpriced.error
    assert unpriced.cache_write_tokens > 1000 and unpriced.cache_read_tokens == 0
    assert unpriced.cost == 0 and unpriced.cost_unpriced and unpriced.model == "fake-model-2"

    ModelPrice.objects.create(
        provider="anthropic",
        model="fake-model*",
        **price(input="3", output="15", cache_read="0.30", cache_write="3.75"),
    )
    priced = engine.finished(engine.start(agent.id))
    assert priced.cache_read_tokens == unpriced.cache_write_tokens and priced.cache_write_tokens == 0
    assert 0 < priced.input_tokens < 100 and priced.output_tokens > 0
    expected = (
        Decimal(priced.input_tokens) * 3
        + Decimal(priced.output_tokens) * 15
        + Decimal(priced.cache_read_tokens) * Decimal("0.30")
    ) / 1_000_000
    assert priced.cost == expected.quantize(Decimal("0.000001")) and not priced.cost_unpriced
    # The marker really went out on the system prompt.
    system = server.model_requests("anthropic")[-1].body["system"]
    assert system[0]["cache_control"] == {"type": "ephemeral"}

    shown = api_client.get(f"/api/runs/{priced.id}").json()
    assert shown["cache_read_tokens"] == priced.cache_read_tokens and shown["cost"] == str(priced.cost)
    assert shown["provider"] == "anthropic" and shown["model"] == "fake-model-2" and shown["cost_unpriced"] is False
    assert shown["total"]["runs"] == 1 and shown["total"]["cost"] == str(priced.cost)


@pytest.mark.django_db(transaction=True)
def test_anthropic_caching_switched_off_by_the_agent(engine, server):
    agent = make_agent(
        provider="anthropic",
        model="fake-model-3",
        system_prompt=LONG_PROMPT,
        parameters={"timeout": 5, "max_retries": 0, "prompt_caching": False},
    )
    runs = [engine.finished(engine.start(agent.id)) for _ in range(2)]
    assert all(run.cache_read_tokens == run.cache_write_tokens == 0 for run in runs)
    assert all(run.input_tokens > 1000 for run in runs)
    assert server.model_requests("anthropic")[-1].body["system"] == LONG_PROMPT


@pytest.mark.django_db(transaction=True)
def test_metrics_count_tokens_by_kind_and_cost_by_agent_and_model(embedded_worker, api_client):
    ModelPrice.objects.update_or_create(
        provider="scripted", model="*", defaults=price(**ZERO_PRICES) | price(output="100000")
    )  # 10 cents an output token
    agent = make_agent(parameters={"reply_tokens": 3})
    before = scrape(api_client)
    run = wait_for_run(run_services.start_run("agent", agent.id, "hello")[0].id)
    after = scrape(api_client)
    assert run.cost == Decimal("0.3")
    labels = {"agent": agent.id, "model": "scripted:scripted-offline"}
    spent = value(after, "asteros_cost_usd_total", **labels) - value(before, "asteros_cost_usd_total", **labels)
    assert spent == pytest.approx(0.3)
    assert value(after, "asteros_tokens_total", agent=agent.id, direction="output") == 3


# --- totals


@pytest.mark.django_db
def test_totals_by_agent_key_and_day():
    today = timezone.now()
    yesterday = today - timedelta(days=1)
    a, b = make_agent(), make_agent()
    rows = [
        # agent, caller, ended, input, output, cache read, cost
        (a, "key:aaaa", today, 100, 10, 1000, "0.10"),
        (a, "key:bbbb", yesterday, 200, 20, 0, "0.20"),
        (b, "key:aaaa", yesterday, 300, 30, 0, "0.40"),
        (b, "user:ann", today, 1, 1, 0, "0"),
    ]
    for agent, caller, ended, inp, out, read, cost in rows:
        make_run(
            target=agent.id,
            caller=caller,
            status=RunStatus.SUCCEEDED,
            finished_at=ended,
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=read,
            cost=Decimal(cost),
        )
    make_run(target=a.id, caller="key:aaaa", input_tokens=999, cost=Decimal(9))  # still queued: not counted
    make_run(target=a.id, status=RunStatus.SUCCEEDED, finished_at=today - timedelta(days=40), cost=Decimal(9))

    since = costs.day_start((today - timedelta(days=7)).date())
    by_agent = {row["group"]: row for row in costs.usage_totals("agent", since=since)}
    assert by_agent[a.id]["runs"] == 2 and by_agent[a.id]["cost"] == Decimal("0.30")
    assert by_agent[a.id]["total_tokens"] == 100 + 10 + 1000 + 200 + 20
    assert by_agent[b.id]["cost"] == Decimal("0.40") and by_agent[b.id]["input_tokens"] == 301
    assert [row["group"] for row in costs.usage_totals("agent", since=since)] == [b.id, a.id]  # by cost

    by_caller = {row["group"]: row for row in costs.usage_totals("caller", since=since, caller_prefix="key:")}
    assert set(by_caller) == {"key:aaaa", "key:bbbb"}
    assert by_caller["key:aaaa"]["cost"] == Decimal("0.50") and by_caller["key:aaaa"]["runs"] == 2

    by_day = costs.usage_totals("day", since=since)
    assert [row["group"] for row in by_day] == [yesterday.date().isoformat(), today.date().isoformat()]
    assert [row["cost"] for row in by_day] == [Decimal("0.60"), Decimal("0.10")]
    assert costs.sum_rows(by_day)["cost"] == Decimal("0.70") and costs.sum_rows(by_day)["runs"] == 4

    with pytest.raises(ValueError, match="Unknown group"):
        costs.usage_totals("weekday")


@pytest.mark.django_db
def test_a_parents_total_sums_its_tree():
    star = make_run(kind="star", target="team", status=RunStatus.SUCCEEDED)
    leader = make_run(parent=star, input_tokens=10, output_tokens=1, cost=Decimal("0.01"))
    make_run(parent=leader, input_tokens=5, cache_write_tokens=7, cost=Decimal("0.02"))
    other = make_run(input_tokens=1000, cost=Decimal(5))

    totals = costs.tree_usage([star, leader, other])
    assert totals[str(star.id)]["runs"] == 3 and totals[str(star.id)]["cost"] == Decimal("0.03")
    assert totals[str(star.id)]["total_tokens"] == 10 + 1 + 5 + 7
    assert totals[str(leader.id)]["runs"] == 2 and totals[str(leader.id)]["input_tokens"] == 15
    assert totals[str(other.id)]["runs"] == 1 and totals[str(other.id)]["cost"] == Decimal(5)
    assert Run.objects.get(id=star.id).cost == 0  # the parent keeps its own figures


@pytest.mark.django_db(transaction=True)
def test_a_pause_records_the_usage_so_far_priced(embedded_worker):
    ModelPrice.objects.update_or_create(
        provider="scripted", model="*", defaults=price(**ZERO_PRICES) | price(input="1000", output="2000")
    )
    agent = make_agent(tools=["calculator"], approvals={"calculator": "always"})
    run = run_services.start_run("agent", agent.id, "What is 6 * 7?")[0]
    paused = wait_for_run(run.id, statuses=[RunStatus.INTERRUPTED])
    assert (paused.provider, paused.model) == ("scripted", "scripted-offline")
    assert paused.input_tokens > 0 and paused.output_tokens > 0
    expected = (Decimal(paused.input_tokens) * 1000 + Decimal(paused.output_tokens) * 2000) / 1_000_000
    assert paused.cost == expected.quantize(Decimal("0.000001")) > 0


@pytest.mark.django_db
def test_the_admin_shows_prices_costs_and_the_usage_page(staff_client):
    agent = make_agent()
    make_run(
        target=agent.id,
        caller="key:abcd1234",
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        input_tokens=40,
        cache_read_tokens=2,
        cost=Decimal("0.125"),
        provider="anthropic",
        model="claude-haiku-4-5",
    )
    make_run(target=agent.id, status=RunStatus.SUCCEEDED, finished_at=timezone.now(), cost_unpriced=True, model="x")

    prices = staff_client.get("/admin/cosmos/modelprice/").content.decode()
    assert "claude-sonnet-4*" in prices and "/admin/cosmos/modelprice/usage/" in prices

    page = staff_client.get("/admin/cosmos/modelprice/usage/?days=7")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Usage, last 7 days" in html and agent.id in html and "key:abcd1234" in html
    assert "anthropic:claude-haiku-4-5" in html and "0.125000" in html
    assert "1 runs on a model with no price" in html
    assert staff_client.get("/admin/cosmos/modelprice/usage/?days=soon").status_code == 200  # the default window

    runs = staff_client.get("/admin/cosmos/run/").content.decode()
    assert "0.125000 USD (anthropic:claude-haiku-4-5)" in runs and "unpriced" in runs


def test_the_usage_page_is_for_staff_only(client):
    response = client.get("/admin/cosmos/modelprice/usage/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_run_still_records_and_prices_the_calls_it_made(embedded_worker):
    ModelPrice.objects.update_or_create(
        provider="scripted", model="*", defaults=price(**ZERO_PRICES) | price(input="1000", output="2000")
    )
    # One model turn allowed, and the model wants a tool: the run fails after paying for that turn.
    agent = make_agent(tools=["calculator"], parameters={"max_turns": 1})
    failed = wait_for_run(run_services.start_run("agent", agent.id, "What is 6 * 7?")[0].id)
    assert failed.status == RunStatus.FAILED and failed.error["code"] == "max_turns_exceeded", failed.error
    assert failed.input_tokens > 0 and failed.output_tokens > 0 and failed.provider == "scripted"
    expected = (Decimal(failed.input_tokens) * 1000 + Decimal(failed.output_tokens) * 2000) / 1_000_000
    assert failed.cost == expected.quantize(Decimal("0.000001")) > 0
