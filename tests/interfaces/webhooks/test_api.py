"""``/api/webhooks``: subscriptions (the secret shown once), validation, the delivery log,
redelivery and the test ping; every route refuses a caller without the admin scope."""

from __future__ import annotations

import logging

import pytest

from interfaces.webhooks.models import Delivery, DeliveryStatus, Webhook
from tests.factories import make_agent, make_delivery, make_run, make_webhook
from tests.interfaces.http.conftest import SETTINGS_KEY, assert_error, bearer
from tests.interfaces.http.conftest import keys as keys

pytestmark = pytest.mark.django_db

NO_DELIVERY = 999_999_999


@pytest.fixture(autouse=True)
def auth_on(settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)


def admin(keys) -> dict:
    return bearer(keys.admin)


def create(api_client, keys, **body) -> dict:
    body = {"name": "ops", "url": "https://hooks.example.com/in"} | body
    response = api_client.post("/api/webhooks", body, format="json", **admin(keys))
    assert response.status_code == 201, response.content
    return response.json()


def test_the_secret_is_shown_on_create_and_rotate_only(api_client, keys, caplog):
    caplog.set_level(logging.DEBUG)
    made = create(api_client, keys, events=["run.failed", "run.succeeded"])
    secret = made["secret"]
    assert secret.startswith("whsec_") and Webhook.objects.get(pk=made["id"]).secret == secret
    assert made["events"] == ["run.failed", "run.succeeded"] and made["enabled"] is True
    assert made["caller"].startswith("key:")

    for path in ("/api/webhooks", f"/api/webhooks/{made['id']}"):
        read = api_client.get(path, **admin(keys))
        assert read.status_code == 200 and "secret" not in read.content.decode() and secret not in read.content.decode()
    patched = api_client.patch(f"/api/webhooks/{made['id']}", {"enabled": False}, format="json", **admin(keys))
    assert patched.status_code == 200 and "secret" not in patched.json()

    rotated = api_client.post(f"/api/webhooks/{made['id']}/rotate-secret", **admin(keys))
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != secret and Webhook.objects.get(pk=made["id"]).secret == new
    assert secret[6:] not in caplog.text and new[6:] not in caplog.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "http://127.0.0.1:9/x"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "http://localhost:8080/x"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"events": ["run.exploded"]}, "events"),
        ({"events": "run.failed"}, "events"),
        ({"resource_kind": "spaceship"}, "resource_kind"),
        ({"resource_kind": "agent", "resource_id": "no-such-agent"}, "resource_id"),
        ({"resource_id": "chat"}, "resource_id"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, keys, body, field, settings_options):
    settings_options(outbound_allowlist=())  # the test settings allow 127.0.0.1
    response = api_client.post(
        "/api/webhooks", {"name": "x", "url": "https://h.example.com/"} | body, format="json", **admin(keys)
    )
    error = assert_error(response, 400)
    assert field in error["details"], error
    assert not Webhook.objects.exists()


def test_a_resource_filter_names_an_existing_resource(api_client, keys):
    agent = make_agent()
    made = create(api_client, keys, resource_kind="agent", resource_id=agent.id, events=["run.succeeded"])
    assert (made["resource_kind"], made["resource_id"]) == ("agent", agent.id)


def test_an_allowlisted_loopback_receiver_is_accepted(api_client, keys, settings_options):
    settings_options(outbound_allowlist=("127.0.0.1:8999",))
    assert create(api_client, keys, url="http://127.0.0.1:8999/hook")["url"] == "http://127.0.0.1:8999/hook"


