"""The fast read path of the API's serializers gives DRF's own output, field for field."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from rest_framework import serializers

from cosmos.models import Interrupt, Run, Session
from cosmos.services import runs as run_services
from interfaces.http.registry import site
from interfaces.http.serializers import FastReadMixin, RunSerializer
from tests.factories import (
    make_agent,
    make_mcp_server,
    make_remote_agent,
    make_run,
    make_schedule,
    make_star,
    make_template,
    make_webhook,
    make_workflow,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows_of_every_kind():
    """At least one row of every registered resource, with relations set and left empty."""
    template = make_template()
    agent = make_agent(template=template, tools=["calculator"], metadata={"team": "a"})
    worker = make_agent()
    make_star(leader=agent, workers=[worker])
    make_workflow()
    make_remote_agent()
    make_mcp_server(url="https://mcp.example.com/mcp")
    make_schedule(target=agent.id, cron="30 9 * * mon-fri", timezone="Europe/Paris")
    make_webhook(events=["run.failed"], resource_kind="agent", resource_id=agent.id)
    session = Session.objects.create(id="s-1", kind="agent", target=agent.id, messages=[{"role": "user"}])
    parent = make_run(target=agent.id, session=session, status="succeeded", events=["RUN_STARTED", "RUN_FINISHED"])
    make_run(target=agent.id, parent=parent, output={"text": "hi"}, input_tokens=3)


def drf_representation(serializer, instance) -> dict:
    """What DRF's own ``Serializer.to_representation`` gives for the instance."""
    return serializers.Serializer.to_representation(serializer, instance)


def test_every_resource_reads_as_drf_does(rows_of_every_kind):
    request = RequestFactory().get("/api/x")
    checked = 0
    for resource in site.resources():
        serializer_class = resource.serializer_class
        if not issubclass(serializer_class, FastReadMixin):
            continue
        rows = list(resource.model._default_manager.all())
        assert rows, f"no {resource.name} row to compare"
        listing = serializer_class(rows, many=True, context={"request": request})
        assert listing.data == [drf_representation(listing.child, row) for row in rows], resource.name
        checked += 1
    assert checked >= 5


def test_runs_read_as_drf_does(rows_of_every_kind):
    request = RequestFactory().get("/api/runs")
    runs = list(Run.objects.all())
    listing = RunSerializer(runs, many=True, context={"request": request})
    expected = [drf_representation(listing.child, run) for run in runs]
    assert listing.data == expected
    assert any(row["parent"] for row in expected) and any(row["links"] for row in expected)


def test_a_run_read_with_its_tree_flags_reads_as_without_them(rows_of_every_kind, django_assert_num_queries):
    """``with_tree_flags``: the flags spare the queries of a run with no children and no
    interrupts, and change nothing in any run's answer (a parent, a child, one paused)."""
    parent = Run.objects.get(parent__isnull=True, session__isnull=False)
    paused = make_run(status="interrupted")
    Interrupt.objects.create(run=paused, root_run=paused, kind="approval", request={"tool": "calculator"})
    request = RequestFactory().get("/api/runs/x")
    for run in Run.objects.all():
        flagged = run_services.with_tree_flags(Run.objects.filter(id=run.id)).get()
        plain = RunSerializer(run, context={"request": request}).data
        assert RunSerializer(flagged, context={"request": request}).data == plain, run.id
        assert flagged.has_children == (run.id == parent.id)
        assert flagged.has_interrupts == (run.id == paused.id)
    leaf = run_services.with_tree_flags(Run.objects.filter(parent=parent)).get()
    with django_assert_num_queries(0):
        answer = RunSerializer(leaf, context={"request": request}).data
    assert answer["total"]["runs"] == 1 and answer["interrupts"] == []


def test_a_class_of_standard_and_method_fields_reads_by_its_plan_and_others_field_by_field(rows_of_every_kind):
    """The class-wide plan (no field copied per row) only where every field renders alone; the
    per-row fields elsewhere. Both read as DRF does (the tests above)."""
    from interfaces.http.serializers import _read_plan

    assert _read_plan(RunSerializer) is not None
    assert _read_plan(site.get("agents").serializer_class) is not None

    class WithNested(FastReadMixin, serializers.ModelSerializer):
        parent = RunSerializer(read_only=True)

        class Meta:
            model = Run
            fields = ("id", "parent")

    assert _read_plan(WithNested) is None
    child = Run.objects.filter(parent__isnull=False).first()
    request = RequestFactory().get("/api/runs")
    nested = WithNested(child, context={"request": request}).data
    assert nested["parent"] == RunSerializer(child.parent, context={"request": request}).data


def test_fields_are_built_once_per_class_and_copied():
    serializer_class = site.get("agents").serializer_class
    first, second = serializer_class().fields, serializer_class().fields
    assert list(first) == list(second)
    assert all(first[name] is not second[name] for name in first)
