"""A model that misbehaves: whole runs through the engine, the real Anthropic and OpenAI SDKs
pointed at the local model server (tests/support/model_server.py).

429 storms, 500s, stalls past the per-call timeout (before the first byte and mid-stream),
invalid JSON tool arguments, a multi-megabyte answer and a model that never stops calling tools.
Each run is retried to success or ends with one clear ``RUN_ERROR``; its events are gapless with
one final event, it is never left queued or running, and the worker lives on.

Embedded mode runs them on the in-process worker. Distributed mode runs them on a ``celery
worker`` process of this module's own, on a queue of its own (the session's shared worker does
not know the model server's address), and checks after each run that the process is still up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from cosmos.models import Run, RunStatus
from tests.factories import make_agent
from tests.support.model_runs import RunsWithEnv, runs_with_env
from tests.support.model_server import ModelServer
from tests.support.runs import events

pytestmark = pytest.mark.django_db(transaction=True)

APIS = ["anthropic", "openai"]
API_KEY = "misbehaving-model-test-key"
QUEUE = f"misbehaving-model-{uuid.uuid4().hex[:8]}"
HUGE_OUTPUT_BYTES = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server(module_model_server: ModelServer) -> ModelServer:
    return module_model_server


@pytest.fixture(scope="module")
def engine(request, server: ModelServer, django_db_setup, django_db_blocker) -> Iterator[RunsWithEnv]:
    env = {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": API_KEY,
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "OPENAI_API_KEY": API_KEY,
    }
    with runs_with_env(request, django_db_blocker, env, queue=QUEUE) as runs:
        yield runs


@pytest.fixture(autouse=True)
def fresh_server(server: ModelServer) -> Iterator[None]:
    server.clear()
    yield
    server.clear()


def model_agent(provider: str = "anthropic", **parameters):
    parameters = {"timeout": 5, "max_retries": 0, **parameters}
    return make_agent(provider=provider, model="fake-model", tools=["calculator"], parameters=parameters)


def run_error(run: Run) -> dict:
    final = events(run.id)[-1]
    assert final["type"] == "RUN_ERROR", final
    assert final["code"] == run.error["code"] and final["message"] == run.error["message"]
    return final


@pytest.mark.parametrize("provider", APIS)
def test_a_429_storm_that_ends_is_retried_and_the_run_succeeds(engine, server, provider):
    server.fail_next(429, times=3)
    run = engine.finished(engine.start(model_agent(provider, max_retries=4).id))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "(local model server) You said: hello"
    assert len(server.model_requests(provider)) == 4  # three 429s, then the answer
    assert "RUN_ERROR" not in [e["type"] for e in events(run.id)]


@pytest.mark.parametrize("provider", APIS)
def test_a_429_storm_that_never_ends_fails_the_run_clearly(engine, server, provider):
    server.fail_next(429, times=None)
    run = engine.finished(engine.start(model_agent(provider, max_retries=2).id))

    assert run.status == RunStatus.FAILED
    error = run_error(run)
    assert error["code"] == "model_rate_limited"
    assert "HTTP 429 after 2 retries" in error["message"] and API_KEY not in error["message"]
    assert len(server.model_requests(provider)) == 3


@pytest.mark.parametrize(
    ("times", "status", "code"), [(1, RunStatus.SUCCEEDED, None), (None, RunStatus.FAILED, "model_unavailable")]
)
def test_server_errors_are_retried_then_fail_clearly(engine, server, times, status, code):
    server.fail_next(500, times=times)
    run = engine.finished(engine.start(model_agent("openai", max_retries=1).id))

    assert run.status == status, run.error
    assert len(server.model_requests()) == 2
    if code:
        error = run_error(run)
        assert error["code"] == code and "HTTP 500 after 1 retry" in error["message"]
    else:
        assert run.output.endswith("You said: hello")


@pytest.mark.parametrize(("times", "status"), [(1, RunStatus.SUCCEEDED), (None, RunStatus.FAILED)])
def test_a_stall_before_the_first_byte_times_out_and_is_retried(engine, server, times, status):
    server.fail_next(stall_seconds=30, times=times)
    run = engine.finished(engine.start(model_agent("anthropic", timeout=0.5, max_retries=1).id))

    assert run.status == status, run.error
    assert len(server.model_requests()) == 2
    if status == RunStatus.FAILED:
        error = run_error(run)
        assert error["code"] == "model_timeout" and "within 0.5s (after 1 retry)" in error["message"]


@pytest.mark.parametrize("provider", APIS)
def test_a_stall_mid_stream_ends_the_run_with_its_message_closed(engine, server, provider):
    server.fail_next(stall_mid_stream_seconds=30)
    run = engine.finished(engine.start(model_agent(provider, timeout=0.5, max_retries=3).id))

    assert run.status == RunStatus.FAILED
    assert run_error(run)["code"] == "model_timeout"
    types = [e["type"] for e in events(run.id)]
    # What streamed before the stall stays, closed; a half-streamed answer is never retried.
    assert types == ["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "RUN_ERROR"]
    assert len(server.model_requests(provider)) == 1


@pytest.mark.parametrize(
    ("provider", "arguments", "complaint"),
    [
        ("anthropic", '{"expression": "6 * 7"', "Invalid JSON arguments for tool 'calculator'"),
        ("openai", "[6, 7]", "must be a JSON object, not list"),
        ("openai", "[" * 3000 + "]" * 3000, "nested too deeply"),
    ],
    ids=["truncated", "not-an-object", "nested-too-deeply"],
)
def test_invalid_tool_arguments_go_back_to_the_model_and_the_run_goes_on(
    engine, server, provider, arguments, complaint
):
    server.call_tool_next("calculator", arguments)
    run = engine.finished(engine.start(model_agent(provider).id, "what is 6 * 7?"))

    assert run.status == RunStatus.SUCCEEDED, run.error
    (result,) = [e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT"]
    assert complaint in result["content"]
    assert run.output == f"The result is {result['content']}."  # the model read the error
    sent = "".join(e["delta"] for e in events(run.id) if e["type"] == "TOOL_CALL_ARGS")
    assert sent == arguments


def test_a_huge_output_is_stored_whole(engine, server):
    text = ("All work and no play makes a long answer. " * (HUGE_OUTPUT_BYTES // 42 + 1))[:HUGE_OUTPUT_BYTES]
    server.reply_next(text, chunk_chars=64 * 1024)
    run = engine.finished(engine.start(model_agent("anthropic").id))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == text
    stored = events(run.id)
    assert "".join(e["delta"] for e in stored if e["type"] == "TEXT_MESSAGE_CONTENT") == text
    assert stored[-1]["result"] == text
    # The next run on the same worker is served as usual.
    after = engine.finished(engine.start(model_agent("anthropic").id))
    assert after.status == RunStatus.SUCCEEDED and after.output.endswith("You said: hello")


@pytest.mark.parametrize("provider", APIS)
def test_a_model_that_always_calls_a_tool_ends_at_max_turns(engine, server, provider):
    server.call_tool_next("calculator", json.dumps({"expression": "1 + 1"}), times=None)
    run = engine.finished(engine.start(model_agent(provider, max_turns=3).id))

    assert run.status == RunStatus.FAILED
    error = run_error(run)
    assert error["code"] == "max_turns_exceeded" and "max_turns=3" in error["message"]
    assert len(server.model_requests(provider)) == 3
    results = [e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT"]
    assert [r["content"] for r in results] == ["2", "2"]  # the last turn's call is not run


@pytest.mark.services
def test_a_worker_process_survives_a_storm_and_a_stall_and_takes_the_next_run(engine, server):
    assert engine.worker is not None  # distributed mode: a real celery worker process
    server.fail_next(429, times=None)
    storm = engine.finished(engine.start(model_agent("anthropic", max_retries=1).id))
    server.clear()
    server.fail_next(stall_seconds=30, times=None)
    stall = engine.finished(engine.start(model_agent("openai", timeout=0.5).id))
    server.clear()
    healthy = engine.finished(engine.start(model_agent("anthropic").id))

    assert (storm.status, storm.error["code"]) == (RunStatus.FAILED, "model_rate_limited")
    assert (stall.status, stall.error["code"]) == (RunStatus.FAILED, "model_timeout")
    assert healthy.status == RunStatus.SUCCEEDED and healthy.output.endswith("You said: hello")
    assert storm.worker_id == stall.worker_id == healthy.worker_id  # one process, one engine
    assert f":{engine.worker.process.pid}:" in healthy.worker_id
