"""Runs' spans, in this process (the SDK's in-memory exporter, this process's run engine): names
and GenAI attributes, parent links through ``Run.trace_context``, token usage, failures, a
retried attempt, the semantic conventions' opt-in, and nothing at all when tracing is off."""

from __future__ import annotations

import pytest

from cosmos import tracing
from cosmos.engine import get_engine
from cosmos.models import Run, RunStatus
from cosmos.services import leases
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.traces import children, run_span, traced

pytestmark = pytest.mark.django_db(transaction=True)

CALCULATOR = {"tools": ["calculator"]}


def execute(run: Run) -> Run:
    """The run executed to its end by this process's engine (whatever the suite's mode)."""
    get_engine().submit(str(run.id)).result(timeout=30)
    return Run.objects.get(id=run.id)


def start_under(tracer, agent, text: str = "what is 6*7?") -> tuple[Run, dict]:
    """A run started inside a caller's span (as a door's request span would be); the span's record."""
    with tracer.start_as_current_span("caller") as caller:
        run, _ = run_services.start_run("agent", agent.id, text, dispatch=False)
    context = caller.get_span_context()
    return run, {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def test_an_agent_run_is_a_span_under_its_callers_with_a_chat_span_per_model_call_and_its_tool_call():
    agent = make_agent(**CALCULATOR)
    with traced() as on:
        run, caller = start_under(on.tracer, agent)
        assert run.trace_context["traceparent"].startswith(f"00-{caller['trace_id']}-{caller['span_id']}-")
        run = execute(run)
        spans = on.spans()

    assert run.status == RunStatus.SUCCEEDED
    span = run_span(spans, run.id)
    assert (span["name"], span["kind"], span["status"]) == (f"invoke_agent {agent.id}", "INTERNAL", "UNSET")
    assert (span["trace_id"], span["parent_span_id"]) == (caller["trace_id"], caller["span_id"])
    assert span["attributes"] | {"asteros.run.id": "-"} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": agent.id,
        "gen_ai.agent.name": agent.id,
        "gen_ai.system": "scripted",
        "gen_ai.request.model": "scripted-offline",
        "gen_ai.usage.input_tokens": run.input_tokens,
        "gen_ai.usage.output_tokens": run.output_tokens,
        "asteros.run.id": "-",
        "asteros.run.kind": "agent",
        "asteros.run.attempt": 1,
        "asteros.run.status": "succeeded",
    }
    chats = [s for s in children(spans, span) if s["name"] == "chat scripted-offline"]
    tools = [s for s in children(spans, span) if s["name"] == "execute_tool calculator"]
    assert len(chats) == 2 and len(tools) == 1 and len(children(spans, span)) == 3
    assert all(c["kind"] == "CLIENT" and c["attributes"]["gen_ai.operation.name"] == "chat" for c in chats)
    assert [
        c["attributes"]["gen_ai.response.finish_reasons"] for c in sorted(chats, key=lambda c: c["start_time"])
    ] == [
        ("tool_calls",),
        ("stop",),
    ]
    # The run's usage is the sum of its model calls'.
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in chats) == run.input_tokens > 0
    assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in chats) == run.output_tokens > 0
    (tool,) = tools
    assert tool["attributes"] == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "calculator",
        "gen_ai.tool.call.id": "call_0_0",
    }
    assert tool["status"] == "UNSET"


def test_a_run_in_a_session_names_its_conversation():
    agent = make_agent()
    with traced() as on:
        run, _ = run_services.start_run("agent", agent.id, "hi", session_id="conv-1", dispatch=False)
        execute(run)
        span = run_span(on.spans(), run.id)
    assert span["attributes"]["gen_ai.conversation.id"] == "conv-1"
    assert span["parent_span_id"] is None  # started outside any span: the run's span is a root


def test_a_failed_model_call_makes_the_chat_and_the_run_spans_errors_with_the_failure_code():
    agent = make_agent(parameters={"fail": "the provider said no", "error_code": "model_rate_limited"})
    with traced() as on:
        run, _ = start_under(on.tracer, agent)
        run = execute(run)
        spans = on.spans()

    assert run.status == RunStatus.FAILED
    span = run_span(spans, run.id)
    (chat,) = children(spans, span)
    for failed in (span, chat):
        assert failed["status"] == "ERROR"
        assert failed["attributes"]["error.type"] == "model_rate_limited"
    assert span["attributes"]["asteros.run.status"] == "failed"


def test_a_failed_tool_call_is_an_error_span_and_the_run_goes_on():
    rules = [{"when": "go", "call": "no_such_tool", "arguments": {}}]
    agent = make_agent(parameters={"rules": rules}, **CALCULATOR)
    with traced() as on:
        run, _ = start_under(on.tracer, agent, "go")
        run = execute(run)
        spans = on.spans()

    assert run.status == RunStatus.SUCCEEDED
    span = run_span(spans, run.id)
    (tool,) = [s for s in children(spans, span) if s["name"] == "execute_tool no_such_tool"]
    assert (tool["status"], tool["attributes"]["error.type"]) == ("ERROR", "tool_error")
    assert span["status"] == "UNSET"


def test_a_retried_attempt_joins_the_trace_the_run_was_started_in():
    """The context is in the row: an attempt after a lost worker (here: a claim by a worker that
    never came back, re-queued as the reaper does) hangs under the same parent span."""
    agent = make_agent()
    with traced() as on:
        run, caller = start_under(on.tracer, agent)
        assert leases.claim_run(str(run.id), "a-worker-that-died") is not None
        Run.objects.filter(id=run.id).update(status=RunStatus.QUEUED, worker_id="", lease_expires_at=None)
        run = execute(run)
        spans = on.spans()

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2)
    span = run_span(spans, run.id)
    assert span["attributes"]["asteros.run.attempt"] == 2
    assert (span["trace_id"], span["parent_span_id"]) == (caller["trace_id"], caller["span_id"])


def test_the_opt_in_selects_the_latest_experimental_conventions():
    agent = make_agent(**CALCULATOR)
    opt_in = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental"}
    with traced(environ=opt_in) as on:
        run, _ = start_under(on.tracer, agent)
        execute(run)
        spans = on.spans()

    span = run_span(spans, run.id)
    assert span["attributes"]["gen_ai.provider.name"] == "scripted"
    tree = [span, *children(spans, span)]
    assert not any("gen_ai.system" in s["attributes"] for s in tree)
    assert all(s["attributes"]["gen_ai.provider.name"] == "scripted" for s in tree if s["kind"] == "CLIENT")
    (tool,) = [s for s in tree if s["name"].startswith("execute_tool")]
    assert tool["attributes"]["gen_ai.tool.type"] == "function"


def test_with_tracing_off_a_run_keeps_no_context_and_no_span_is_made():
    """Off (the default): the flag is down, nothing is stored, and a tracer provider installed by
    something else in the process gets no span from a run."""
    from tests.support.traces import InMemorySpanExporter

    assert tracing.enabled is False
    exporter = InMemorySpanExporter()
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("caller"):
        run, _ = run_services.start_run("agent", make_agent(**CALCULATOR).id, "what is 1+1?", dispatch=False)
    run = execute(run)

    assert run.status == RunStatus.SUCCEEDED
    assert run.trace_context == {}
    assert [s.name for s in exporter.get_finished_spans()] == ["caller"]
