"""Distributed mode: a real ``celery worker`` process runs the runs and sends their events; the
receiver is down for a real minute, then up, and gets every event, each once by webhook-id."""

from __future__ import annotations

import time

import pytest

from cosmos.services import runs as run_services
from interfaces.webhooks.models import Delivery, DeliveryStatus
from tests.factories import make_agent, make_webhook
from tests.support.runs import wait_for_runs
from tests.support.webhook_receiver import WebhookReceiver, verify
from tests.support.workers import WorkerProcess, the_queue_to_itself

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.timeout(400),
]

DOWN_SECONDS = 60
RUNS = 12


def test_a_receiver_down_for_a_minute_then_up_gets_every_event():
    receiver = WebhookReceiver()  # not listening yet: connections are refused
    webhook = make_webhook(url=receiver.url)
    agent = make_agent()
    down_since = time.monotonic()
    with the_queue_to_itself():
        # The test settings allow 127.0.0.1; the first retry after about a second, then doubling.
        worker = WorkerProcess(concurrency=8, env={"ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS": "1"}).start()
        try:
            runs = [run_services.start_run("agent", agent.id, f"n{i}")[0] for i in range(RUNS)]
            wait_for_runs([r.id for r in runs], timeout=60)
            _wait(lambda: Delivery.objects.filter(webhook=webhook, attempts__gte=2).count() == RUNS, 30)
            assert not Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).exists()
            time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))
            receiver.up()
            accepted = receiver.wait_for(RUNS, timeout=120)
            _wait(lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == RUNS, 30)
        finally:
            worker.close()
            receiver.down()
    assert {r.json()["data"]["id"] for r in accepted} == {str(r.id) for r in runs}
    assert len({r.message_id for r in accepted}) == RUNS
    assert all(verify(webhook.secret, r) for r in accepted)
    attempts = list(Delivery.objects.values_list("attempts", flat=True))
    assert min(attempts) >= 3, attempts  # refused while down, retried with backoff
    refused = Delivery.objects.first().attempt_log.first()
    assert refused.status_code is None and refused.error


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
