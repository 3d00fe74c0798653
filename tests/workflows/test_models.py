"""Workflow definitions are validated on save: each error names the step at fault."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from interfaces.demo import DEMO_WORKFLOW
from tests.factories import build_workflow, make_workflow, workflow_definition
from workflows.validation import STEP_TYPES, validate_definition

pytestmark = pytest.mark.django_db


def definition_errors(definition) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        build_workflow(definition=definition).full_clean()
    return caught.value.message_dict["definition"]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ([], "JSON object"),
        ("steps", "JSON object"),
        ({}, "non-empty 'steps'"),
        ({"steps": []}, "non-empty 'steps'"),
        ({"steps": {"name": "a"}}, "non-empty 'steps'"),
        ({"steps": ["a"]}, "Step #1 must be an object"),
        ({"steps": [{"type": "agent"}]}, "Step #1 needs a 'name'"),
        ({"steps": [{"name": "a", "type": "teleport"}]}, "Step 'a': unknown type 'teleport'"),
        (
            {"steps": [{"name": "a", "type": "agent"}, {"name": "a", "type": "agent"}]},
            "Step 'a': the name is used twice",
        ),
    ],
)
def test_definition_errors(definition, expected):
    assert any(expected in message for message in definition_errors(definition))


def test_every_error_is_reported_at_once():
    steps = [{"name": "a", "type": "x"}, {"type": "agent"}, {"name": "a", "type": "agent"}]
    assert len(definition_errors({"steps": steps})) == 3


def test_every_step_type_is_accepted():
    steps = [{"name": f"s{i}", "type": step_type} for i, step_type in enumerate(STEP_TYPES)]
    assert validate_definition({"steps": steps}) == []


def test_valid_workflows_save():
    workflow = make_workflow(definition=workflow_definition("agent-1", "agent-2"))
    assert workflow.name == workflow.id
    assert validate_definition(DEMO_WORKFLOW) == []


def test_a_bad_slug_is_refused():
    with pytest.raises(ValidationError) as caught:
        build_workflow("Bad Slug!").full_clean()
    assert "id" in caught.value.message_dict
