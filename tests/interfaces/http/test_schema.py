"""The OpenAPI schema validates with no warnings, and a bounded schemathesis run over all of it
finds no 5xx and no response that breaks the schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cosmos.models import RunStatus
from tests.factories import make_run

MAX_EXAMPLES = 12
# About 20 s here (48 operations x MAX_EXAMPLES requests, in-process); the guard allows for a busy CI.
DEADLINE_SECONDS = 90.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/agents/{id}/run:" in text and "/api/runs/{id}/events:" in text


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema").status_code == 200
    assert client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["openapi"].startswith("3.")
    assert b"swagger" in client.get("/api/docs/").content.lower()


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, without closing the test's database connection after each request
    (as Django's own test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.django_db
def test_the_api_conforms_to_its_schema(wsgi_app):
    # A finished run, so the run routes are sometimes exercised with an id that exists. No queued
    # run and no agent: nothing here may start a stream or a ?wait that has no worker to end it.
    make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "RUN_FINISHED"])
    schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", wsgi_app)
    started = time.monotonic()
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/health":
            continue  # 503 while no worker is seen is a status, not a server error (tested elsewhere)

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            case.validate_response(response, checks=CHECKS)

        check()
        tested.append(operation.label)
        assert time.monotonic() - started < DEADLINE_SECONDS, f"over the time budget after {len(tested)} operations"
    assert len(tested) >= 45
