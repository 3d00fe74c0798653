"""The OpenAPI schema validates with no warnings, and a bounded schemathesis run over all of it
finds no 5xx and no response that breaks the schema."""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
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
# The whole run stays well under a minute (48 operations x MAX_EXAMPLES requests, in-process).
DEADLINE_SECONDS = 60.0
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
def api_schema(db):
    # A finished run, so the run routes are sometimes exercised with an id that exists. No queued
    # run and no agent: nothing here may start a stream or a ?wait that has no worker to end it.
    make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "RUN_FINISHED"])
    schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", get_wsgi_application())
    # /health answers 503 while no worker is seen: a status, not a server error (tested elsewhere).
    return schema.exclude(path="/health")


schema = schemathesis.pytest.from_fixture("api_schema")
_started = time.monotonic()


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_conforms_to_its_schema(case):
    if time.monotonic() - _started > DEADLINE_SECONDS * 3:
        pytest.skip("the schemathesis time budget is spent")
    response = case.call()
    case.validate_response(response, checks=CHECKS)
