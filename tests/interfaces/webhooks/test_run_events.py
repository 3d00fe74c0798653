"""Run events end to end: real runs through the test session's worker, delivered to a local
receiver; the sweep that backs up the signal; filters; many runs at once.

The embedded pass runs these (the worker is a thread of this process and reads these settings);
the distributed pass has its own, with a worker process (test_distributed.py).
"""

from __future__ import annotations

import time

import pytest

from cosmos.models import RunStatus
from cosmos.services import interrupts as interrupt_services
from cosmos.services import runs as run_services
from cosmos.services.leases import run_changed
from interfaces.webhooks import runs as run_events
from interfaces.webhooks.models import Delivery, DeliveryStatus
from tests.factories import make_agent, make_star, make_webhook
from tests.support.interrupts import question_agent, the_interrupt
from tests.support.runs import wait_for_run, wait_for_runs
from tests.support.webhook_receiver import verify

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.embedded_only,
]


def events_of(receiver, run_id) -> list[str]:
    return [r.json()["type"] for r in receiver.accepted() if r.json()["data"].get("id") == str(run_id)]


def test_a_succeeded_run_is_delivered_signed_with_its_summary(receiver, settings_options):
    settings_options(public_url="https://asteros.example.com")
    webhook = make_webhook(url=receiver.url)
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "hello", session_id="hooks-1")
    wait_for_run(run.id)

    (request,) = receiver.wait_for(1)
    assert verify(webhook.secret, request)
    body = request.json()
    assert body["type"] == "run.succeeded"
    data = body["data"]
    assert (data["id"], data["kind"], data["target"], data["status"]) == (str(run.id), "agent", agent.id, "succeeded")
    assert data["session"] == "hooks-1" and data["origin"] == "api" and data["error"] is None
    assert data["output"] and data["finished_at"] and data["started_at"] and data["created_at"]
    assert data["usage"]["total_tokens"] == data["usage"]["input_tokens"] + data["usage"]["output_tokens"] > 0
    assert data["links"]["self"] == f"https://asteros.example.com/api/runs/{run.id}"
    delivery = Delivery.objects.get(webhook=webhook)
    assert (delivery.run_id, delivery.message_id, delivery.event) == (run.id, request.message_id, "run.succeeded")
    _settled(delivery, DeliveryStatus.SUCCEEDED)


def test_failed_cancelled_and_interrupted_runs_are_delivered(receiver):
    make_webhook(url=receiver.url)
    failing = run_services.start_run("agent", make_agent(parameters={"fail": True}).id, "x")[0]
    slow = run_services.start_run("agent", make_agent(parameters={"ttft_ms": 5000}).id, "x")[0]
    asking = run_services.start_run("agent", question_agent().id, "x")[0]
    wait_for_run(slow.id, statuses=(RunStatus.RUNNING,))
    run_services.cancel_run(slow.id)
    wait_for_runs([failing.id, slow.id])
    wait_for_run(asking.id, statuses=(RunStatus.INTERRUPTED,))

    receiver.wait_for(3)
    assert events_of(receiver, failing.id) == ["run.failed"]
    assert events_of(receiver, slow.id) == ["run.cancelled"]
    assert events_of(receiver, asking.id) == ["run.interrupted"]
    by_type = {r.json()["type"]: r.json()["data"] for r in receiver.accepted()}
    assert by_type["run.failed"]["error"]["code"]
    (pending,) = by_type["run.interrupted"]["interrupts"]
    interrupt = the_interrupt(asking.id)
    assert (pending["id"], pending["status"], pending["kind"]) == (str(interrupt.id), "pending", "question")

    # Answered, the run ends: its end is a second event of the same run.
    interrupt_services.resolve(interrupt.id, "answer", answer="Paris", resolved_by="test")
    wait_for_run(asking.id)
    receiver.wait_for(4)
    assert events_of(receiver, asking.id) == ["run.interrupted", "run.succeeded"]


