"""``cosmos.kinds.resolve_reference``: how a person names what to run (the terminal's
``asteros run``): ``kind:id``, or an id exactly one kind has; the kinds are the catalogue's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cosmos.kinds import ExecutionResult, register_kind, resolve_reference, unregister_kind
from cosmos.services.errors import Invalid, NotFound
from tests.factories import make_agent, make_star, make_workflow
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def named(reference: str) -> tuple[str, str]:
    kind, object_id = resolve_reference(reference)
    return kind.name, object_id


def test_a_prefix_names_the_kind_and_a_bare_id_the_one_kind_that_has_it():
    agent, star, workflow = make_agent(), make_star(), make_workflow()

    assert named(f"star:{star.id}") == ("star", star.id)
    assert named(f"workflow:{workflow.id}") == ("workflow", workflow.id)
    assert named(f"agent:{agent.id}") == ("agent", agent.id)
    assert named(agent.id) == ("agent", agent.id)
    assert named(star.id) == ("star", star.id)
    assert named(workflow.id) == ("workflow", workflow.id)
    # With a prefix the row is not looked up here: starting the run says what is wrong with it.
    assert named("star:nobody") == ("star", "nobody")


def test_an_id_several_kinds_have_is_refused_with_the_choices():
    make_agent("twin")
    make_workflow(id="twin")

    with pytest.raises(Invalid) as refused:
        resolve_reference("twin")

    assert refused.value.code == "ambiguous_target"
    assert refused.value.details == {"choices": ["agent:twin", "workflow:twin"]}
    assert "name one of: agent:twin, workflow:twin" in refused.value.message
    assert named("workflow:twin") == ("workflow", "twin")


def test_an_unknown_id_or_kind_is_refused():
    with pytest.raises(NotFound, match=r"^No agent, star or workflow with id 'nobody'\.$"):
        resolve_reference("nobody")
    with pytest.raises(Invalid) as unknown_kind:
        resolve_reference("team:crew")
    assert unknown_kind.value.code == "unknown_kind"
    assert "known kinds: agent, star, workflow" in unknown_kind.value.message


async def execute_probe(context) -> ExecutionResult:
    return ExecutionResult(output="probed")


@pytest.fixture
def probe_kind() -> Iterator[None]:
    register_kind("probe", execute_probe, lambda _id: None, target_model=Workflow, description="probe")
    try:
        yield
    finally:
        unregister_kind("probe")


def test_a_kind_an_app_registers_is_named_the_same_way(probe_kind):
    workflow = make_workflow()

    assert named(f"probe:{workflow.id}") == ("probe", workflow.id)
    with pytest.raises(Invalid) as refused:
        resolve_reference(workflow.id)  # the probe kind's rows are the workflows' here
    assert refused.value.details == {"choices": [f"workflow:{workflow.id}", f"probe:{workflow.id}"]}
    with pytest.raises(NotFound, match="No agent, star, workflow or probe with id"):
        resolve_reference("nobody")
