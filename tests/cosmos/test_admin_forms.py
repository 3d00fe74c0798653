"""The admin's editors for agents and templates: provider choices from the runtime's registry,
model suggestions per provider, django-jsonform editors with schemas, and JSON errors on the form."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from cosmos.admin import AgentForm, AgentTemplateForm
from cosmos.models import Agent, AgentTemplate
from cosmos.runtime.providers import MODEL_SUGGESTIONS, model_suggestions, provider_names, register_provider
from cosmos.runtime.providers import _registered as registered_providers
from cosmos.runtime.providers.scripted import MODEL_NAME, ScriptedProvider
from cosmos.runtime.tools import tool_registry
from tests.factories import make_agent, make_template

pytestmark = pytest.mark.django_db

ADD_AGENT = reverse("admin:cosmos_agent_add")


def agent_data(**fields) -> dict:
    data = {"id": "new-agent", "name": "", "description": "", "enabled": "on", "template": "", "provider": "scripted"}
    data |= {"model": "", "parameters": "{}", "system_prompt": "", "tools": "[]", "metadata": "{}"}
    data |= {"base_url": "", "api_key": ""}
    return data | fields


def errors_of(response) -> dict:
    return {name: [str(e) for e in errors] for name, errors in response.context["adminform"].form.errors.items()}


# --- provider and model


def test_provider_choices_are_the_runtime_registry():
    form = AgentTemplateForm()
    values = [value for value, _ in form.fields["provider"].choices]
    assert values == ["", *sorted(provider_names())]


def test_a_provider_registered_later_is_offered_at_once():
    register_provider("house-model", lambda **_: ScriptedProvider())
    try:
        values = [value for value, _ in AgentForm().fields["provider"].choices]
        assert "house-model" in values
    finally:
        registered_providers.pop("house-model", None)


def test_model_suggestions_live_next_to_the_providers():
    assert MODEL_SUGGESTIONS["scripted"] == (MODEL_NAME,)
    suggestions = model_suggestions()
    assert set(suggestions) == set(provider_names())  # every provider has a (possibly empty) list
    assert all(suggestions[name] for name in ("anthropic", "openai", "scripted"))


def test_the_model_field_suggests_the_chosen_providers_models(staff_client):
    agent = make_agent(provider="openai", model="gpt-4o")
    page = staff_client.get(reverse("admin:cosmos_agent_change", args=[agent.pk])).content.decode()
    field = re.search(r'<input type="text" name="model"[^>]*>', page).group(0)
    assert 'list="id_model_suggestions"' in field
    datalist = re.search(r'<datalist id="id_model_suggestions">(.*?)</datalist>', page, re.S).group(1)
    offered = re.findall(r'<option value="([^"]+)">', datalist)
    assert offered == list(MODEL_SUGGESTIONS["openai"])
    # The script swaps the list on a provider change: the input carries every provider's list.
    carried = json.loads(re.search(r'data-model-suggestions="([^"]*)"', field).group(1).replace("&quot;", '"'))
    assert carried == model_suggestions()
    assert "asteros/model_suggestions.js" in page


def test_the_provider_is_a_select_and_an_unknown_one_is_refused(staff_client):
    page = staff_client.get(ADD_AGENT).content.decode()
    select = re.search(r'<select name="provider".*?</select>', page, re.S).group(0)
    assert all(f'value="{name}"' in select for name in provider_names())
    response = staff_client.post(ADD_AGENT, agent_data(provider="skynet"))
    assert response.status_code == 200
    assert "skynet is not one of the available choices" in " ".join(errors_of(response)["provider"])
    assert not Agent.objects.exists()


# --- JSON editors


def test_parameters_and_tools_use_the_json_form_editor_with_schemas(staff_client):
    page = staff_client.get(ADD_AGENT).content.decode()
    configs = {
        name: json.loads(config.replace("&quot;", '"').replace("&amp;", "&"))
        for name, config in re.findall(r'<textarea[^>]*name="(\w+)"[^>]*data-django-jsonform="([^"]*)"', page)
    }
    assert set(configs) == {"parameters", "tools"}
    parameters = configs["parameters"]["schema"]["properties"]
    assert {"temperature", "max_tokens", "rules"} <= set(parameters)
    assert set(parameters["rules"]["items"]["properties"]) >= {"when", "call", "arguments"}
    tools = configs["tools"]["schema"]["items"]
    assert tools["widget"] == "multiselect"
    assert set(tool_registry.names()) <= set(tools["choices"])
    assert "django_jsonform/react-json-form.js" in page
    # No other JSON field is a raw text box: metadata has the checked JSON editor.
    assert re.search(r'<textarea name="metadata"[^>]*data-asteros-json="true"', page)


def test_broken_json_is_a_clear_form_error_and_nothing_is_saved(staff_client):
    response = staff_client.post(ADD_AGENT, agent_data(parameters='{"temperature": 0.2,'))
    assert response.status_code == 200
    message = " ".join(errors_of(response)["parameters"])
    assert "This is not valid JSON" in message and "line 1" in message
    response = staff_client.post(ADD_AGENT, agent_data(metadata="{oops}"))
    assert "This is not valid JSON" in " ".join(errors_of(response)["metadata"])
    assert not Agent.objects.exists()


def test_a_value_the_schema_refuses_names_the_knob(staff_client):
    response = staff_client.post(ADD_AGENT, agent_data(parameters='{"temperature": "hot"}'))
    assert response.status_code == 200
    assert "temperature: Invalid value. Only numbers allowed." in errors_of(response)["parameters"]
    response = staff_client.post(ADD_AGENT, agent_data(parameters='{"rules": [{"when": "x", "call": 3}]}'))
    assert any("rules.0.call" in message for message in errors_of(response)["parameters"])
    assert not Agent.objects.exists()


def test_what_the_editor_sends_is_saved_without_unset_knobs(staff_client):
    # The editor posts every knob it shows; the unset ones are dropped (an empty "rules" would
    # switch off the scripted model's calculator).
    sent = {
        "temperature": 0.3,
        "max_tokens": None,
        "top_p": None,
        "reply": "",
        "stop": [],
        "rules": [{"when": "weather", "call": "current_time", "arguments": {}, "after_tool": False}],
        "custom": "kept",
    }
    response = staff_client.post(ADD_AGENT, agent_data(parameters=json.dumps(sent), tools='["calculator"]'))
    assert response.status_code == 302, errors_of(response)
    agent = Agent.objects.get(id="new-agent")
    assert agent.parameters == {
        "temperature": 0.3,
        "rules": [{"when": "weather", "call": "current_time", "after_tool": False}],
        "custom": "kept",
    }
    assert agent.tools == ["calculator"]


def test_an_unknown_tool_is_named_by_the_model(staff_client):
    response = staff_client.post(ADD_AGENT, agent_data(tools='["teleport"]'))
    assert "Unknown tool(s): teleport" in " ".join(errors_of(response)["tools"])


def test_a_tool_already_listed_stays_a_choice(staff_client):
    template = make_template(tools=["calculator"])
    form = AgentTemplateForm(instance=template)
    assert "calculator" in form.fields["tools"].widget.get_schema()["items"]["choices"]


def test_an_empty_editor_saves_empty_values_not_null(staff_client):
    response = staff_client.post(
        reverse("admin:cosmos_agenttemplate_add"),
        {"id": "tpl", "name": "T", "system_prompt": "", "provider": "", "model": "", "parameters": "", "tools": ""}
        | {"base_url": "", "api_key": ""},
    )
    assert response.status_code == 302, errors_of(response)
    template = AgentTemplate.objects.get(id="tpl")
    assert (template.parameters, template.tools) == ({}, [])


def test_the_catalogue_offers_each_mcp_servers_pattern():
    from tests.factories import make_mcp_server

    make_mcp_server("files")
    make_mcp_server("off-server", enabled=False)
    assert "mcp:files/*" in tool_registry.patterns()
    choices = AgentForm().fields["tools"].widget.get_schema()["items"]["choices"]
    assert "mcp:files/*" in choices and "mcp:off-server/*" not in choices
    assert "calculator" in choices


def test_parameters_the_form_cannot_hold_are_edited_as_json(staff_client):
    odd = {"stop": "END", "max_completion_tokens": 64, "temperature": 0.1}
    agent = make_agent(provider="openai", model="gpt-4o", parameters=odd)
    page = staff_client.get(reverse("admin:cosmos_agent_change", args=[agent.pk])).content.decode()
    assert re.search(r'<textarea name="parameters"[^>]*data-asteros-json="true"', page)
    assert not re.search(r'<textarea[^>]*name="parameters"[^>]*data-django-jsonform', page)
    # A row that fits keeps the form editor.
    fitting = make_agent(parameters={"temperature": 0.1, "rules": [{"when": "x", "call": "calculator"}]})
    page = staff_client.get(reverse("admin:cosmos_agent_change", args=[fitting.pk])).content.decode()
    assert re.search(r'<textarea[^>]*name="parameters"[^>]*data-django-jsonform', page)
