"""The seed's Python API: ``Stars(cosmos, "ChatTeam")`` and its methods, persisted as code rows."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus, Source
from cosmos.services.errors import Conflict, Invalid, NotFound
from stars.models import Membership, Role, Star
from stars.stars import Stars, star_id_for
from tests.factories import make_agent
from tests.stars.helpers import delegating_leader, worker
from tests.support.runs import wait_for_run

pytestmark = pytest.mark.django_db


def test_star_ids_come_from_the_name():
    assert star_id_for("ChatTeam") == "chat-team"
    assert star_id_for("Research squad 2") == "research-squad-2"
    assert star_id_for("HTTPTeam") == "http-team"
    assert Stars(None, "ChatTeam", id="custom").id == "custom"
    with pytest.raises(Invalid):
        star_id_for("!!!")
    with pytest.raises(Invalid):
        Stars(None, "X", mode="chaos")


def test_declaring_a_star_touches_no_database_until_it_is_saved():
    leader, writer = make_agent(), make_agent()
    team = Stars(object(), "ChatTeam", description="Two agents").add_member("leader", leader.id, "leader")
    team.add_member("writer", writer.id, "worker", description="Writes prose")
    assert not Star.objects.filter(id="chat-team").exists()

    star = team.save()

    assert (star.id, star.name, star.source, star.description) == ("chat-team", "ChatTeam", Source.CODE, "Two agents")
    rows = {m.name: (m.agent_id, m.role, m.description) for m in Membership.objects.filter(star=star)}
    assert rows == {"leader": (leader.id, Role.LEADER, ""), "writer": (writer.id, Role.WORKER, "Writes prose")}


def test_saving_again_is_idempotent_and_applies_changes():
    leader, writer = make_agent(), make_agent()
    team = Stars(None, "Idem").add_member("leader", leader.id, "leader").add_member("writer", writer.id)
    team.save()
    again = Stars(None, "Idem").add_member("leader", leader.id, "leader")
    again.add_member("writer", writer.id, description="now described")
    again.save()
    again.save()

    assert Membership.objects.filter(star_id="idem").count() == 2
    assert Membership.objects.get(star_id="idem", name="writer").description == "now described"


def test_members_added_after_saving_are_saved_at_once_and_validated():
    leader = make_agent()
    team = Stars(None, "Live")
    team.save()
    team.add_member("leader", leader.id, "leader")
    assert Membership.objects.filter(star_id="live", name="leader").exists()
    with pytest.raises(Conflict) as error:
        team.add_member("second", make_agent().id, "leader")
    assert error.value.code == "leader_exists"
    with pytest.raises(Invalid):
        team.add_member("ghost", "no-such-agent")


def test_join_leave_members_and_remove_member():
    leader, worker_agent, extra = make_agent(), make_agent(), make_agent()
    team = Stars(None, "Crew").add_member("leader", leader.id, "leader").add_member("hand", worker_agent.id)

    joined = team.join(extra.id, name="extra", description="Spare hands")
    assert joined["name"] == "extra" and joined["status"] == "idle"
    assert [m["name"] for m in team.members()] == ["leader", "hand", "extra"]
    with pytest.raises(Conflict):
        team.join(extra.id)
    team.leave(extra.id)
    team.remove_member("hand")
    assert [m["name"] for m in team.members()] == ["leader"]
    with pytest.raises(NotFound):
        team.remove_member("hand")
    # Saving again does not bring back the member that was removed.
    team.save()
    assert [m["name"] for m in team.members()] == ["leader"]


def test_send_and_broadcast_are_stored_in_the_history():
    team = Stars(None, "Chatty").add_member("leader", make_agent().id, "leader").add_member("w", make_agent().id)

    team.send("leader", "w", "please start")
    team.broadcast("w", "started")

    assert [(m["from"], m["to"], m["content"]) for m in team.messages()] == [
        ("leader", "w", "please start"),
        ("w", "*", "started"),
    ]
    with pytest.raises(Invalid):
        team.send("nobody", "w", "hi")


@pytest.mark.django_db(transaction=True)
def test_run_returns_the_run_and_it_executes(embedded_worker):
    team = Stars(None, "Runner")
    team.add_member("leader", delegating_leader(("w", "help")).id, "leader")
    team.add_member("w", worker("HELPED").id)

    queued = team.run("do the thing")
    assert queued.kind == "star" and queued.target == "runner" and queued.origin == "code"
    run = team.run("do the thing again", wait=30)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "HELPED" in run.output
    assert team.run("as a broadcast", mode="broadcast", wait=30).status == RunStatus.SUCCEEDED
    assert wait_for_run(queued.id).status == RunStatus.SUCCEEDED
