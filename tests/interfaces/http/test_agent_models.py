"""The model settings of agents and templates over the API: base URL and API key reference
validated as in the admin, the key's status shown, never its value."""

from __future__ import annotations

import pytest

from cosmos.models import Agent, AgentTemplate
from tests.factories import make_agent, make_template

from .conftest import assert_error, bearer

pytestmark = pytest.mark.django_db

KEY_NAME = "ASTEROS_SECRET_API_MODEL_KEY"
KEY_VALUE = "sk-api-model-0123456789-never-shown"
PATHS = {"agents": "/api/agents", "templates": "/api/templates"}


def post(api_client, keys, resource: str, body: dict):
    return api_client.post(PATHS[resource], body, format="json", **bearer(keys.admin))


@pytest.mark.parametrize("resource", ["agents", "templates"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", KEY_VALUE),  # a value, not a reference
        ("api_key", "env:SECRET_KEY"),  # a server secret
        ("api_key", "env:OPENAI_API_KEY"),
        ("api_key", "env:HOME"),  # not ASTEROS_SECRET_*, not listed
        ("base_url", "localhost:11434"),
        ("base_url", "http://user:pw@gateway.example.com"),
    ],
)
def test_bad_model_settings_are_400(api_client, auth_on, keys, resource, field, value):
    body = {"id": "m-1", "provider": "openai", "model": "gpt-4o", field: value}
    error = assert_error(post(api_client, keys, resource, body), 400)
    assert field in error["details"]
    assert KEY_VALUE not in str(error)
    model = Agent if resource == "agents" else AgentTemplate
    assert not model.objects.filter(id="m-1").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "anthropic"}, "model"),  # a real provider needs a model
        ({"provider": "openai", "model": ""}, "model"),
        ({"provider": "scripted", "model": "gpt-4o"}, "model"),  # scripted knows only its own
    ],
)
def test_model_rules_are_400(api_client, auth_on, keys, body, field):
    error = assert_error(post(api_client, keys, "agents", {"id": "m-2", **body}), 400)
    assert field in error["details"]


@pytest.mark.parametrize("resource", ["agents", "templates"])
def test_the_key_status_is_shown_never_the_value(api_client, auth_on, keys, resource, monkeypatch, settings_options):
    settings_options(outbound_allowlist=("localhost:11434",))
    monkeypatch.setenv(KEY_NAME, KEY_VALUE)
    body = {
        "id": "m-3",
        "provider": "openai",
        "model": "llama3.2",
        "base_url": "http://localhost:11434/v1",
        "api_key": f"env:{KEY_NAME}",
    }
    made = post(api_client, keys, resource, body)
    assert made.status_code == 201, made.content
    assert made.json()["api_key"] == f"env:{KEY_NAME}" and made.json()["api_key_status"] == "set"
    assert made.json()["base_url"] == "http://localhost:11434/v1"

    monkeypatch.delenv(KEY_NAME)
    shown = api_client.get(f"{PATHS[resource]}/m-3", **bearer(keys.read))
    assert shown.json()["api_key_status"] == "not set"
    listed = api_client.get(PATHS[resource], **bearer(keys.read))
    for response in (made, shown, listed):
        assert KEY_VALUE not in response.content.decode()

    # A read-only status cannot be written.
    patched = api_client.patch(f"{PATHS[resource]}/m-3", {"api_key_status": "set"}, format="json", **bearer(keys.admin))
    assert patched.status_code == 200 and patched.json()["api_key_status"] == "not set"


def test_a_bad_update_leaves_the_row_as_it_was(api_client, auth_on, keys):
    agent = make_agent(provider="openai", model="gpt-4o", api_key="env:ASTEROS_SECRET_OK")
    response = api_client.patch(
        f"/api/agents/{agent.id}", {"api_key": "env:DATABASE_URL"}, format="json", **bearer(keys.admin)
    )
    assert "api_key" in assert_error(response, 400)["details"]
    assert Agent.objects.get(id=agent.id).api_key == "env:ASTEROS_SECRET_OK"


def test_an_agent_without_a_model_of_an_openai_template_is_400(api_client, auth_on, keys):
    template = make_template(provider="openai", model="")
    error = assert_error(post(api_client, keys, "agents", {"id": "m-4", "template": template.id}), 400)
    assert "model" in error["details"]


@pytest.mark.parametrize("resource", ["agents", "templates"])
def test_model_settings_need_the_admin_scope(api_client, auth_on, keys, resource):
    body = {"id": "m-5", "provider": "openai", "model": "m", "api_key": "env:ASTEROS_SECRET_X"}
    assert_error(api_client.post(PATHS[resource], body, format="json", **bearer(keys.run)), 403)
    assert_error(api_client.post(PATHS[resource], body, format="json"), 401)
