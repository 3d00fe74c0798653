"""Revisions of definitions: every change recorded once, immutable, and what a run executes."""

from __future__ import annotations

import pytest
from django.db import transaction

from cosmos.models import Revision
from cosmos.services import revisions
from cosmos.services.errors import Invalid, NotFound
from cosmos.services.runs import start_run
from stars.models import Membership
from tests.factories import make_agent, make_membership, make_star, make_template, make_workflow, workflow_definition
from tests.support.runs import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)


def numbers(resource: str, target: str) -> list[int]:
    return list(revisions.list_revisions(resource, target).values_list("number", flat=True))


def test_each_save_that_changes_a_definition_is_one_new_revision_and_one_that_does_not_is_none():
    agent = make_agent(system_prompt="one")
    assert numbers("agent", agent.id) == [1]
    agent.system_prompt = "two"
    agent.save()
    agent.save()  # nothing changed
    assert numbers("agent", agent.id) == [2, 1]
    first, second = (revisions.get_revision("agent", agent.id, n) for n in (1, 2))
    assert first.definition["system_prompt"] == "one" and second.definition["system_prompt"] == "two"


def test_a_template_edit_is_a_new_revision_of_the_template_and_of_each_of_its_agents():
    template = make_template(system_prompt="before")
    agent = make_agent(template=template, provider="")
    assert revisions.get_revision("agent", agent.id, 1).definition["template_definition"]["system_prompt"] == "before"
    template.system_prompt = "after"
    template.save()
    assert numbers("template", template.id) == [2, 1]
    latest = revisions.get_revision("agent", agent.id, 2)
    assert latest.definition["template_definition"]["system_prompt"] == "after"
    assert latest.note == f"template {template.id} revision 2"


def test_a_star_and_its_members_saved_in_one_transaction_are_one_revision():
    leader, worker = make_agent(), make_agent()
    with transaction.atomic():
        star = make_star()
        make_membership(star, leader, role="leader")
        make_membership(star, worker, role="worker")
    assert numbers("star", star.id) == [1]
    members = revisions.get_revision("star", star.id, 1).definition["members"]
    assert [(m["agent"], m["role"]) for m in members] == [(leader.id, "leader"), (worker.id, "worker")]
    Membership.objects.filter(star=star, agent=worker).delete()
    assert numbers("star", star.id) == [2, 1]


def test_the_author_and_the_note_are_recorded():
    with revisions.authored_by("user:alice"):
        agent = make_agent(system_prompt="a")
    with revisions.authored_by(lambda: "key:abc"):
        agent.system_prompt = "b"
        agent.save()
    restored = revisions.restore("agent", agent.id, 1, author="user:bob")
    assert [(r.number, r.author, r.note) for r in revisions.list_revisions("agent", agent.id)] == [
        (3, "user:bob", "restored from revision 1"),
        (2, "key:abc", ""),
        (1, "user:alice", ""),
    ]
    assert restored.number == 3 and restored.definition == revisions.get_revision("agent", agent.id, 1).definition
    agent.refresh_from_db()
    assert agent.system_prompt == "a"


def test_restoring_a_star_brings_its_members_back():
    leader, worker = make_agent(), make_agent()
    with transaction.atomic():
        star = make_star()
        make_membership(star, leader, role="leader")
        make_membership(star, worker, role="worker", description="counts")
    Membership.objects.filter(star=star, agent=worker).delete()
    revisions.restore("star", star.id, 1)
    assert sorted(Membership.objects.filter(star=star).values_list("agent_id", "role", "description")) == sorted(
        [(leader.id, "leader", ""), (worker.id, "worker", "counts")]
    )
    assert numbers("star", star.id) == [3, 2, 1]


def test_a_revision_that_is_no_longer_valid_is_refused_on_restore_and_nothing_changes():
    template = make_template()
    agent = make_agent(template=template, provider="")
    agent.template = None
    agent.provider = "scripted"
    agent.save()
    template.delete()
    with pytest.raises(Invalid):
        revisions.restore("agent", agent.id, 1)
    agent.refresh_from_db()
    assert agent.template_id is None and numbers("agent", agent.id) == [2, 1]


