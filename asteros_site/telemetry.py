"""Traces: OpenTelemetry's SDK, set up once per process when the environment asks for it.

``configure_tracing()`` is called by every serving entry point (``asgi.py``, ``wsgi.py``, and so
``asteros serve`` and ``runserver``) before Django builds its middleware chain, and by each Celery
worker process as it starts (``asteros_site/celery.py``). It does nothing, and imports nothing
from OpenTelemetry, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` is set; ``OTEL_TRACES_EXPORTER=none`` keeps it off.

Exporters (``OTEL_TRACES_EXPORTER``, comma-separated; ``otlp`` when only an endpoint is set):

- ``otlp``: OTLP over HTTP/protobuf (the installed exporter; it reads the SDK's
  ``OTEL_EXPORTER_OTLP_*`` variables), through a ``BatchSpanProcessor``;
- ``console``: each span as JSON on standard output, as it ends;
- ``jsonl:<path>``: each span as one JSON line appended to ``<path>``, as it ends (for debugging,
  and the tests that read the spans of another process).

Then the process's spans are: each HTTP request (opentelemetry-instrumentation-django, with its
ASGI support) and the runs' spans made by ``cosmos.tracing`` (docs/observability.md).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from cosmos import tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXPORTER_VARIABLE = "OTEL_TRACES_EXPORTER"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
JSONL_PREFIX = "jsonl:"
ACCEPTED = "otlp, console, jsonl:<path> or none (comma-separated)"
TRACER_NAME = "asteros"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_pid: int | None = None
_instrumented_requests = False


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters the environment asks for; empty when tracing is off."""
    env = os.environ if environ is None else environ
    raw = env.get(EXPORTER_VARIABLE, "").strip()
    if not raw:
        return ["otlp"] if any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES) else []
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if names == ["none"]:
        return []
    for name in names:
        if name not in ("otlp", "console") and not (name.startswith(JSONL_PREFIX) and len(name) > len(JSONL_PREFIX)):
            raise ImproperlyConfigured(f"{EXPORTER_VARIABLE}={raw!r}: {name!r} is not one of {ACCEPTED}.")
    return names


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    return bool(exporter_names(environ))


def configure_tracing(
    *,
    requests: bool = True,
    exporters: Sequence[SpanExporter] | None = None,
    environ: Mapping[str, str] | None = None,
    set_global: bool = True,
) -> TracerProvider | None:
    """Install a tracer provider and turn tracing on in this process, if asked; returns it.

    ``requests``: also trace HTTP requests (call it before Django builds the middleware chain).
    ``exporters``: export to these instead of the environment's choice (tests: the SDK's
    ``InMemorySpanExporter``). ``set_global``: make it OpenTelemetry's global provider (one per
    process; tests use a provider of their own). Once per process: a later call returns the
    provider already installed."""
    global _provider, _pid
    env = os.environ if environ is None else environ
    names = exporter_names(env) if exporters is None else []
    if exporters is None and not names:
        return None
    with _lock:
        if _provider is not None and _pid == os.getpid():
            if requests:  # the embedded worker may have started first (runserver)
                _instrument_requests(_provider)
            return _provider
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        attributes: dict[str, Any] = {}
        if not env.get("OTEL_SERVICE_NAME", "").strip():
            attributes[SERVICE_NAME] = env.get("ASTEROS_NAME", "").strip() or "AsterOS"
        provider = TracerProvider(resource=Resource.create(attributes))
        if exporters is not None:
            for exporter in exporters:
                provider.add_span_processor(SimpleSpanProcessor(exporter))
        for name in names:
            if name == "otlp":
                provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(env)))
            else:
                provider.add_span_processor(SimpleSpanProcessor(_local_exporter(name)))
        if set_global:
            trace.set_tracer_provider(provider)
        if requests:
            _instrument_requests(provider)
        tracing.enable(
            provider.get_tracer(TRACER_NAME),
            latest_conventions=tracing.wants_latest(env.get(tracing.OPT_IN_VARIABLE)),
        )
        _provider, _pid = provider, os.getpid()
        return provider


def _instrument_requests(provider: TracerProvider) -> None:
    global _instrumented_requests
    if not _instrumented_requests:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument(tracer_provider=provider)
        _instrumented_requests = True


def shutdown_tracing() -> None:
    """Turn tracing off in this process: flush and close the provider, stop tracing requests."""
    global _provider, _pid, _instrumented_requests
    with _lock:
        tracing.disable()
        if _instrumented_requests:
            from opentelemetry.instrumentation.django import DjangoInstrumentor

            DjangoInstrumentor().uninstrument()
            _instrumented_requests = False
        if _provider is not None:
            _provider.shutdown()
        _provider = _pid = None


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    for variable in PROTOCOL_VARIABLES:
        protocol = env.get(variable, "").strip()
        if protocol and protocol != "http/protobuf":
            raise ImproperlyConfigured(
                f"{variable}={protocol!r}: only http/protobuf is installed (OTLP over HTTP); unset it or use that."
            )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _local_exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    return JsonLinesSpanExporter(Path(name[len(JSONL_PREFIX) :]))


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A span as one flat JSON object (ids in hex, as in ``traceparent``)."""
    context = span.context
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "start_time": span.start_time,
        "end_time": span.end_time,
        "service_name": span.resource.attributes.get("service.name"),
    }


class JsonLinesSpanExporter:
    """Appends each span as one JSON line (``span_record``) to a file: ``jsonl:<path>``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        lines = "".join(json.dumps(span_record(span), default=str) + "\n" for span in spans)
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
