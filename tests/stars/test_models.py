"""Star and Membership validation: a duplicate member, a second leader, a name used twice."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from stars.models import Role
from tests.factories import build_membership, build_star, make_agent, make_membership, make_star

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


def test_a_duplicate_member_is_refused():
    agent = make_agent()
    star = make_star(workers=[agent])
    message = errors_of(build_membership(star, agent, name="again"))["agent"][0]
    assert agent.id in message and "already a member" in message


def test_a_second_leader_is_refused():
    star = make_star(leader=make_agent())
    message = errors_of(build_membership(star, make_agent(), role=Role.LEADER))["role"][0]
    assert "already has a leader" in message


def test_a_member_name_is_unique_in_a_star():
    star = make_star(workers=[make_agent()])
    first = star.memberships.get()
    assert "name" in errors_of(build_membership(star, make_agent(), name=first.name))


def test_the_leader_may_be_edited_without_clashing_with_itself():
    star = make_star(leader=make_agent())
    leader = star.memberships.get(role=Role.LEADER)
    leader.notes = "still the leader"
    leader.full_clean()


def test_an_agent_can_be_in_several_stars():
    agent = make_agent()
    make_star(leader=agent)
    make_star(workers=[agent])
    assert agent.memberships.count() == 2


def test_the_member_name_defaults_to_the_agent_id():
    star = make_star()
    agent = make_agent()
    assert make_membership(star, agent).name == agent.id


def test_a_bad_star_slug_and_config():
    assert "id" in errors_of(build_star("Not A Slug"))
    assert "config" in errors_of(build_star(config=["x"]))


def test_the_database_also_refuses_a_second_leader():
    star = make_star(leader=make_agent())
    with pytest.raises(IntegrityError), transaction.atomic():
        build_membership(star, make_agent(), role=Role.LEADER).save()
