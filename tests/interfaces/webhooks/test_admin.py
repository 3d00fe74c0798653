"""Webhooks in the admin: the secret shown once after the add form, rotate, test, the delivery
log and its redeliver action."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from interfaces.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Webhook
from tests.factories import make_delivery, make_run, make_webhook

pytestmark = pytest.mark.django_db


def webhook_form(**fields) -> dict:
    return {"name": "ops", "url": "https://hooks.example.com/in", "resource_kind": "", "resource_id": ""} | fields


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_add_form_shows_the_secret_once(staff_client):
    response = staff_client.post(
        reverse("admin:webhooks_webhook_add"), webhook_form(events=["run.failed"], enabled="on"), follow=True
    )
    assert response.status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.events == ["run.failed"] and webhook.caller == "user:staff"
    assert any(webhook.secret in message for message in shown(response))
    page = staff_client.get(reverse("admin:webhooks_webhook_change", args=[webhook.pk])).content.decode()
    assert webhook.secret not in page and webhook.secret[6:] not in page
    assert "Delivery log" in page


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"url": "http://10.1.2.3/hook"}, "outbound policy refuses"),
        ({"resource_kind": "agent", "resource_id": "nobody"}, "No agent 'nobody'"),
        ({"resource_kind": "rocket"}, "Unknown kind"),
    ],
)
def test_the_add_form_shows_validation_errors(staff_client, fields, says):
    response = staff_client.post(reverse("admin:webhooks_webhook_add"), webhook_form(**fields))
    errors = response.context["adminform"].form.errors
    assert response.status_code == 200 and says in " ".join(str(e) for es in errors.values() for e in es)
    assert not Webhook.objects.exists()


def test_rotate_and_test_actions(staff_client):
    webhook = make_webhook()
    old = webhook.secret
    changelist = reverse("admin:webhooks_webhook_changelist")
    response = staff_client.post(
        changelist, {"action": "rotate_secrets", "_selected_action": [webhook.pk]}, follow=True
    )
    new = Webhook.objects.get().secret
    assert new != old and any(new in message for message in shown(response))
    staff_client.post(changelist, {"action": "send_tests", "_selected_action": [webhook.pk]})
    assert Delivery.objects.get(webhook=webhook).event == "webhook.test"


def test_the_delivery_log_shows_attempts_and_redelivers(staff_client):
    run = make_run()
    delivery = make_delivery(status=DeliveryStatus.FAILED, attempts=3, last_status_code=500, run=run)
    delivery.attempt_log.create(
        number=3, started_at=delivery.created_at, status_code=500, error="The receiver answered 500."
    )
    page = staff_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()
    assert "The receiver answered 500." in page and str(run.id) in page
    listing = staff_client.get(reverse("admin:webhooks_delivery_changelist"), {"status__exact": "failed"})
    assert delivery.message_id in listing.content.decode() or str(run.id) in listing.content.decode()

    staff_client.post(
        reverse("admin:webhooks_delivery_changelist"), {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None


def test_latencies_are_shown_in_whole_units(staff_client):
    delivery = make_delivery(last_latency_ms=1234.5, attempts=1)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), latency_ms=850.4)
    listing = staff_client.get(reverse("admin:webhooks_delivery_changelist")).content.decode()
    assert "1 s" in listing and "1234.5" not in listing
    page = staff_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()
    assert "850 ms" in page and "850.4" not in page