def test_the_delivery_log_pages_filters_and_shows_attempts(api_client, keys):
    webhook = make_webhook()
    run = make_run()
    done = make_delivery(webhook, status=DeliveryStatus.SUCCEEDED, attempts=1, run=run)
    done.attempt_log.create(number=1, started_at=done.created_at, status_code=204, latency_ms=3.5)
    for _ in range(3):
        make_delivery(webhook, status=DeliveryStatus.FAILED, attempts=4)
    make_delivery(make_webhook())  # another subscription's

    page = api_client.get(f"/api/webhooks/{webhook.pk}/deliveries", {"limit": 2}, **admin(keys)).json()
    assert len(page["results"]) == 2 and page["next"]
    second = api_client.get(page["next"], **admin(keys)).json()
    assert len(second["results"]) == 2 and not second["next"]
    failed = api_client.get(f"/api/webhooks/{webhook.pk}/deliveries", {"status": "failed"}, **admin(keys)).json()
    assert len(failed["results"]) == 3 and {row["status"] for row in failed["results"]} == {"failed"}
    bad = api_client.get(f"/api/webhooks/{webhook.pk}/deliveries", {"status": "lost"}, **admin(keys))
    assert_error(bad, 400, "invalid_parameter")
    assert_error(api_client.get(f"/api/webhooks/{webhook.pk}/deliveries", {"cursor": "zz"}, **admin(keys)), 400)

    one = api_client.get(f"/api/webhooks/{webhook.pk}/deliveries/{done.pk}", **admin(keys)).json()
    assert one["message_id"] == done.message_id and one["run"] == str(run.id)
    assert one["attempt_log"] == [
        {
            "number": 1,
            "started_at": one["attempt_log"][0]["started_at"],
            "status_code": 204,
            "latency_ms": 3.5,
            "error": "",
        }
    ]
    assert one["payload"]["type"] == "webhook.test"


def test_redeliver_and_test_queue_a_delivery(api_client, keys):
    webhook = make_webhook()
    failed = make_delivery(webhook, status=DeliveryStatus.FAILED, attempts=9)

    again = api_client.post(f"/api/webhooks/{webhook.pk}/deliveries/{failed.pk}/redeliver", **admin(keys))
    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert again.json()["message_id"] == failed.message_id

    ping = api_client.post(f"/api/webhooks/{webhook.pk}/test", **admin(keys))
    assert ping.status_code == 202
    row = Delivery.objects.get(pk=ping.json()["id"])
    assert (row.event, row.status, row.webhook_id) == ("webhook.test", "pending", webhook.pk)


def test_unknown_rows_are_404s(api_client, keys):
    webhook = make_webhook()
    other = make_delivery(make_webhook())
    missing = "00000000-0000-0000-0000-000000000000"
    for method, path in (
        ("get", f"/api/webhooks/{missing}"),
        ("get", f"/api/webhooks/{missing}/deliveries"),
        ("get", f"/api/webhooks/{webhook.pk}/deliveries/{NO_DELIVERY}"),
        ("get", f"/api/webhooks/{webhook.pk}/deliveries/{other.pk}"),  # another subscription's
        ("post", f"/api/webhooks/{webhook.pk}/deliveries/{other.pk}/redeliver"),
        ("post", f"/api/webhooks/{missing}/rotate-secret"),
        ("post", f"/api/webhooks/{missing}/test"),
    ):
        assert_error(getattr(api_client, method)(path, **admin(keys)), 404)
    assert_error(api_client.get("/api/webhooks/not-a-uuid", **admin(keys)), 404)


def test_every_route_needs_the_admin_scope(api_client, keys):
    webhook = make_webhook()
    delivery = make_delivery(webhook)
    base = f"/api/webhooks/{webhook.pk}"
    calls = [
        ("get", "/api/webhooks"),
        ("post", "/api/webhooks"),
        ("get", base),
        ("patch", base),
        ("put", base),
        ("delete", base),
        ("post", f"{base}/rotate-secret"),
        ("post", f"{base}/test"),
        ("get", f"{base}/deliveries"),
        ("get", f"{base}/deliveries/{delivery.pk}"),
        ("post", f"{base}/deliveries/{delivery.pk}/redeliver"),
    ]
    for method, path in calls:
        assert_error(getattr(api_client, method)(path, format="json"), 401)
        for key in (keys.read, keys.run):  # reads too: a subscription says where data goes
            assert_error(getattr(api_client, method)(path, format="json", **bearer(key)), 403)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING and Delivery.objects.count() == 1
    assert Webhook.objects.get(pk=webhook.pk).secret == webhook.secret


def test_a_bad_update_is_a_400_and_changes_nothing(api_client, keys, settings_options):
    settings_options(outbound_allowlist=())
    webhook = make_webhook()
    path = f"/api/webhooks/{webhook.pk}"
    for body in ({"url": "http://10.0.0.1/x"}, {"events": ["nope"]}, {"resource_kind": "agent", "resource_id": "x"}):
        assert_error(api_client.patch(path, body, format="json", **admin(keys)), 400)
    assert_error(api_client.put(path, {"name": "only a name"}, format="json", **admin(keys)), 400)
    after = Webhook.objects.get(pk=webhook.pk)
    assert (after.url, after.events, after.resource_kind, after.name) == (webhook.url, [], "", webhook.name)
