"""Traces in tests: tracing turned on in this process with the SDK's in-memory exporter, spans
read back from other processes' ``jsonl:<path>`` files, and the shape every run's trace has."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from asteros_site.telemetry import configure_tracing, shutdown_tracing, span_record


@dataclass
class Traced:
    """Tracing on in this process: ``tracer`` makes spans of a test's own (a caller), and
    ``spans()`` are the finished spans, as ``asteros_site.telemetry.span_record`` dicts."""

    exporter: InMemorySpanExporter
    tracer: Tracer

    def spans(self) -> list[dict[str, Any]]:
        return [span_record(span) for span in self.exporter.get_finished_spans()]


@contextmanager
def traced(*, requests: bool = False, environ: Mapping[str, str] | None = None) -> Iterator[Traced]:
    """Turn tracing on for the block, exporting to memory (no global provider is installed)."""
    exporter = InMemorySpanExporter()
    provider = configure_tracing(requests=requests, exporters=[exporter], environ=environ or {}, set_global=False)
    assert provider is not None
    try:
        yield Traced(exporter, provider.get_tracer("tests"))
    finally:
        shutdown_tracing()


def read_jsonl(*paths: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths if path.exists() for line in path.read_text().splitlines()]


def wait_for_spans(read, predicate, timeout: float = 15) -> list[dict[str, Any]]:
    """``read()`` once ``predicate`` holds for what it returns (spans are exported as they end)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = read()
        if predicate(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.1)


def run_span(spans: Iterable[dict[str, Any]], run_id: str, attempt: int | None = None) -> dict[str, Any]:
    found = [
        s
        for s in spans
        if s["attributes"].get("asteros.run.id") == str(run_id)
        and (attempt is None or s["attributes"].get("asteros.run.attempt") == attempt)
    ]
    assert len(found) == 1, f"{len(found)} span(s) of run {run_id}: {[s['name'] for s in found]}"
    return found[0]


def children(spans: Iterable[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"] and s["trace_id"] == parent["trace_id"]]


def ancestors(spans: Iterable[dict[str, Any]], span: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {s["span_id"]: s for s in spans}
    chain = []
    while span["parent_span_id"] in by_id:
        span = by_id[span["parent_span_id"]]
        chain.append(span)
    return chain


def http_method(span: dict[str, Any]) -> str | None:
    """A request span's method, under the HTTP conventions' old or stable name (the Django
    instrumentation emits the stable ones with ``OTEL_SEMCONV_STABILITY_OPT_IN=http``)."""
    attributes = span["attributes"]
    return attributes.get("http.request.method", attributes.get("http.method"))


def http_status(span: dict[str, Any]) -> int | None:
    attributes = span["attributes"]
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


def assert_request_to_run_trace(spans: list[dict[str, Any]], run_id: str, agent_id: str) -> dict[str, Any]:
    """One trace from the POST to the run's end: the request's SERVER span is an ancestor of the
    run's ``invoke_agent`` span, whose children are its ``chat`` calls and its ``execute_tool``
    call. Returns the run span."""
    run = run_span(spans, run_id)
    assert run["name"] == f"invoke_agent {agent_id}"
    trace = [s for s in spans if s["trace_id"] == run["trace_id"]]
    requests = [s for s in ancestors(trace, run) if s["kind"] == "SERVER"]
    assert [http_method(s) for s in requests] == ["POST"], [s["name"] for s in ancestors(trace, run)]
    names = sorted(s["name"] for s in children(trace, run))
    assert names == ["chat scripted-offline", "chat scripted-offline", "execute_tool calculator"], names
    return run