def test_filters_by_event_and_resource_and_child_runs_send_nothing(receiver):
    leader, worker = make_agent(), make_agent()
    star = make_star(leader=leader, workers=[worker])
    wanted = make_webhook(url=receiver.url, events=["run.succeeded"], resource_kind="star", resource_id=star.id)
    failures_only = make_webhook(url=receiver.url, events=["run.failed"])
    disabled = make_webhook(url=receiver.url, enabled=False)
    star_run = run_services.start_run("star", star.id, "plan it")[0]
    agent_run = run_services.start_run("agent", leader.id, "solo")[0]
    wait_for_runs([star_run.id, agent_run.id])
    assert star_run.id and run_services.get_run(star_run.id).status == RunStatus.SUCCEEDED

    receiver.wait_for(1)
    time.sleep(1.0)  # what else would come, comes now
    assert [r.json()["data"]["id"] for r in receiver.accepted()] == [str(star_run.id)]
    assert Delivery.objects.filter(webhook=wanted).count() == 1
    assert not Delivery.objects.filter(webhook__in=[failures_only, disabled]).exists()


def test_the_sweep_delivers_what_the_signal_missed(receiver, monkeypatch):
    webhook = make_webhook(url=receiver.url)
    before = run_services.start_run("agent", make_agent().id, "x")[0]
    wait_for_run(before.id)
    receiver.wait_for(1)
    # A process that dies between the commit and the signal: no receiver hears it.
    assert run_changed.disconnect(dispatch_uid="webhooks.run_events")
    try:
        runs = [run_services.start_run("agent", make_agent().id, "x")[0] for _ in range(3)]
        wait_for_runs([r.id for r in runs])
        # No receiver heard the ends, so whatever delivery exists for them now was written by the
        # engine's periodic sweep (every SWEEP_MISSED_SECONDS), which may already have run.
        receiver.wait_for(4, timeout=run_events.SWEEP_MISSED_SECONDS * 3)
    finally:
        run_changed.connect(run_events.on_run_changed, dispatch_uid="webhooks.run_events")
    ids = [r.message_id for r in receiver.accepted()]
    assert len(ids) == len(set(ids)) == 4
    assert Delivery.objects.filter(webhook=webhook).count() == 4  # one per run, none twice
    assert run_events.sweep_missed() == 0  # idempotent: nothing is missing any more


def test_the_sweep_skips_runs_that_ended_before_the_webhook_existed(receiver):
    run = run_services.start_run("agent", make_agent().id, "x")[0]
    wait_for_run(run.id)
    make_webhook(url=receiver.url)
    assert run_events.sweep_missed() == 0
    assert not Delivery.objects.exists()


def test_every_event_of_many_runs_ending_at_once_is_delivered_once(receiver):
    make_webhook(url=receiver.url)
    agent = make_agent()
    receiver.fail_next(15, status=500)  # some are retried; ordering is not promised
    runs = [run_services.start_run("agent", agent.id, f"n{i}")[0] for i in range(40)]
    wait_for_runs([r.id for r in runs], timeout=120)

    receiver.wait_for(40, timeout=60)
    time.sleep(0.5)
    accepted = receiver.accepted()
    delivered = {r.json()["data"]["id"] for r in accepted}
    assert delivered == {str(r.id) for r in runs}
    # At least once: a receiver de-duplicates by webhook-id (one id per run and subscription).
    assert len({r.message_id for r in accepted}) == 40
    assert Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 40


@pytest.mark.django_db
def test_with_no_webhook_a_run_change_costs_one_cached_query(django_assert_max_num_queries):
    run_events.forget_enabled()
    message = {"id": "00000000-0000-0000-0000-000000000001", "kind": "agent", "target": "a", "parent": ""}
    with django_assert_max_num_queries(1):
        for _ in range(100):
            run_events.on_run_changed(None, message={**message, "status": "succeeded"})
    with django_assert_max_num_queries(0):
        run_events.on_run_changed(None, message={**message, "status": "running"})


def _settled(delivery: Delivery, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Delivery.objects.get(pk=delivery.pk).status != status:
        assert time.monotonic() < deadline, f"delivery {delivery.pk} never became {status}"
        time.sleep(0.05)
