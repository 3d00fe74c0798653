"""One error shape for every error, the edges of every request, CORS and the access log."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import InterfaceError, OperationalError
from rest_framework.decorators import action

from interfaces.edge.middleware import RequestContextMiddleware
from interfaces.http.viewsets import ResourceViewSet
from stars.models import StarMessage
from tests.factories import make_agent
from tests.support.registry import temporarily

from .conftest import SETTINGS_KEY, assert_error, bearer


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_404_outside_drf_has_the_error_shape(client, settings, debug):
    settings.DEBUG = debug
    assert_error(client.get("/api/no-such-thing"), 404, "not_found")
    assert_error(client.get("/no-such-page"), 404, "not_found")
    assert_error(client.get("/api/runs/not-a-uuid"), 404, "not_found")


@pytest.mark.django_db
def test_405_has_the_error_shape_and_the_allow_header(api_client):
    response = api_client.delete("/api/agents")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]
    assert_error(api_client.post("/health"), 405, "method_not_allowed")


@pytest.mark.django_db
def test_413_names_the_limit_before_anything_reads_the_body(api_client, settings_options):
    settings_options(max_body_bytes=1024)
    agent = make_agent()
    response = api_client.post(f"/api/agents/{agent.id}/run", {"input": "x" * 2000}, format="json")
    error = assert_error(response, 413, "payload_too_large")
    assert "1024 bytes" in error["message"] and error["details"] == {"limit_bytes": 1024}


@pytest.mark.django_db
def test_415_has_the_error_shape(api_client):
    agent = make_agent()
    response = api_client.post(f"/api/agents/{agent.id}/run", "input=hi", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


class Exploding(ResourceViewSet):
    resource_name = "exploding"

    @action(detail=False, methods=["get"])
    def boom(self, request, *args, **kwargs):
        raise RuntimeError("kaboom")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_500_has_the_error_shape_and_hides_the_exception(client, settings, debug):
    settings.DEBUG = debug
    client.raise_request_exception = False
    with temporarily(StarMessage, Exploding):
        response = client.get("/api/exploding/boom")
    error = assert_error(response, 500, "internal_error")
    assert "kaboom" not in error["message"]


class LosingTheDatabase(ResourceViewSet):
    resource_name = "unreachable"

    @action(detail=False, methods=["get"])
    def query(self, request, *args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.9 failed: Connection refused")


@pytest.mark.django_db
def test_an_unreachable_database_is_a_503_to_retry_not_a_500(client):
    with temporarily(StarMessage, LosingTheDatabase):
        response = client.get("/api/unreachable/query")
    error = assert_error(response, 503, "unavailable")
    assert "10.0.0.9" not in error["message"]
    assert int(response["Retry-After"]) > 0


def test_outside_drf_an_unreachable_database_is_a_503_too(rf):
    middleware = RequestContextMiddleware(lambda request: None)
    response = middleware.process_exception(rf.get("/agui/agents/a"), InterfaceError("connection already closed"))
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert json.loads(response.content)["error"]["code"] == "unavailable"
    assert middleware.process_exception(rf.get("/admin/"), InterfaceError()) is None  # HTML pages for people
    assert middleware.process_exception(rf.get("/agui/agents/a"), RuntimeError()) is None  # a 500 stays a 500


@pytest.mark.django_db
def test_a_trailing_slash_reaches_the_same_route(api_client):
    agent = make_agent()
    assert api_client.get("/api/agents/").json()["count"] == 1
    assert api_client.get(f"/api/agents/{agent.id}/").json()["id"] == agent.id
    assert api_client.get("/api/").json()["resources"]["agents"].endswith("/api/agents")
    assert api_client.post(f"/api/agents/{agent.id}/run/", {"input": "x"}, format="json").status_code == 202


@pytest.mark.django_db
def test_cors_preflight_works_with_auth_on(client, auth_on, settings):
    from .test_cors import AUTH_ON, cors_settings

    for name, value in cors_settings(**AUTH_ON).items():  # CORS as settings.py computes it with auth on
        setattr(settings, name, value)
    response = client.options(
        "/api/agents/x/run",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] in ("*", "https://app.example.com")
    allowed = response["Access-Control-Allow-Headers"]
    assert "authorization" in allowed and "idempotency-key" in allowed and "last-event-id" in allowed
    # and the real request carries the CORS header too, even when refused
    refused = client.get("/api/agents", HTTP_ORIGIN="https://app.example.com")
    assert refused.status_code == 401 and refused.has_header("Access-Control-Allow-Origin")


@pytest.mark.django_db
def test_request_id_and_one_access_line_per_request(api_client, caplog):
    with caplog.at_level(logging.INFO, logger="asteros.access"):
        response = api_client.get("/api/agents", HTTP_X_REQUEST_ID="req-123")
    assert response["X-Request-ID"] == "req-123"
    lines = [r for r in caplog.records if r.name == "asteros.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.path, line.status) == ("GET", "/api/agents", 200)
    assert isinstance(line.ms, float) and line.request_id == "req-123"
    generated = api_client.get("/api/agents", HTTP_X_REQUEST_ID="x" * 100)["X-Request-ID"]
    assert len(generated) == 32 and generated != "x" * 100


@pytest.mark.django_db
def test_the_access_line_of_a_run_carries_its_run_id(api_client, caplog):
    agent = make_agent()
    with caplog.at_level(logging.INFO, logger="asteros.access"):
        run_id = api_client.post(f"/api/agents/{agent.id}/run", {"input": "x"}, format="json").json()["id"]
    assert [r.run_id for r in caplog.records if r.name == "asteros.access"] == [run_id]


@pytest.mark.django_db
def test_keys_are_never_logged(api_client, keys, auth_on, caplog):
    with caplog.at_level(logging.DEBUG):
        api_client.get("/api/agents", **bearer(keys.read))
        api_client.get("/api/agents", HTTP_X_API_KEY=SETTINGS_KEY)
        api_client.get("/api/agents", **bearer("ak_0000_wrong-key-material"))
        api_client.get("/api/agents", HTTP_AUTHORIZATION="Bearer short")
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (keys.read, SETTINGS_KEY, "wrong-key-material"):
        assert secret not in text
