"""Keys, scopes, sessions, the reusable ``authenticate_request``, and /health and /metrics access."""

from __future__ import annotations

import hmac

import pytest
from django.utils import timezone

from interfaces.edge import auth
from interfaces.edge.auth import AccessDenied, KeyPrincipal, authenticate_request, require_access
from interfaces.keys.models import APIKey

from .conftest import SETTINGS_KEY, assert_error, bearer


@pytest.mark.django_db
def test_keys_travel_as_bearer_or_x_api_key(api_client, keys, auth_on):
    assert api_client.get("/api/agents", **bearer(keys.read)).status_code == 200
    assert api_client.get("/api/agents", HTTP_X_API_KEY=keys.read).status_code == 200
    assert api_client.get("/api/agents", HTTP_AUTHORIZATION=f"bearer {SETTINGS_KEY}").status_code == 200
    assert_error(api_client.get("/api/agents", HTTP_AUTHORIZATION=f"Basic {SETTINGS_KEY}"), 401)


@pytest.mark.django_db
def test_the_setting_key_is_compared_in_constant_time(api_client, auth_on, monkeypatch):
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert api_client.get("/api/agents", **bearer(SETTINGS_KEY)).status_code == 200
    assert calls


@pytest.mark.django_db
def test_revoked_keys_are_refused_and_last_use_is_recorded(api_client, auth_on):
    key, raw = APIKey.generate("temp", ["read"])
    assert key.last_used_at is None
    assert api_client.get("/api/agents", **bearer(raw)).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at <= timezone.now()
    key.revoked = True
    key.save()
    assert_error(api_client.get("/api/agents", **bearer(raw)), 401, "authentication_failed")


@pytest.mark.django_db
def test_scopes_nest_admin_over_run_over_read(api_client, keys, auth_on):
    agent_url = "/api/agents"
    assert api_client.get(agent_url, **bearer(keys.admin)).status_code == 200
    assert_error(
        api_client.post(agent_url, {"id": "x", "provider": "scripted"}, format="json", **bearer(keys.run)), 403
    )
    created = api_client.post(agent_url, {"id": "x", "provider": "scripted"}, format="json", **bearer(keys.admin))
    assert created.status_code == 201


@pytest.mark.django_db
def test_staff_sessions_use_the_browsable_api_and_others_are_refused(client, staff_client, django_user_model, auth_on):
    page = staff_client.get("/api/agents", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"<html" in page.content.lower()
    assert staff_client.get("/api/agents").status_code == 200
    plain = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(plain)
    assert_error(client.get("/api/agents", HTTP_ACCEPT="application/json"), 403, "permission_denied")


@pytest.mark.django_db
def test_with_auth_off_everything_is_open_and_bad_keys_are_ignored(api_client):
    assert api_client.get("/api/agents").status_code == 200
    assert api_client.get("/api/agents", **bearer("ak_nope_nope")).status_code == 200


@pytest.mark.django_db
def test_authenticate_request_takes_plain_or_asgi_headers(keys, auth_on, django_user_model):
    principal = authenticate_request({"Authorization": f"Bearer {keys.run}"})
    assert isinstance(principal, KeyPrincipal) and principal.has_scope("read") and not principal.has_scope("admin")
    asgi = [(b"x-api-key", SETTINGS_KEY.encode()), (b"host", b"localhost")]
    assert authenticate_request(asgi) is auth.SETTINGS_PRINCIPAL
    assert authenticate_request({}) is None
    with pytest.raises(AccessDenied) as denied:
        authenticate_request({"X-API-Key": "ak_nope"})
    assert denied.value.status == 401
    staff = django_user_model.objects.create_superuser("boss", password="pw")
    assert authenticate_request({}, staff) is staff


@pytest.mark.django_db
def test_require_access_checks_scope_and_resource(keys, auth_on, settings_options):
    assert require_access({"X-API-Key": keys.run}, scope="run").caller.startswith("key:")
    with pytest.raises(AccessDenied) as anonymous:
        require_access({}, scope="read")
    assert (anonymous.value.status, anonymous.value.code) == (401, "not_authenticated")
    with pytest.raises(AccessDenied) as low:
        require_access({"X-API-Key": keys.read}, scope="run")
    assert (low.value.status, low.value.code) == (403, "permission_denied")
    _key, limited = APIKey.generate("limited", ["run"], resources=["agents:a1"])
    require_access({"X-API-Key": limited}, scope="run", resource="agents", object_id="a1")
    with pytest.raises(AccessDenied):
        require_access({"X-API-Key": limited}, scope="run", resource="agents", object_id="a2")
    settings_options(enable_auth=False)
    assert require_access({}, scope="admin") is None


@pytest.mark.django_db
def test_health_liveness_is_public_and_details_are_protected(api_client, keys, auth_on):
    anonymous = api_client.get("/health")
    assert anonymous.status_code in (200, 503) and set(anonymous.json()) == {"status"}
    bad_key = api_client.get("/health", **bearer("ak_0_nope"))
    assert set(bad_key.json()) == {"status"}
    detailed = api_client.get("/health", **bearer(keys.read)).json()
    assert {"status", "name", "version", "mode", "failing", "checks"} <= set(detailed)
    assert set(detailed["checks"]) == {"database", "broker", "live_events", "workers"}


@pytest.mark.django_db
def test_metrics_are_protected_unless_public(api_client, keys, auth_on, settings_options):
    assert_error(api_client.get("/metrics"), 401)
    assert_error(api_client.get("/metrics", **bearer(keys.none)), 403)
    assert api_client.get("/metrics", **bearer(keys.read)).status_code == 200
    settings_options(metrics_public=True)
    public = api_client.get("/metrics")
    assert public.status_code == 200 and public["Content-Type"].startswith("text/plain")
    assert set(api_client.get("/health").json()) > {"status"}
