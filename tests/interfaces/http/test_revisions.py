"""Revisions on the REST door: who saved what, a diff, a restore, and a run of an older revision."""

from __future__ import annotations

import pytest

from interfaces.keys.models import APIKey
from tests.support.runs import wait_for_run

from .conftest import assert_error, bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_key(auth_on) -> tuple[str, str]:
    key, raw = APIKey.generate("editor", ["admin", "read", "run"])
    return raw, key.prefix


def test_saves_through_the_api_are_revisions_by_the_key_that_made_them(api_client, admin_key):
    raw, prefix = admin_key
    api_client.credentials(**bearer(raw))
    made = api_client.post(
        "/api/agents", {"id": "rev-agent", "provider": "scripted", "system_prompt": "one"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert api_client.patch("/api/agents/rev-agent", {"system_prompt": "two"}, format="json").status_code == 200
    listed = api_client.get("/api/agents/rev-agent/revisions").json()
    assert [r["number"] for r in listed] == [2, 1]
    assert [r["author"] for r in listed] == [f"key:{prefix}"] * 2, listed
    one = api_client.get("/api/agents/rev-agent/revisions/1").json()
    assert one["definition"]["system_prompt"] == "one"
    compared = api_client.get("/api/agents/rev-agent/revisions/compare?from=2&to=1").json()
    assert (compared["from_revision"], compared["to_revision"]) == (1, 2)
    assert compared["changes"] == [{"field": "system_prompt", "before": "one", "after": "two"}]
    restored = api_client.post("/api/agents/rev-agent/revisions/1/restore")
    assert restored.status_code == 200, restored.content
    assert restored.json()["number"] == 3 and restored.json()["note"] == "restored from revision 1"
    assert api_client.get("/api/agents/rev-agent").json()["system_prompt"] == "one"


def test_unknown_and_malformed_revisions_are_clear_errors(api_client, admin_key):
    api_client.credentials(**bearer(admin_key[0]))
    api_client.post("/api/agents", {"id": "rev-missing", "provider": "scripted"}, format="json")
    assert_error(api_client.get("/api/agents/rev-missing/revisions/9"), 404, "not_found")
    assert_error(api_client.post("/api/agents/rev-missing/revisions/9/restore"), 404, "not_found")
    assert_error(api_client.get("/api/agents/rev-missing/revisions/first"), 404)
    assert_error(api_client.get("/api/agents/rev-missing/revisions/compare?from=1"), 400)
    assert_error(api_client.get("/api/agents/rev-missing/revisions/compare?from=1&to=0"), 400)
    assert_error(api_client.get("/api/agents/no-such-agent/revisions"), 404, "not_found")
    for bad in ("two", 0, -3, 1.5, True):
        answer = api_client.post("/api/agents/rev-missing/run", {"input": "hi", "revision": bad}, format="json")
        assert_error(answer, 400)
    assert_error(api_client.post("/api/agents/rev-missing/run", {"input": "hi", "revision": 5}, format="json"), 404)


def test_a_read_key_may_read_revisions_but_not_restore_one(api_client, auth_on):
    raw = APIKey.generate("reader", ["read"])[1]
    from tests.factories import make_agent

    agent = make_agent()
    api_client.credentials(**bearer(raw))
    assert api_client.get(f"/api/agents/{agent.id}/revisions").status_code == 200
    assert_error(api_client.post(f"/api/agents/{agent.id}/revisions/1/restore"), 403, "permission_denied")
    api_client.credentials()
    assert_error(api_client.get(f"/api/agents/{agent.id}/revisions"), 401)


@pytest.mark.usefixtures("embedded_worker")
def test_a_run_may_ask_for_an_older_revision_and_records_the_one_it_ran(api_client):
    api_client.post(
        "/api/agents", {"id": "rev-runs", "provider": "scripted", "parameters": {"reply": "old"}}, format="json"
    )
    api_client.patch("/api/agents/rev-runs", {"parameters": {"reply": "new"}}, format="json")
    older = api_client.post("/api/agents/rev-runs/run", {"input": "hi", "revision": 1}, format="json")
    latest = api_client.post("/api/agents/rev-runs/run", {"input": "hi"}, format="json")
    assert older.status_code == latest.status_code == 202, (older.content, latest.content)
    assert wait_for_run(older.json()["id"]).output == "old"
    assert wait_for_run(latest.json()["id"]).output == "new"
    assert api_client.get(f"/api/runs/{older.json()['id']}").json()["revision"] == 1
    assert api_client.get(f"/api/runs/{latest.json()['id']}").json()["revision"] == 2
