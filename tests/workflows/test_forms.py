"""The admin's workflow editor (pretty JSON, errors per step) and the API: both refuse what
``full_clean()`` refuses, with the same messages."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.urls import reverse

from tests.factories import make_agent, make_workflow
from workflows.forms import EMPTY_DEFINITION, WorkflowForm
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

BROKEN = {
    "steps": [
        {"name": "research", "type": "agent", "agent": "ghost"},
        {
            "name": "fan",
            "type": "parallel",
            "branches": [{"name": "write", "type": "agent", "agent": "writer", "prompt": "{{ steps.later.output }}"}],
        },
        {"name": "later", "type": "loop", "steps": [{"name": "again", "type": "agent", "agent": "writer"}]},
    ]
}
EXPECTED = [
    "Step 'research': unknown agent 'ghost'.",
    "Step 'write': 'prompt' refers to step 'later', which does not run before it.",
    "Step 'later': a loop needs 'max_iterations' (1 to 1000) so that it always ends.",
]


@pytest.fixture(autouse=True)
def writer():
    return make_agent("writer")


def form_data(definition, **fields) -> dict:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return {"id": "wf", "name": "", "description": "", "definition": text, "enabled": "on", **fields}


def test_the_form_shows_every_error_and_groups_them_under_their_steps():
    form = WorkflowForm(data=form_data(BROKEN))
    assert not form.is_valid()
    assert form.errors["definition"] == EXPECTED
    page = str(form["definition"])
    assert '<code>research</code> agent → ghost<div class="errornote"' in page
    assert "unknown agent &#x27;ghost&#x27;.</div>" in page
    assert 'branch &#x27;write&#x27;:<ul><li><code>write</code> agent → writer<div class="errornote"' in page
    assert "a loop needs &#x27;max_iterations&#x27;" in page


def test_a_json_syntax_error_says_where():
    form = WorkflowForm(data=form_data('{\n  "steps": [\n    {"name": "a",}\n  ]\n}'))
    assert not form.is_valid()
    assert form.errors["definition"] == [
        "This is not valid JSON: Expecting property name enclosed in double quotes (line 3, column 18)."
    ]
    assert "{&quot;name&quot;: &quot;a&quot;,}" in str(form["definition"])  # what was typed is kept for fixing


def test_the_definition_is_pretty_printed_and_outlined():
    workflow = make_workflow(
        definition={"steps": [{"name": "a", "type": "agent", "agent": "writer", "prompt": "é {{ input }}"}]}
    )
    page = str(WorkflowForm(instance=workflow)["definition"])
    assert "{\n  &quot;steps&quot;: [\n    {\n      &quot;name&quot;: &quot;a&quot;" in page
    assert "é {{ input }}" in page  # not escaped to \\u00e9
    assert "<code>a</code> agent → writer" in page
    assert 'rows="12"' in page and "monospace" in page


def test_the_form_lists_the_functions_in_its_help():
    assert "Functions: join, parse_json, set_state" in WorkflowForm().fields["definition"].help_text


def test_the_admin_uses_the_editor_and_refuses_broken_definitions(staff_client):
    response = staff_client.post(reverse("admin:workflows_workflow_add"), form_data(BROKEN))
    assert response.status_code == 200
    errors = [str(e) for e in response.context["adminform"].form.errors["definition"]]
    assert errors == EXPECTED
    assert not Workflow.objects.exists()

    valid = {"steps": [{"name": "a", "type": "agent", "agent": "writer"}]}
    response = staff_client.post(reverse("admin:workflows_workflow_add"), form_data(valid))
    assert response.status_code == 302
    page = staff_client.get(reverse("admin:workflows_workflow_change", args=["wf"])).content.decode()
    assert "asteros-definition" in page and "<code>a</code> agent → writer" in page


def test_the_api_refuses_broken_definitions_with_the_same_messages(api_client):
    response = api_client.post("/api/workflows", {"id": "wf", "definition": BROKEN}, format="json")
    assert response.status_code == 400, response.content
    body = json.dumps(response.json())
    for message in EXPECTED:
        assert json.dumps(message)[1:-1] in body
    assert not Workflow.objects.exists()

    valid = {"steps": [{"name": "a", "type": "agent", "agent": "writer"}]}
    assert api_client.post("/api/workflows", {"id": "wf", "definition": valid}, format="json").status_code == 201


def test_a_new_workflow_starts_from_the_empty_definition_never_null(staff_client):
    page = staff_client.get(reverse("admin:workflows_workflow_add")).content.decode()
    box = re.search(r'<textarea name="definition"[^>]*>(.*?)</textarea>', page, re.S)
    assert box is not None
    assert 'data-asteros-json="true"' in box.group(0)  # the editor that checks as it is typed
    assert json.loads(html.unescape(box.group(1))) == EMPTY_DEFINITION == {"steps": []}
    assert "asteros/json_editor.js" in page
    # Saved as it is, the empty definition says what it lacks; an empty box is not taken as null.
    for sent in (json.dumps(EMPTY_DEFINITION), ""):
        response = staff_client.post(reverse("admin:workflows_workflow_add"), form_data(sent))
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors["definition"]
        assert any("non-empty 'steps' list" in str(error) or "required" in str(error) for error in errors), errors
        assert "null" not in str(errors)
    assert not Workflow.objects.exists()