def test_unknown_or_malformed_revision_numbers_are_clear_errors():
    agent = make_agent()
    with pytest.raises(NotFound, match="has no revision 7"):
        revisions.get_revision("agent", agent.id, 7)
    for bad in ("x", 0, -1, True, 1.5, None):
        with pytest.raises(Invalid):
            revisions.get_revision("agent", agent.id, bad)
    with pytest.raises(NotFound):
        start_run("agent", agent.id, "hi", revision=9, dispatch=False)
    assert Revision.objects.filter(target=agent.id).count() == 1


def test_the_revisions_are_immutable_through_the_comparison_too():
    agent = make_agent(system_prompt="a", tools=[])
    agent.system_prompt, agent.tools = "b", ["calculator"]
    agent.save()
    comparison = revisions.compare("agent", agent.id, 2, 1)
    assert (comparison.older.number, comparison.newer.number) == (1, 2)
    assert {c.field: (c.before, c.after) for c in comparison.changes} == {
        "system_prompt": ("a", "b"),
        "tools": ([], ["calculator"]),
    }
    assert '-  "system_prompt": "a",' in comparison.text_diff and '+  "system_prompt": "b",' in comparison.text_diff


# --- what runs execute


def test_a_run_pins_the_latest_revision_when_it_is_accepted_and_may_ask_for_another():
    agent = make_agent(parameters={"reply": "first"})
    agent.parameters = {"reply": "second"}
    agent.save()
    latest, _ = start_run("agent", agent.id, "hi", dispatch=False)
    older, _ = start_run("agent", agent.id, "hi", dispatch=False, revision=1)
    assert (latest.revision, older.revision) == (2, 1)


@pytest.mark.usefixtures("embedded_worker")
def test_an_edit_after_a_run_was_accepted_does_not_change_what_it_executes():
    agent = make_agent(parameters={"reply": "as accepted"})
    run, _ = start_run("agent", agent.id, "hi", dispatch=False)
    agent.parameters = {"reply": "edited later"}
    agent.save()
    from cosmos.dispatch import dispatch_run

    dispatch_run(run.id)
    assert wait_for_run(run.id, timeout=30).output == "as accepted"
    again, _ = start_run("agent", agent.id, "hi", revision=1)
    assert wait_for_run(again.id, timeout=30).output == "as accepted"
    latest, _ = start_run("agent", agent.id, "hi")
    assert wait_for_run(latest.id, timeout=30).output == "edited later"


@pytest.mark.usefixtures("embedded_worker")
@pytest.mark.parametrize("kind", ["agent", "star", "workflow"])
def test_a_run_accepted_before_its_definition_was_deleted_runs_on_its_revision(kind):
    agent = make_agent(parameters={"reply": "still here"})
    if kind == "agent":
        target, model = agent.id, type(agent)
    elif kind == "star":
        with transaction.atomic():
            star = make_star()
            make_membership(star, agent, role="leader")
        target, model = star.id, type(star)
    else:
        workflow = make_workflow(definition=workflow_definition(agent.id))
        target, model = workflow.id, type(workflow)
    run, _ = start_run(kind, target, "hello", dispatch=False)
    assert run.revision == 1
    model.objects.filter(pk=target).delete()
    with pytest.raises(NotFound):
        start_run(kind, target, "hello", dispatch=False)
    from cosmos.dispatch import dispatch_run

    dispatch_run(run.id)
    finished = wait_for_run(run.id, timeout=30)
    assert finished.status == "succeeded", (finished.status, finished.error)
    assert "still here" in str(finished.output)


@pytest.mark.usefixtures("embedded_worker")
def test_a_workflow_run_executes_its_pinned_definition():
    first, second = make_agent(parameters={"reply": "from first"}), make_agent(parameters={"reply": "from second"})
    workflow = make_workflow(definition=workflow_definition(first.id))
    run, _ = start_run("workflow", workflow.id, "go", dispatch=False)
    workflow.definition = workflow_definition(second.id)
    workflow.save()
    from cosmos.dispatch import dispatch_run

    dispatch_run(run.id)
    finished = wait_for_run(run.id, timeout=30)
    assert finished.status == "succeeded", finished.error
    assert "from first" in str(finished.output) and "from second" not in str(finished.output)
