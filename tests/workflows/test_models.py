"""The Workflow model validates its definition on save (``full_clean()``); each error names the
step at fault. The full rules of ``workflows.validation`` are tested with the workflow engine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import build_workflow, make_agent, make_workflow, workflow_definition

pytestmark = pytest.mark.django_db


def definition_errors(definition) -> str:
    with pytest.raises(ValidationError) as caught:
        build_workflow(definition=definition).full_clean()
    return "\n".join(caught.value.message_dict["definition"])


def agent_step(name: str, **fields) -> dict:
    return {"name": name, "type": "agent", "agent": "agent-x", "prompt": "{{ input }}"} | fields


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ([], ["JSON object"]),
        ("steps", ["JSON object"]),
        ({}, ["'steps'"]),
        ({"steps": []}, ["'steps'"]),
        ({"steps": {"name": "a"}}, ["'steps'"]),
        ({"steps": [{"type": "agent"}]}, ["Step #1", "'name'"]),
        ({"steps": [{"name": "a", "type": "teleport"}]}, ["Step 'a'", "'teleport'"]),
        ({"steps": [agent_step("a"), agent_step("a")]}, ["Step 'a'", "twice"]),
        ({"steps": [agent_step("a", agent="nobody")]}, ["Step 'a'", "'nobody'"]),
    ],
    ids=["list", "text", "no-steps", "empty-steps", "steps-not-a-list", "no-name", "bad-type", "dup-name", "no-agent"],
)
def test_definition_errors_name_the_step(definition, expected):
    make_agent("agent-x")
    errors = definition_errors(definition)
    for part in expected:
        assert part in errors


def test_every_error_is_reported_at_once():
    make_agent("agent-x")
    errors = definition_errors(
        {"steps": [agent_step("a", type="teleport"), {"type": "agent"}, agent_step("b", agent="nobody")]}
    )
    assert "'teleport'" in errors and "Step #2" in errors and "'nobody'" in errors


def test_a_valid_workflow_saves():
    first, second = make_agent(), make_agent()
    workflow = make_workflow(definition=workflow_definition(first.id, second.id))
    assert workflow.name == workflow.id, "the name defaults to the id"
    assert [step["agent"] for step in workflow.definition["steps"]] == [first.id, second.id]


def test_a_bad_slug_is_refused():
    with pytest.raises(ValidationError) as caught:
        build_workflow("Bad Slug!").full_clean()
    assert "id" in caught.value.message_dict
