"""Per-agent model configuration: provider, model, base URL and an API key by reference.

Validation (the model's ``clean``, so the admin and the API refuse alike), the key read in the
worker at run time, and whole runs through the engine with the real Anthropic and OpenAI SDKs
against the local fake model servers (tests/support/model_server.py): a key reference that
reaches the server, an OpenAI-compatible server without a key (as Ollama), and an address where
nothing listens, whose error names the URL tried. ``docs/models.md`` names these tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError

from cosmos.models import RunEvent, RunStatus
from cosmos.runtime.agent import AgentSpec
from cosmos.runtime.errors import RunFailed
from cosmos.services.agents import agent_spec, with_credentials
from tests.factories import build_agent, build_template, make_agent, make_template
from tests.interfaces.http.conftest import SETTINGS_KEY, bearer
from tests.support.model_runs import RunsWithEnv, runs_with_env
from tests.support.model_server import ModelServer
from tests.support.processes import free_port
from tests.support.runs import events

KEY_NAME = "ASTEROS_SECRET_MODELS_TEST_KEY"
KEY_VALUE = "sk-models-test-0123456789-never-shown"
QUEUE = f"agent-models-{uuid.uuid4().hex[:8]}"


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


# --- validation: each rule


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_real_provider_needs_a_model(provider):
    assert "needs a model" in errors_of(build_agent(provider=provider, model=""))["model"][0]
    make_agent(provider=provider, model="some-model")  # with one it is fine
    # A template may leave the model to its agents; an agent of it must then name one.
    template = make_template(provider=provider, model="")
    assert "model" in errors_of(build_agent(template=template))
    make_agent(template=template, model="some-model")
    make_agent(template=make_template(provider=provider, model="from-template"))  # merged: fine


@pytest.mark.django_db
def test_scripted_accepts_only_its_own_model():
    make_agent(provider="scripted", model="scripted-offline")
    make_agent(provider="scripted", model="")
    assert "scripted-offline" in errors_of(build_agent(provider="scripted", model="gpt-4o"))["model"][0]
    assert "model" in errors_of(build_template(provider="scripted", model="claude-sonnet-4-5"))
    # A scripted template with a real model name on the agent is refused too (merged provider).
    assert "model" in errors_of(build_agent(template=make_template(), model="gpt-4o"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://models.example.com",
        "localhost:11434",
        "http://",
        "http://user:pass@gateway.example.com/v1",
        "https://gateway.example.com/v1?key=abc",
        "https://gateway.example.com/v1#x",
        "http://localhost:99999/v1",
    ],
)
def test_a_bad_base_url_is_refused(base_url):
    assert "base_url" in errors_of(build_agent(provider="openai", model="m", base_url=base_url))
    assert "base_url" in errors_of(build_template(provider="openai", model="m", base_url=base_url))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "base_url", ["http://localhost:11434/v1", "http://ollama:11434/v1", "https://gateway.example.com/anthropic"]
)
def test_good_base_urls_of_listed_hosts(base_url, settings_options):
    settings_options(outbound_allowlist=("localhost:11434", "ollama", "*.example.com"))
    make_agent(provider="openai", model="llama3.2", base_url=base_url)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest",
        "http://10.0.0.7:8000/v1",
        "https://models.example.com/v1",
        "http://ollama:11434",
    ],
)
def test_a_base_url_needs_its_host_on_the_outbound_allowlist(base_url, settings_options):
    """The SDKs connect on their own: a user's base URL reaches only what the operator listed."""
    settings_options(outbound_allowlist=("127.0.0.1", "ollama:8080"))
    for built in (build_agent(provider="openai", model="m", base_url=base_url), build_template(base_url=base_url)):
        assert "ASTEROS_OUTBOUND_ALLOWLIST" in errors_of(built)["base_url"][0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reference", ["sk-live-0123456789", "env:SECRET_KEY", "env:ANTHROPIC_API_KEY", "env:HOME", "env:", "vault:X"]
)
def test_a_bad_key_reference_is_refused(reference):
    assert "api_key" in errors_of(build_agent(provider="anthropic", model="m", api_key=reference))
    assert "api_key" in errors_of(build_template(provider="anthropic", model="m", api_key=reference))


@pytest.mark.django_db
def test_a_listed_variable_is_accepted(settings_options):
    settings_options(secret_env=("PARTNER_MODEL_KEY",))
    make_agent(provider="anthropic", model="m", api_key="env:PARTNER_MODEL_KEY")


# --- the spec and the key read at run time


@pytest.mark.django_db
def test_the_agent_overrides_its_template(settings_options):
    settings_options(outbound_allowlist=("*.example.com",))
    template = make_template(
        provider="openai", model="gpt-4o", base_url="http://t.example.com/v1", api_key="env:ASTEROS_SECRET_T"
    )
    inherited = agent_spec(make_agent(template=template))
    assert (inherited.base_url, inherited.api_key_ref) == ("http://t.example.com/v1", "env:ASTEROS_SECRET_T")
    own = agent_spec(make_agent(template=template, base_url="http://a.example.com/v1", api_key="env:ASTEROS_SECRET_A"))
    assert (own.base_url, own.api_key_ref, own.api_key) == ("http://a.example.com/v1", "env:ASTEROS_SECRET_A", None)


