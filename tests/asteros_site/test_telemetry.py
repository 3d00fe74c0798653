"""Traces set up by the composition root (``asteros_site.telemetry``): which environment turns
them on, the request spans, the exporters (OTLP over HTTP to a real receiver on loopback,
console, ``jsonl:<path>``), nothing loaded when off, and the issue's trace from a POST to the
run's end across real processes (embedded; and an API process plus a ``celery worker``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from asteros_site.telemetry import configure_tracing, exporter_names, shutdown_tracing
from cosmos import tracing
from cosmos.models import Run
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.otlp import OTLPReceiver
from tests.support.processes import ROOT, embedded_env, manage
from tests.support.servers import ApiProcess
from tests.support.traces import (
    assert_request_to_run_trace,
    http_method,
    http_status,
    read_jsonl,
    run_span,
    wait_for_spans,
)
from tests.support.workers import WorkerProcess, the_queue_to_itself

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
)
CALCULATOR_AGENT = {"id": "calc", "provider": "scripted", "tools": ["calculator"]}


# --- which environment turns tracing on


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": " otlp, jsonl:/tmp/spans.jsonl "}, ["otlp", "jsonl:/tmp/spans.jsonl"]),
    ],
)
def test_the_environment_chooses_the_exporters(environ, names):
    assert exporter_names(environ) == names


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin'"),
        ({"OTEL_TRACES_EXPORTER": "jsonl:"}, "OTEL_TRACES_EXPORTER='jsonl:'"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL='grpc'"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(environ, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        configure_tracing(requests=False, environ=environ, set_global=False)
    assert tracing.enabled is False


def test_with_nothing_set_tracing_stays_off():
    assert configure_tracing(environ={}) is None
    assert tracing.enabled is False


# --- request spans (in this process)


@pytest.mark.django_db
def test_a_run_started_by_a_request_stores_the_request_spans_context(traces, client):
    agent = make_agent()
    response = client.post(f"/api/agents/{agent.id}/run", {"input": "hi"}, content_type="application/json")
    assert response.status_code == 202, response.content

    (request,) = [s for s in traces.spans() if s["kind"] == "SERVER"]
    assert (http_method(request), http_status(request)) == ("POST", 202)
    run = Run.objects.get(id=response.json()["id"])
    assert run.trace_context["traceparent"].split("-")[1:3] == [request["trace_id"], request["span_id"]]


@pytest.mark.django_db
def test_a_refused_request_is_a_span_with_its_status_and_starts_nothing(traces, client):
    response = client.post("/api/agents/nobody/run", {"input": "hi"}, content_type="application/json")
    assert response.status_code == 404

    (request,) = [s for s in traces.spans() if s["kind"] == "SERVER"]
    assert (http_method(request), http_status(request)) == ("POST", 404)
    assert not Run.objects.exists()


# --- exporters


@pytest.mark.django_db(transaction=True)
def test_otlp_exports_the_runs_spans_over_http_to_the_endpoint(monkeypatch):
    from tests.cosmos.test_tracing import execute

    agent = make_agent(tools=["calculator"])
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "asteros-under-test")
        assert configure_tracing(requests=False, set_global=False) is not None
        try:
            run = execute(run_services.start_run("agent", agent.id, "2+2", dispatch=False)[0])
        finally:
            shutdown_tracing()  # flushes the batch
        spans = receiver.spans

    span = run_span(spans, run.id)
    assert span["service_name"] == "asteros-under-test"
    assert span["attributes"]["gen_ai.usage.output_tokens"] == run.output_tokens
    names = sorted(s["name"] for s in spans if s["parent_span_id"] == span["span_id"])
    assert names == ["chat scripted-offline", "chat scripted-offline", "execute_tool calculator"]


SCRIPT = """
import json, sys
import asteros_site.asgi  # what a server loads first
from cosmos import tracing
from cosmos.engine import get_engine
from cosmos.models import Agent
from cosmos.services.runs import start_run
Agent.objects.create(id="calc", provider="scripted", tools=["calculator"])
run, _ = start_run("agent", "calc", "what is 2+3?", dispatch=False)
get_engine().submit(str(run.id)).result(timeout=30)
run.refresh_from_db()
print(json.dumps({
    "status": run.status,
    "trace_context": run.trace_context,
    "enabled": tracing.enabled,
    # The API may be loaded by others (the MCP SDK imports it); the SDK, the instrumentation and
    # the exporters are loaded only when tracing is on.
    "loaded": sorted(m for m in list(sys.modules) if m.startswith(tuple(
        "opentelemetry." + name for name in ("sdk", "instrumentation", "exporter")
    ))),
    "provider": type(sys.modules["opentelemetry.trace"].get_tracer_provider()).__name__
    if "opentelemetry.trace" in sys.modules else None,
}))
"""


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in embedded_env(tmp_path).items() if k not in OTEL_VARIABLES} | env
    assert manage(environ, "migrate", "-v0").returncode == 0
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_off_by_default_a_served_run_loads_no_sdk_and_installs_no_provider(tmp_path):
    done = run_script(tmp_path)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert (result["enabled"], result["trace_context"], result["loaded"]) == (False, {}, [])
    assert result["provider"] in (None, "ProxyTracerProvider")  # no provider was installed


def test_the_console_exporter_prints_each_span_as_it_ends(tmp_path):
    done = run_script(tmp_path, OTEL_TRACES_EXPORTER="console")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["enabled"] is True and result["trace_context"] == {}  # started outside any span
    for name in ("invoke_agent calc", "chat scripted-offline", "execute_tool calculator"):
        assert f'"name": "{name}"' in done.stdout


# --- one trace from the POST to the run's end, across processes


def post_and_wait(url: str) -> dict:
    with httpx.Client(base_url=url, timeout=60) as client:
        if client.get(f"/api/agents/{CALCULATOR_AGENT['id']}").status_code == 404:
            client.post("/api/agents", json=CALCULATOR_AGENT).raise_for_status()
        response = client.post(f"/api/agents/{CALCULATOR_AGENT['id']}/run?wait=30", json={"input": "what is 2+3?"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    return response.json()


def agui_run(url: str) -> None:
    """The same agent through the AG-UI door (an async view), its SSE answer read to the end."""
    message = {"id": "m1", "role": "user", "content": "what is 2+3?"}
    body = {"threadId": "t1", "runId": "r1", "messages": [message], "tools": [], "context": [], "state": {}}
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post(f"/agui/agents/{CALCULATOR_AGENT['id']}", json=body)
    assert response.status_code == 200 and '"type":"RUN_FINISHED"' in response.text, response.text[-500:]


@pytest.mark.embedded_only
def test_embedded_one_trace_from_the_post_to_the_runs_end_through_rest_and_agui(tmp_path):
    spans_file = tmp_path / "spans.jsonl"
    api = ApiProcess.embedded(tmp_path, OTEL_TRACES_EXPORTER=f"jsonl:{spans_file}", ASTEROS_NAME="Orion")
    api.start()
    try:
        run = post_and_wait(api.url)
        agui_run(api.url)
        spans = wait_for_spans(
            lambda: read_jsonl(spans_file),
            lambda s: len([x for x in s if x["name"] == f"invoke_agent {CALCULATOR_AGENT['id']}"]) == 2,
        )
    finally:
        api.close()

    span = assert_request_to_run_trace(spans, run["id"], CALCULATOR_AGENT["id"])
    assert span["service_name"] == "Orion"
    (agui,) = [s for s in spans if s["name"] == f"invoke_agent {CALCULATOR_AGENT['id']}" and s is not span]
    assert_request_to_run_trace(spans, agui["attributes"]["asteros.run.id"], CALCULATOR_AGENT["id"])
    assert agui["trace_id"] != span["trace_id"]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_one_trace_from_the_post_in_an_api_process_to_the_runs_end_in_a_worker_process(tmp_path):
    api_file, worker_file = tmp_path / "api.jsonl", tmp_path / "worker.jsonl"
    make_agent(CALCULATOR_AGENT["id"], tools=["calculator"])
    with the_queue_to_itself():
        worker = WorkerProcess(env={"OTEL_TRACES_EXPORTER": f"jsonl:{worker_file}"}).start()
        api = ApiProcess(env={"OTEL_TRACES_EXPORTER": f"jsonl:{api_file}", "OTEL_SERVICE_NAME": "api"})
        try:
            api.start()
            run = post_and_wait(api.url)
            spans = wait_for_spans(
                lambda: read_jsonl(api_file, worker_file),
                lambda s: any(x["kind"] == "SERVER" and x["name"].startswith("POST") for x in s),
            )
        finally:
            api.close()
            worker.close()

    span = assert_request_to_run_trace(spans, run["id"], CALCULATOR_AGENT["id"])
    # The request span was made by the API process, the run's spans by the worker process.
    assert span in read_jsonl(worker_file) and span not in read_jsonl(api_file)
    assert {s["service_name"] for s in read_jsonl(api_file)} == {"api"}
    assert Run.objects.get(id=run["id"]).worker_id.split(":")[1] == str(worker.process.pid)
