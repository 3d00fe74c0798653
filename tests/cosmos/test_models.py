"""Model-level validation of agent templates and agents (``full_clean()``, as the admin runs it)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from cosmos.models import Run, RunStatus, Source
from tests.factories import add_event, build_agent, build_template, make_agent, make_run, make_template

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize("bad", ["Has-Capitals", "with space", "-leading", "trailing-", "x" * 65, "dots.in.id", "é"])
def test_a_bad_slug_is_refused(bad):
    assert any("lower-case letters" in message for message in errors_of(build_agent(bad))["id"])


@pytest.mark.parametrize("good", ["a", "agent-1", "chat_agent", "x" * 64])
def test_good_slugs_pass(good):
    build_agent(good).full_clean()


def test_an_unknown_tool_is_named():
    message = errors_of(build_agent(tools=["calculator", "teleport"]))["tools"][0]
    assert "teleport" in message and "calculator" in message  # the unknown one, and the known ones


def test_tools_must_be_a_list_of_names():
    assert "list of tool names" in errors_of(build_agent(tools="calculator"))["tools"][0]
    assert "list of tool names" in errors_of(build_agent(tools=[1]))["tools"][0]


def test_a_tool_listed_twice_is_refused():
    assert "twice" in errors_of(build_agent(tools=["calculator", "calculator"]))["tools"][0]


def test_an_unknown_provider_is_named_with_the_known_ones():
    message = errors_of(build_agent(provider="skynet"))["provider"][0]
    assert "'skynet'" in message and "scripted" in message and "anthropic" in message


def test_a_provider_is_needed_here_or_on_the_template():
    assert "provider" in errors_of(build_agent(provider=""))
    build_agent(provider="", template=make_template(provider="scripted")).full_clean()


def test_parameters_and_metadata_must_be_objects():
    errors = errors_of(build_agent(parameters=[1], metadata="x"))
    assert set(errors) >= {"parameters", "metadata"}


def test_template_validation():
    assert "provider" in errors_of(build_template(provider="nope"))
    assert "tools" in errors_of(build_template(tools=["nope"]))
    assert "id" in errors_of(build_template("Bad Id"))


def test_a_valid_agent_saves_with_defaults():
    agent = make_agent("helper", tools=["calculator", "current_time"])
    assert agent.name == "helper", "the name defaults to the id"
    assert agent.source == Source.DATABASE and agent.enabled
    assert agent.created_at and agent.updated_at


def test_the_id_is_unique():
    make_agent("twin")
    assert "id" in errors_of(build_agent("twin"))


def test_run_defaults_and_helpers():
    run = make_run(events=["RUN_STARTED", "TEXT_MESSAGE_START"])
    assert run.status == RunStatus.QUEUED and not run.is_terminal and run.duration_seconds is None
    assert list(run.events.values_list("seq", flat=True)) == [1, 2]
    assert add_event(run, "RUN_FINISHED").seq == 3
    done = make_run(status=RunStatus.SUCCEEDED)
    assert done.is_terminal
    assert Run.objects.count() == 2