@pytest.mark.django_db
def test_the_key_status_is_of_the_reference_the_agent_runs_with(monkeypatch):
    monkeypatch.setenv(KEY_NAME, KEY_VALUE)
    template = make_template(provider="anthropic", model="m", api_key=f"env:{KEY_NAME}")
    assert make_agent(template=template).api_key_status == "set"  # inherited from the template
    assert make_agent(template=template, api_key="env:ASTEROS_SECRET_UNSET_HERE").api_key_status == "not set"
    assert make_agent(provider="anthropic", model="m").api_key_status == "none"


def test_the_key_is_read_when_the_run_starts(monkeypatch):
    spec = AgentSpec(id="a", name="A", provider="anthropic", model="m", api_key_ref=f"env:{KEY_NAME}")
    monkeypatch.setenv(KEY_NAME, KEY_VALUE)
    resolved = with_credentials(spec)
    assert resolved.api_key == KEY_VALUE and spec.api_key is None  # the cached spec never holds it
    assert KEY_VALUE not in repr(resolved)
    keyless = AgentSpec(id="b", name="B")
    assert with_credentials(keyless) is keyless

    monkeypatch.delenv(KEY_NAME)
    with pytest.raises(RunFailed) as unset:
        with_credentials(spec)
    assert unset.value.code == "model_auth" and KEY_NAME in unset.value.message

    # A row written around validation still reaches no server secret.
    monkeypatch.setenv("SECRET_KEY", "the-django-secret")
    with pytest.raises(RunFailed) as refused:
        with_credentials(AgentSpec(id="c", name="C", api_key_ref="env:SECRET_KEY"))
    assert refused.value.code == "model_auth" and "the-django-secret" not in refused.value.message


# --- whole runs against the local fake model servers


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ModelServer]:
    """Answers only the key the agents reference: a run that succeeds proves the key arrived."""
    with ModelServer(require_key=KEY_VALUE) as server:
        yield server


@pytest.fixture(scope="module")
def open_server() -> Iterator[ModelServer]:
    """A server that wants no key, as a local Ollama."""
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def engine(request, django_db_setup, django_db_blocker) -> Iterator[RunsWithEnv]:
    # The server's own keys are set too: they must never reach an address an agent chose.
    env = {KEY_NAME: KEY_VALUE, "ANTHROPIC_API_KEY": "server-wide-anthropic", "OPENAI_API_KEY": "server-wide-openai"}
    with runs_with_env(request, django_db_blocker, env, queue=QUEUE) as runs:
        yield runs


def model_agent(provider: str, base_url: str, **fields):
    parameters = {"timeout": 5, "max_retries": 0}
    return make_agent(provider=provider, model="fake-model", base_url=base_url, parameters=parameters, **fields)


def final_event(run) -> dict:
    return RunEvent.objects.filter(run=run).order_by("-seq").first().data


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_key_reference_reaches_the_server(engine, keyed_server, provider, caplog):
    caplog.set_level(logging.DEBUG)
    keyed_server.clear()
    base_url = keyed_server.url if provider == "anthropic" else f"{keyed_server.url}/v1"
    agent = model_agent(provider, base_url, api_key=f"env:{KEY_NAME}")

    run = engine.finished(engine.start(agent.id, "hello there"))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "(local model server) You said: hello there"
    (request,) = keyed_server.model_requests(provider)
    assert request.body["model"] == "fake-model"
    stored = repr(events(run.id)) + repr(run.output) + repr(run.error)
    assert KEY_VALUE not in stored and KEY_VALUE not in caplog.text
    if engine.worker is not None:  # distributed: the worker process's own log
        assert KEY_VALUE not in engine.worker.output()


@pytest.mark.django_db(transaction=True)
def test_an_openai_compatible_server_without_a_key(engine, open_server):
    """As Ollama: provider openai, its base URL, no key; the SDK sends a placeholder, never the
    server's OPENAI_API_KEY (set in the worker's environment here)."""
    open_server.clear()
    agent = model_agent("openai", f"{open_server.url}/v1")

    run = engine.finished(engine.start(agent.id, "hi"))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output.endswith("You said: hi")
    (request,) = open_server.model_requests("openai")
    assert request.path == "/v1/chat/completions"


@pytest.mark.django_db(transaction=True)
def test_an_anthropic_base_url_without_a_key_never_gets_the_server_key(engine, open_server):
    open_server.clear()
    agent = model_agent("anthropic", open_server.url)

    run = engine.finished(engine.start(agent.id))

    assert run.status == RunStatus.FAILED and run.error["code"] == "model_auth"
    assert "API key reference" in run.error["message"] and open_server.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_unreachable_server_names_the_url(engine, provider, api_client, settings_options):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    agent = model_agent(provider, url, api_key=f"env:{KEY_NAME}")

    run = engine.finished(engine.start(agent.id))

    assert run.status == RunStatus.FAILED and run.error["code"] == "model_unavailable"
    assert url in run.error["message"] and KEY_VALUE not in run.error["message"]
    final = final_event(run)
    assert final["type"] == "RUN_ERROR" and final["message"] == run.error["message"]
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    shown = api_client.get(f"/api/runs/{run.id}", **bearer(SETTINGS_KEY)).json()
    assert url in shown["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_an_unset_reference_fails_the_run_naming_the_variable(engine, keyed_server):
    agent = model_agent("anthropic", keyed_server.url, api_key="env:ASTEROS_SECRET_NOT_SET_ANYWHERE")

    run = engine.finished(engine.start(agent.id))

    assert run.status == RunStatus.FAILED and run.error["code"] == "model_auth"
    assert "ASTEROS_SECRET_NOT_SET_ANYWHERE" in run.error["message"]
