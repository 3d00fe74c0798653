"""Membership (join, leave, members), the message history, a star's config, and its team."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from cosmos.models import RunStatus
from cosmos.services.errors import Conflict, Invalid, NotFound, NotRunnable
from stars import services
from stars.collaboration import StarRun
from stars.delegation import delegate_tool, describe_team
from stars.limits import Limits, parse_limits
from stars.models import Membership, Role, StarMessage
from stars.team import load_team
from tests.factories import build_star, make_agent, make_run, make_star
from tests.stars.helpers import make_team

pytestmark = pytest.mark.django_db


def error_of(exc_type, fn, *args, **kwargs):
    with pytest.raises(exc_type) as caught:
        fn(*args, **kwargs)
    return caught.value


# --- join


def test_join_adds_a_member_named_after_its_agent_by_default():
    star = make_star()
    leader, agent = make_agent(), make_agent()

    first = services.join(star.id, leader.id, "leader")
    second = services.join(star.id, agent.id, description="Knows SQL")

    assert (first.name, first.role, first.order) == (leader.id, Role.LEADER, 0)
    assert (second.name, second.role, second.order, second.description) == (agent.id, Role.WORKER, 1, "Knows SQL")
    third = services.join(star.id, make_agent().id, name="analyst")
    assert (third.name, third.order) == ("analyst", 2)


def test_join_refuses_an_unknown_star_or_agent():
    agent = make_agent()
    assert "No star with id 'ghost'" in error_of(NotFound, services.join, "ghost", agent.id).message
    error = error_of(Invalid, services.join, make_star().id, "nobody")
    assert error.code == "unknown_agent" and "No agent with id 'nobody'" in error.message


def test_join_refuses_a_disabled_agent():
    error = error_of(NotRunnable, services.join, make_star().id, make_agent(enabled=False).id)
    assert error.code == "agent_disabled" and "is disabled" in error.message


def test_join_refuses_the_same_agent_twice():
    agent = make_agent()
    star = make_star(workers=[agent])
    error = error_of(Conflict, services.join, star.id, agent.id, name="again")
    assert error.code == "already_member" and "already a member" in error.message


def test_join_refuses_a_name_already_taken():
    star = make_star()
    services.join(star.id, make_agent().id, name="writer")
    error = error_of(Conflict, services.join, star.id, make_agent().id, name="writer")
    assert error.code == "name_taken" and "'writer'" in error.message


def test_join_refuses_a_second_leader():
    star = make_star(leader=make_agent())
    error = error_of(Conflict, services.join, star.id, make_agent().id, "leader")
    assert error.code == "leader_exists" and "already has a leader" in error.message
    assert Membership.objects.filter(star=star).count() == 1


def test_join_refuses_a_bad_role_or_name():
    star = make_star()
    assert error_of(Invalid, services.join, star.id, make_agent().id, "boss").code == "invalid_role"
    assert error_of(Invalid, services.join, star.id, make_agent().id, name="Not A Slug").code == "invalid_name"
    assert not Membership.objects.filter(star=star).exists()


# --- leave


def test_leave_by_agent_id_or_by_name():
    first, second = make_agent(), make_agent()
    star = make_star(workers=[first])
    services.join(star.id, second.id, name="second")

    assert services.leave(star.id, agent_id=first.id).agent_id == first.id
    assert services.leave(star.id, name="second").name == "second"
    assert not Membership.objects.filter(star=star).exists()


def test_leave_needs_exactly_one_of_agent_id_or_name_and_a_member():
    agent = make_agent()
    star = make_star(workers=[agent])
    assert error_of(Invalid, services.leave, star.id).code == "invalid"
    assert error_of(Invalid, services.leave, star.id, agent_id=agent.id, name=agent.id).code == "invalid"
    error = error_of(NotFound, services.leave, star.id, name="ghost")
    assert error.code == "not_a_member" and error.message == f"Star {star.id!r} has no member named 'ghost'."
    error = error_of(NotFound, services.leave, star.id, agent_id="ghost")
    assert error.message == f"Agent 'ghost' is not a member of star {star.id!r}."


def test_the_leader_cannot_leave_while_the_star_has_an_active_run():
    leader, agent = make_agent(), make_agent()
    star = make_star(leader=leader, workers=[agent])
    active = make_run("star", star.id, status=RunStatus.RUNNING)

    error = error_of(Conflict, services.leave, star.id, agent_id=leader.id)
    assert error.code == "star_busy" and str(active.id) in error.message
    services.leave(star.id, agent_id=agent.id)  # a worker may go
    active.status = RunStatus.SUCCEEDED
    active.save()
    services.leave(star.id, agent_id=leader.id)  # and the leader once nothing runs
    assert not Membership.objects.filter(star=star).exists()


# --- members


def test_members_have_lowercase_keys_and_a_live_status():
    leader, writer = make_agent(name="Lead"), make_agent()
    star = make_team(leader, {"writer": writer})
    star_run = make_run("star", star.id, status=RunStatus.RUNNING)
    working = make_run(
        "agent", writer.id, parent=star_run, status=RunStatus.RUNNING, metadata={"star_member": "writer"}
    )
    make_run("agent", leader.id, parent=star_run, status=RunStatus.SUCCEEDED, metadata={"star_member": "lead"})

    members = services.members(star.id)

    assert [m["name"] for m in members] == ["lead", "writer"]
    for member in members:
        assert all(key == key.lower() for key in member)
    lead, busy = members
    assert lead == {
        **lead,
        "agent_id": leader.id,
        "agent_name": "Lead",
        "role": "leader",
        "status": "idle",
        "active_runs": [],
    }
    assert busy["status"] == "busy" and busy["active_runs"] == [str(working.id)]
    assert busy["description"] == "writer is good at writer" and busy["agent_enabled"] is True
    assert error_of(NotFound, services.members, "ghost").code == "not_found"


# --- messages


def test_messages_page_oldest_first_and_filter_by_run():
    agent_a, agent_b = make_agent(), make_agent()
    star = make_team(agent_a, {"b": agent_b})
    run = make_run("star", star.id)
    services.record_message(star.id, "user", "lead", "task", str(run.id))
    services.record_message(star.id, "lead", "b", "do it", str(run.id))
    services.send_message(star.id, "b", "lead", "done, outside a run")

    history = services.messages(star.id)
    assert [m.content for m in history] == ["task", "do it", "done, outside a run"]
    assert list(history.values_list("id", flat=True)) == sorted(history.values_list("id", flat=True))
    assert [m.content for m in services.messages(star.id, run_id=str(run.id))] == ["task", "do it"]
    first = services.message_dict(history[1])
    assert first == {
        "id": first["id"],
        "star": star.id,
        "run": str(run.id),
        "from": "lead",
        "to": "b",
        "content": "do it",
        "created_at": first["created_at"],
    }
    assert services.message_dict(history[2])["run"] is None


def test_send_and_broadcast_check_their_members():
    star = make_team(make_agent(), {"b": make_agent()})

    assert services.broadcast_message(star.id, "lead", "hello all").recipient == "*"
    assert error_of(Invalid, services.send_message, star.id, "ghost", "b", "hi").code == "unknown_member"
    assert "Unknown recipient 'ghost'" in error_of(Invalid, services.send_message, star.id, "b", "ghost", "hi").message
    assert error_of(Invalid, services.send_message, star.id, "b", "b", "hi").code == "invalid"
    assert error_of(Invalid, services.send_message, star.id, "b", "lead", "  ").code == "invalid"
    assert error_of(Invalid, services.broadcast_message, star.id, "*", "hi").code == "unknown_member"
    assert StarMessage.objects.filter(star=star).count() == 1


# --- config and team


def test_the_star_config_is_checked_on_save():
    def config_errors(config) -> list[str]:
        with pytest.raises(ValidationError) as caught:
            build_star(config=config).full_clean()
        return caught.value.message_dict["config"]

    assert "Unknown config key(s): max_worker" in config_errors({"max_worker": 3})[0]
    assert "max_delegations must be a whole number from 1 to 1000" in config_errors({"max_delegations": "ten"})[0]
    assert "max_depth must be from 1 to 10, not 0" in config_errors({"max_depth": 0})[0]
    assert "rounds must be a whole number" in config_errors({"rounds": 1.5})[0]
    assert "member_timeout must be a number" in config_errors({"member_timeout": True})[0]
    build_star(config={"max_delegations": 4, "member_timeout": 2.5, "rounds": 3, "max_depth": 2}).full_clean()
    assert parse_limits({"member_timeout": 2.5}) == Limits(member_timeout=2.5)
    assert parse_limits({}, rounds=5).rounds == 5


def test_a_team_snapshot_knows_which_workers_lead_a_star_and_skips_disabled_agents():
    inner_leader = make_agent()
    inner = make_team(inner_leader, {"w": make_agent()}, leader_name="inner-lead")
    outer = make_team(
        make_agent(), {"team": inner_leader, "solo": make_agent(), "off": make_agent(enabled=False)}, mode="delegate"
    )

    team = load_team(outer.id)

    assert [w.name for w in team.workers] == ["team", "solo"]
    assert team.worker("team").leads_star == inner.id and team.worker("solo").leads_star is None
    assert team.worker(inner_leader.id).name == "team"  # found by agent id too
    assert [m.name for m in team.members] == ["lead", "team", "solo"]


def test_the_delegate_tool_describes_the_workers_and_the_limits():
    star = make_team(make_agent(), {"a": make_agent(), "b": make_agent()}, config={"max_delegations": 4})
    team = load_team(star.id)

    tool = delegate_tool(StarRun(None, team, team.limits(), 1, (star.id,)))  # type: ignore[arg-type]

    assert tool.name == "delegate"
    assert tool.parameters["required"] == ["member", "instruction"]
    assert tool.parameters["properties"]["member"]["enum"] == ["a", "b"]
    assert "- a: a is good at a" in tool.description and "- b: b is good at b" in tool.description
    assert "At most 4 delegations" in tool.description and "in parallel" in tool.description
    assert describe_team(team.workers).count("\n") == 1


@pytest.mark.django_db
def test_the_messages_endpoint_pages_through_the_history_with_a_cursor(api_client):
    star = make_star(leader=make_agent(), workers=[make_agent()])
    for index in range(5):
        StarMessage.objects.create(star=star, sender="lead", recipient="*", content=f"message {index}")

    first = api_client.get(f"/api/stars/{star.id}/messages", {"limit": 2}).json()
    second = api_client.get(first["next"]).json()

    assert [m["content"] for m in first["results"]] == ["message 0", "message 1"]
    assert [m["content"] for m in second["results"]] == ["message 2", "message 3"]
    assert first["results"][0]["from"] == "lead" and first["results"][0]["to"] == "*"
    assert api_client.get(f"/api/stars/{star.id}/messages", {"run": "nope"}).json()["error"]["code"] == "invalid"
