"""The OpenAPI schema validates with no warnings and is served with its docs. The schemathesis
pass over every operation is in test_fuzz_api.py."""

from __future__ import annotations

from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/agents/{id}/run:" in text and "/api/runs/{id}/events:" in text


def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema").status_code == 200
    assert client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["openapi"].startswith("3.")
    assert b"swagger" in client.get("/api/docs/").content.lower()
