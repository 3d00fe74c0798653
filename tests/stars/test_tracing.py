"""A star run's spans: its members' child runs hang under the span that started them (the
leader's run under the star's, a worker's under the leader's ``delegate`` tool call)."""

from __future__ import annotations

import pytest

from cosmos.models import RunStatus
from cosmos.services import runs as run_services
from tests.cosmos.test_tracing import execute
from tests.stars.helpers import child_of, delegating_leader, make_team, worker
from tests.support.traces import children, run_span, traced

pytestmark = pytest.mark.django_db(transaction=True)


def test_member_runs_are_spans_under_the_span_that_started_them():
    leader = delegating_leader(("research", "Find three facts"))
    star = make_team(leader, {"research": worker("FACTS")})
    with traced() as on:
        run, _ = run_services.start_run("star", star.id, "Plan the launch", dispatch=False)
        run = execute(run)
        spans = on.spans()

    assert run.status == RunStatus.SUCCEEDED, run.error
    star_span = run_span(spans, run.id)
    assert star_span["name"] == f"invoke_agent {star.id}"
    assert star_span["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    (lead,) = child_of(run.id, "lead")
    (research,) = child_of(run.id, "research")
    lead_span, research_span = run_span(spans, lead.id), run_span(spans, research.id)
    assert lead_span in children(spans, star_span)
    (delegate,) = [s for s in children(spans, lead_span) if s["name"] == "execute_tool delegate"]
    assert children(spans, delegate) == [research_span]
    assert research_span["attributes"]["asteros.run.parent_id"] == str(run.id)
    # Each child run keeps the context it was created in, as any run does.
    assert research.trace_context["traceparent"].split("-")[1:3] == [delegate["trace_id"], delegate["span_id"]]
    assert {s["trace_id"] for s in spans if s["trace_id"] == star_span["trace_id"]} == {star_span["trace_id"]}
