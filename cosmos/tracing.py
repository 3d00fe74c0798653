"""Traces of runs, by the OpenTelemetry GenAI semantic conventions; off unless configured.

The composition root (``asteros_site.telemetry.configure_tracing``) turns tracing on in a
process by calling ``enable`` with a tracer. Until then ``enabled`` is False, and every
instrumentation point (``cosmos.services.runs``, ``cosmos.engine``, the agent executor and the
runtime's loop) checks that one flag first and does nothing else: no ``opentelemetry`` module is
imported, no span or context object is made, and ``Run.trace_context`` stays empty.

Django-free (the runtime uses it). It imports the OpenTelemetry API only, never the SDK.

Spans (docs/observability.md):

- a run: ``invoke_agent <agent>`` (agents and stars), ``invoke_agent <workflow>`` for a
  workflow (``invoke_workflow <workflow>`` with the opt-in below); its parent is the context
  stored in ``Run.trace_context`` when the run was created (the request's span, or the parent
  run's span for a star member or a workflow step), so every attempt of the run, in any process,
  joins the same trace;
- a model call: ``chat <model>`` (kind CLIENT) with its token usage;
- a tool call: ``execute_tool <tool>``.

``OTEL_SEMCONV_STABILITY_OPT_IN`` containing ``gen_ai_latest_experimental`` selects the latest
experimental GenAI conventions instead of the v1.36.0 ones (``latest``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"

# The one flag every instrumentation point reads first.
enabled: bool = False
# Emit the latest experimental GenAI conventions (the opt-in), not those of v1.36.0.
latest: bool = False
_tracer: Tracer | None = None

INVOKE_AGENT = "invoke_agent"
INVOKE_WORKFLOW = "invoke_workflow"
CHAT = "chat"
EXECUTE_TOOL = "execute_tool"


def wants_latest(opt_in: str | None) -> bool:
    """Whether an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value asks for the latest GenAI conventions."""
    return LATEST_EXPERIMENTAL in {part.strip() for part in (opt_in or "").split(",")}


def enable(tracer: Tracer, *, latest_conventions: bool = False) -> None:
    global enabled, latest, _tracer
    _tracer = tracer
    latest = latest_conventions
    enabled = True


def disable() -> None:
    global enabled, latest, _tracer
    enabled = False
    latest = False
    _tracer = None


def current_context() -> dict[str, str]:
    """The current span's context as a carrier (``traceparent``, ``tracestate``): what a new run
    stores in ``Run.trace_context``. Call only when ``enabled``."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def provider_attributes(provider: str) -> dict[str, str]:
    """The model provider, named as the selected conventions name it."""
    if not provider:
        return {}
    return {"gen_ai.provider.name": provider} if latest else {"gen_ai.system": provider}


def _error(span: Span, error_type: str, message: str | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))


@contextmanager
def _span(name: str, *, context: Any = None, kind: Any = None, attributes: Mapping[str, Any]) -> Iterator[Span]:
    """A span made current for the block; an exception leaving it marks it failed (its class as
    ``error.type``) unless the block already said why."""
    from opentelemetry.trace import SpanKind

    assert _tracer is not None
    with _tracer.start_as_current_span(
        name,
        context=context,
        kind=kind if kind is not None else SpanKind.INTERNAL,
        attributes=dict(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if "error.type" not in getattr(span, "attributes", {}):
                _error(span, type(exc).__qualname__)
            raise


# --- runs


def run_operation(kind: str) -> str:
    return INVOKE_WORKFLOW if latest and kind == "workflow" else INVOKE_AGENT


@contextmanager
def run_span(
    *,
    run_id: str,
    kind: str,
    target: str,
    attempt: int,
    session_id: str | None,
    parent_run_id: str | None,
    trace_context: Mapping[str, str] | None,
) -> Iterator[Span]:
    """The span of one attempt of a run, child of the context the run was created in."""
    from opentelemetry import propagate

    operation = run_operation(kind)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "asteros.run.id": run_id,
        "asteros.run.kind": kind,
        "asteros.run.attempt": attempt,
    }
    if operation == INVOKE_WORKFLOW:
        attributes["gen_ai.workflow.name"] = target
    else:
        attributes |= {"gen_ai.agent.id": target, "gen_ai.agent.name": target}
    if session_id:
        attributes["gen_ai.conversation.id"] = session_id
    if parent_run_id:
        attributes["asteros.run.parent_id"] = parent_run_id
    # Always the stored context (an empty one makes a root span): never the span this task
    # happens to run under, so a retried attempt in another process lands in the same place.
    parent = propagate.extract(dict(trace_context or {}))
    with _span(f"{operation} {target}", context=parent, attributes=attributes) as span:
        yield span


def annotate_agent(span: Span, provider: str, model: str) -> None:
    """What only the agent executor knows: the provider and model of the agent the run loaded."""
    span.set_attributes(provider_attributes(provider))
    if model:
        span.set_attribute("gen_ai.request.model", model)


def current_span() -> Span:
    from opentelemetry import trace

    return trace.get_current_span()


def _usage(span: Span, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> None:
    # The semantic conventions count the whole prompt as input, its cached parts included, and
    # name the cached parts apart; runs keep input as the uncached part (docs/models.md).
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens + cache_read + cache_write)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if cache_read:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", cache_read)
    if cache_write:
        span.set_attribute("gen_ai.usage.cache_creation.input_tokens", cache_write)


def end_run(
    span: Span,
    status: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    error: str | None = None,
) -> None:
    """The attempt's end: its status, tokens, and ERROR with ``error.type`` if it failed."""
    span.set_attribute("asteros.run.status", status)
    if input_tokens or output_tokens or cache_read_tokens or cache_write_tokens:
        _usage(span, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
    if error is not None:
        _error(span, error)


# --- the runtime's loop


@contextmanager
def chat_span(provider: str, model: str) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind

    attributes = {"gen_ai.operation.name": CHAT, **provider_attributes(provider)}
    if model:
        attributes["gen_ai.request.model"] = model
    with _span(f"{CHAT} {model}".strip(), kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span


def end_chat(
    span: Span,
    input_tokens: int,
    output_tokens: int,
    finish_reasons: list[str],
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> None:
    _usage(span, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
    if finish_reasons:
        span.set_attribute("gen_ai.response.finish_reasons", finish_reasons)


def chat_failed(span: Span, code: str, message: str) -> None:
    _error(span, code, message)


@contextmanager
def tool_span(name: str, call_id: str) -> Iterator[Span]:
    attributes = {"gen_ai.operation.name": EXECUTE_TOOL, "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id}
    if latest:
        attributes["gen_ai.tool.type"] = "function"
    with _span(f"{EXECUTE_TOOL} {name}", attributes=attributes) as span:
        yield span


def tool_failed(span: Span, message: str) -> None:
    """The call gave the model an error result (unknown tool, bad arguments, a raise, a timeout)."""
    _error(span, "tool_error", message[:200])
