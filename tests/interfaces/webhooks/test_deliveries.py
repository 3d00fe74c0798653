"""Sending a delivery to a real local receiver: the signature, retries, the retry window, the
outbound policy, redelivery, and secrets kept out of the logs.

These tests drive ``deliveries.deliver`` in the test's own thread (the Celery task is a one-line
call of it): the rows are not committed, so no worker sends them meanwhile.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as StandardWebhook

from cosmos import outbound
from interfaces.webhooks import deliveries, services
from interfaces.webhooks.models import Delivery, DeliveryStatus, Event
from tests.factories import make_run, make_webhook
from tests.interfaces.webhooks.conftest import FAST_FIRST_RETRY
from tests.support.webhook_receiver import WebhookReceiver, verify

pytestmark = [pytest.mark.django_db, pytest.mark.embedded_only]


def emit_one(webhook, key: str = "one") -> Delivery:
    (delivery,) = services.emit(Event.RUN_SUCCEEDED, {"id": key}, event_key=key, run_id=make_run().id)
    assert delivery.webhook_id == webhook.pk
    return delivery


def deliver_when_due(delivery: Delivery, timeout: float = 10) -> str | None:
    """Wait until the delivery is due, then make its next attempt here."""
    deadline = time.monotonic() + timeout
    while True:
        delivery.refresh_from_db()
        if delivery.next_attempt_at is None or delivery.next_attempt_at <= timezone.now():
            return deliveries.deliver(delivery.id)
        assert time.monotonic() < deadline, "the delivery never came due"
        time.sleep(0.02)


def test_the_signature_verifies_with_the_standard_library_and_the_standard_package(receiver):
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)

    assert deliveries.deliver(delivery.id) == DeliveryStatus.SUCCEEDED
    (request,) = receiver.wait_for(1)
    assert verify(webhook.secret, request)
    # The same check with the spec's own package (as a Python receiver would).
    body = StandardWebhook(webhook.secret).verify(request.body, request.headers)
    assert body == {"type": "run.succeeded", "timestamp": delivery.payload["timestamp"], "data": {"id": "one"}}
    assert request.message_id == delivery.message_id
    assert request.headers["content-type"] == "application/json"
    # A changed body or another secret does not verify.
    tampered = type(request)(**{**request.__dict__, "body": request.body.replace(b"one", b"two")})
    assert not verify(webhook.secret, tampered)
    assert not verify(services.new_secret(), request)


def test_a_500_is_retried_with_backoff_and_the_same_webhook_id(receiver):
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    receiver.fail_next(2, status=500)

    assert deliveries.deliver(delivery.id) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0 < wait <= FAST_FIRST_RETRY * 1.5
    assert deliveries.deliver(delivery.id) is None  # not due yet: nothing is sent
    assert deliver_when_due(delivery) == DeliveryStatus.PENDING
    assert deliver_when_due(delivery) == DeliveryStatus.SUCCEEDED

    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code, delivery.status) == (3, 200, DeliveryStatus.SUCCEEDED)
    log = list(delivery.attempt_log.values_list("number", "status_code", "error"))
    assert [(n, code) for n, code, _ in log] == [(1, 500), (2, 500), (3, 200)]
    assert log[0][2] == "The receiver answered 500."
    assert {r.message_id for r in receiver.received()} == {delivery.message_id}
    assert all(verify(webhook.secret, r) for r in receiver.received())  # each attempt signed anew


def test_a_receiver_slower_than_the_timeout_is_retried(receiver):
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    receiver.sleep_next(1, deliveries.TIMEOUT_SECONDS + 1.5)

    assert deliveries.deliver(delivery.id) == DeliveryStatus.PENDING
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and attempt.error
    assert attempt.latency_ms >= deliveries.TIMEOUT_SECONDS * 1000 * 0.9
    assert deliver_when_due(delivery) == DeliveryStatus.SUCCEEDED


def test_the_backoff_doubles_with_jitter_and_is_capped(settings_options):
    settings_options(webhook_first_retry_seconds=5.0)
    waits = [deliveries.backoff_seconds(1) for _ in range(200)]
    assert min(waits) >= 2.5 and max(waits) < 7.5 and max(waits) - min(waits) > 1  # jitter
    assert all(5 <= deliveries.backoff_seconds(2) < 15 for _ in range(50))
    assert deliveries.backoff_seconds(40) < deliveries.MAX_RETRY_SECONDS * 1.5


def test_a_delivery_gives_up_after_the_retry_window(receiver, settings_options):
    settings_options(webhook_retry_seconds=1)
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    receiver.fail_next(100, status=503)

    status = deliveries.deliver(delivery.id)
    while status == DeliveryStatus.PENDING:
        status = deliver_when_due(delivery)
    delivery.refresh_from_db()
    assert status == DeliveryStatus.FAILED == delivery.status
    assert delivery.next_attempt_at is None and delivery.last_status_code == 503
    assert delivery.attempts >= 2 and delivery.attempt_log.count() == delivery.attempts
    assert deliveries.sweep_due() == 0  # nothing left to send


def test_redeliver_sends_a_failed_delivery_again_with_the_same_id(receiver):
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    Delivery.objects.filter(id=delivery.id).update(status=DeliveryStatus.FAILED, next_attempt_at=None, attempts=5)

    assert deliveries.deliver(delivery.id) is None  # failed: nothing to send
    deliveries.redeliver(delivery)
    assert deliveries.deliver(delivery.id) == DeliveryStatus.SUCCEEDED
    delivery.refresh_from_db()
    assert delivery.attempts == 6 and delivery.delivered_at is not None
    assert [r.message_id for r in receiver.received()] == [delivery.message_id]


def test_the_outbound_policy_refuses_a_receiver_that_is_not_allowlisted(settings_options):
    with WebhookReceiver() as receiver:
        settings_options(outbound_allowlist=())
        webhook = make_webhook(url=f"http://localhost.example.invalid:{receiver.port}/hook")
        # Saved under a name (the check on save only refuses addresses written in the URL)...
        delivery = emit_one(webhook)
        # ...that points at this machine when sent: the policy checks the address it connects to.
        from interfaces.webhooks.models import Webhook

        Webhook.objects.filter(pk=webhook.pk).update(url=receiver.url)
        assert deliveries.deliver(delivery.id) == DeliveryStatus.PENDING
        attempt = delivery.attempt_log.get()
        assert attempt.error == outbound.FAILURE_MESSAGE and attempt.status_code is None
        assert receiver.received() == []


def test_a_sweep_resends_a_due_delivery_whose_task_was_lost(receiver):
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    Delivery.objects.filter(id=delivery.id).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert deliveries.sweep_due() == 1
    assert deliveries.sweep_due() == 0  # dispatched just now


def test_secrets_never_reach_the_logs(receiver, caplog, settings_options):
    caplog.set_level(logging.DEBUG)
    webhook = make_webhook(url=receiver.url)
    delivery = emit_one(webhook)
    receiver.fail_next(1)
    deliveries.deliver(delivery.id)
    deliver_when_due(delivery)
    services.rotate_secret(webhook)
    settings_options(outbound_allowlist=())
    deliveries.redeliver(delivery)
    deliveries.deliver(delivery.id)  # refused by the policy: logged as a failure
    text = caplog.text + "".join(repr(record.__dict__) for record in caplog.records)
    secret_body = webhook.secret.removeprefix("whsec_")
    assert caplog.records and secret_body not in text and "whsec_" not in text
