"""The browsable API's run forms start from a body the endpoint accepts: a person who opens
``/api/agents/<id>/run`` in a browser and presses POST starts a run."""

from __future__ import annotations

import html
import json
import re

import pytest

from cosmos.models import Run
from tests.factories import make_agent, make_star, make_workflow

RAW_DATA = re.compile(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', re.S)


def raw_data_form(client, url: str) -> str:
    """The initial content of the page's raw-data form (DRF's ``_content`` textarea)."""
    page = client.get(url, HTTP_ACCEPT="text/html")
    assert page["Content-Type"].startswith("text/html"), page["Content-Type"]
    found = RAW_DATA.search(page.content.decode())
    assert found, "the page has a raw-data form"
    return html.unescape(found.group(1)).strip()


def run_urls() -> list[str]:
    agent = make_agent()
    star = make_star(leader=agent)
    workflow = make_workflow(definition={"steps": [{"name": "a", "type": "agent", "agent": agent.id}]})
    return [f"/api/agents/{agent.id}/run", f"/api/stars/{star.id}/run", f"/api/workflows/{workflow.id}/execute"]


@pytest.mark.django_db
def test_the_run_forms_post_a_body_the_endpoint_accepts(client):
    for url in run_urls():
        initial = raw_data_form(client, url)
        body = json.loads(initial)
        assert body.get("input") or body.get("message"), body

        response = client.post(url, initial, content_type="application/json", HTTP_ACCEPT="application/json")

        assert response.status_code in (201, 202), (url, response.status_code, response.content[:300])
        run = Run.objects.get(id=response.json()["id"])
        assert run.input == {"message": body.get("input") or body.get("message")}


@pytest.mark.django_db
def test_the_resume_form_posts_a_decision(client):
    run_id = "00000000-0000-0000-0000-000000000000"
    initial = raw_data_form(client, f"/api/runs/{run_id}/resume")
    response = client.post(
        f"/api/runs/{run_id}/resume", initial, content_type="application/json", HTTP_ACCEPT="application/json"
    )
    # The body is valid: what is missing is the run, not a field.
    assert response.status_code == 404, response.content
    assert response.json()["error"]["message"] == f"No run with id '{run_id}'."
