"""The admin's History of a definition: its revisions, a diff between two, and a restore."""

from __future__ import annotations

import pytest

from cosmos.models import Agent
from cosmos.services import revisions
from tests.factories import make_agent, make_membership, make_star, make_template, make_workflow, workflow_definition

pytestmark = pytest.mark.django_db(transaction=True)


def history(kind: str) -> str:
    app, model = {"agent": ("cosmos", "agent"), "template": ("cosmos", "agenttemplate")}.get(kind, (f"{kind}s", kind))
    return f"/admin/{app}/{model}/{{}}/history/"


def test_the_history_lists_every_revision_and_shows_what_the_last_save_changed(staff_client):
    agent = make_agent(system_prompt="first prompt")
    agent.system_prompt = "second prompt"
    agent.save()
    page = staff_client.get(history("agent").format(agent.id))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="revision-list"' in html and "(current)" in html
    assert "-  &quot;system_prompt&quot;: &quot;first prompt&quot;," in html
    assert "+  &quot;system_prompt&quot;: &quot;second prompt&quot;," in html
    chosen = staff_client.get(history("agent").format(agent.id), {"from": 1, "to": 1}).content.decode()
    assert "The two revisions are the same." in chosen
    missing = staff_client.get(history("agent").format(agent.id), {"from": 1, "to": 9}).content.decode()
    assert "has no revision 9" in missing


@pytest.mark.parametrize("kind", ["agent", "template", "star", "workflow"])
def test_every_definition_has_the_history_page_and_restores_from_it(staff_client, kind):
    if kind == "agent":
        row = make_agent(description="one")
    elif kind == "template":
        row = make_template(name="one")
    elif kind == "star":
        row = make_star(description="one")
        make_membership(row, make_agent(), role="leader")
    else:
        row = make_workflow(description="one", definition=workflow_definition(make_agent().id))
    field = "name" if kind == "template" else "description"
    setattr(row, field, "two")
    row.save()
    latest = revisions.latest_number(kind, row.id)
    url = history(kind).format(row.id)
    assert staff_client.get(url).status_code == 200
    restore = url.replace("history/", "revisions/1/restore/")
    assert staff_client.get(restore).status_code == 405  # a restore is a POST with the CSRF token
    answer = staff_client.post(restore)
    assert answer.status_code == 302 and answer["Location"] == url
    row.refresh_from_db()
    assert getattr(row, field) == "one"
    newest = revisions.get_revision(kind, row.id, revisions.latest_number(kind, row.id))
    assert newest.number == latest + 1 and newest.author == "user:staff"
    assert newest.note == "restored from revision 1"


def test_a_restore_that_is_no_longer_valid_says_why_and_changes_nothing(staff_client):
    template = make_template()
    agent = make_agent(template=template, provider="")
    agent.template, agent.provider = None, "scripted"
    agent.save()
    template.delete()
    answer = staff_client.post(f"/admin/cosmos/agent/{agent.id}/revisions/1/restore/", follow=True)
    assert "no longer valid" in answer.content.decode()
    assert Agent.objects.get(id=agent.id).template_id is None


def test_people_who_are_not_staff_see_no_history(client):
    agent = make_agent()
    assert client.get(f"/admin/cosmos/agent/{agent.id}/history/").status_code == 302
    assert client.post(f"/admin/cosmos/agent/{agent.id}/revisions/1/restore/").status_code == 302
    assert revisions.latest_number("agent", agent.id) == 1
