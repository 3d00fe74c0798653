"""A workflow run's spans: its agent steps are child runs under the workflow's span, named by
the GenAI conventions of v1.36.0 by default (``invoke_agent``) and ``invoke_workflow`` with the
``gen_ai_latest_experimental`` opt-in."""

from __future__ import annotations

import pytest

from cosmos.models import Run, RunStatus
from cosmos.services import runs as run_services
from tests.cosmos.test_tracing import execute
from tests.factories import make_agent, make_workflow, workflow_definition
from tests.support.traces import children, run_span, traced

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("opt_in", "operation", "names"),
    [
        ("", "invoke_agent", ("gen_ai.agent.id", "gen_ai.agent.name")),
        ("gen_ai_latest_experimental", "invoke_workflow", ("gen_ai.workflow.name",)),
    ],
)
def test_steps_are_child_run_spans_under_the_workflow_span(opt_in, operation, names):
    first, second = make_agent(), make_agent()
    workflow = make_workflow(definition=workflow_definition(first.id, second.id))
    with traced(environ={"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}) as on:
        run, _ = run_services.start_run("workflow", workflow.id, "go", dispatch=False)
        run = execute(run)
        spans = on.spans()

    assert run.status == RunStatus.SUCCEEDED, run.error
    span = run_span(spans, run.id)
    assert (span["name"], span["attributes"]["gen_ai.operation.name"]) == (f"{operation} {workflow.id}", operation)
    assert all(span["attributes"][name] == workflow.id for name in names)
    steps = Run.objects.filter(parent_id=run.id).order_by("created_at")
    assert [s.target for s in steps] == [first.id, second.id]
    step_spans = [run_span(spans, step.id) for step in steps]
    assert sorted(s["span_id"] for s in children(spans, span)) == sorted(s["span_id"] for s in step_spans)
    for step, step_span in zip(steps, step_spans, strict=True):
        assert step_span["name"] == f"invoke_agent {step.target}"
        assert [c["name"] for c in children(spans, step_span)] == ["chat scripted-offline"]
