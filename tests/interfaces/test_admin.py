"""The admin as control plane: every registered model's pages, and validation shown on the forms.

The page tests enumerate ``admin.site._registry``: a newly registered model is covered as soon as
``OBJECTS`` knows how to make one of its rows (the test says so when it does not).
"""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from cosmos.models import Agent, AgentTemplate, Interrupt, ModelPrice, Run, RunStatus, Session, WorkerHeartbeat
from interfaces.keys.models import APIKey, hash_key
from stars.models import Membership, Role, Star, StarMessage
from tests.factories import (
    add_event,
    make_agent,
    make_delivery,
    make_mcp_server,
    make_membership,
    make_push_config,
    make_remote_agent,
    make_run,
    make_schedule,
    make_star,
    make_template,
    make_webhook,
    make_workflow,
)
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

# Rows only the runtime writes: their admin lists and shows them, and refuses to add or edit.
# Interrupts too: people resolve them (actions, the resolve page), they never edit the rows.
READ_ONLY = {
    "cosmos.Interrupt",
    "cosmos.RunEvent",
    "cosmos.WorkerHeartbeat",
    "stars.StarMessage",
    "webhooks.Delivery",
    "webhooks.PushConfig",
}

OBJECTS = {
    "auth.User": lambda user: user,
    "auth.Group": lambda user: Group.objects.create(name="operators"),
    "keys.APIKey": lambda user: APIKey.generate("ci", ["read"])[0],
    "connectors.RemoteAgent": lambda user: make_remote_agent(),
    "connectors.MCPServer": lambda user: make_mcp_server(),
    "cosmos.AgentTemplate": lambda user: make_template(),
    "cosmos.Agent": lambda user: make_agent(tools=["calculator"]),
    "cosmos.Session": lambda user: Session.objects.create(id="session-1", kind="agent", target="chat-agent"),
    "cosmos.Run": lambda user: make_run(events=["RUN_STARTED", "RUN_FINISHED"]),
    "cosmos.RunEvent": lambda user: add_event(make_run(), "RUN_STARTED"),
    "cosmos.Interrupt": lambda user: waiting_interrupt(),
    "cosmos.ModelPrice": lambda user: ModelPrice.objects.create(
        provider="openai",
        model="admin-test-model",
        input_per_million="1.5",
        output_per_million="6",
        cache_read_per_million="0.15",
        cache_write_per_million="0",
    ),
    "cosmos.WorkerHeartbeat": lambda user: WorkerHeartbeat.objects.create(
        worker_id="worker-1", mode="embedded", started_at=timezone.now(), seen_at=timezone.now()
    ),
    "stars.Star": lambda user: make_star(leader=make_agent(), workers=[make_agent()]),
    "stars.Membership": lambda user: make_membership(make_star(), make_agent()),
    "stars.StarMessage": lambda user: StarMessage.objects.create(
        star=make_star(), sender="agent-1", recipient="*", content="hello team"
    ),
    "workflows.Workflow": lambda user: make_workflow(),
    "schedules.Schedule": lambda user: make_schedule(),
    "webhooks.Webhook": lambda user: make_webhook(),
    "webhooks.Delivery": lambda user: make_delivery(run=make_run()),
    "webhooks.PushConfig": lambda user: make_push_config(),
}


def waiting_interrupt() -> Interrupt:
    run = make_run(status=RunStatus.INTERRUPTED)
    request = {"toolCallId": "call-1", "tool": "calculator", "arguments": {"expression": "6*7"}}
    return Interrupt.objects.create(run=run, root_run=run, kind="approval", request=request)


REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def url(model, page: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


def make_object(model, user):
    label = model._meta.label
    assert label in OBJECTS, f"{label} is in the admin: teach OBJECTS in {__name__} to make one"
    return OBJECTS[label](user)


def form_errors(response) -> str:
    """Every error message on an admin change form: the form's and its inlines'."""
    context = response.context
    messages = [str(error) for errors in context["adminform"].form.errors.values() for error in errors]
    for inline in context["inline_admin_formsets"]:
        messages += [str(error) for error in inline.formset.non_form_errors()]
        messages += [str(e) for form_errors in inline.formset.errors for es in form_errors.values() for e in es]
    return "\n".join(messages)


# --- every page


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_staff_sees_every_page(staff_client, staff_user, model):
    obj = make_object(model, staff_user)
    assert staff_client.get(url(model, "changelist")).status_code == 200
    assert staff_client.get(url(model, "change", obj.pk)).status_code == 200
    expected_add = 403 if model._meta.label in READ_ONLY else 200
    assert staff_client.get(url(model, "add")).status_code == expected_add


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_search_and_filters_answer(staff_client, staff_user, model):
    obj = make_object(model, staff_user)
    model_admin = admin.site._registry[model]
    if model_admin.search_fields:
        for term in ("no-such-thing", str(obj.pk)):
            assert staff_client.get(url(model, "changelist"), {"q": term}).status_code == 200
    changelist = staff_client.get(url(model, "changelist")).context["cl"]
    for spec in changelist.filter_specs:  # every choice of every list filter
        for choice in spec.choices(changelist):
            page = url(model, "changelist") + choice["query_string"]
            assert staff_client.get(page).status_code == 200, page


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_anonymous_is_sent_to_login(client, staff_user, model):
    obj = make_object(model, staff_user)
    for page in (url(model, "changelist"), url(model, "add"), url(model, "change", obj.pk)):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_only_runtime_rows_are_read_only(rf, staff_user):
    request = rf.get("/admin/")
    request.user = staff_user
    read_only = {
        m._meta.label for m, model_admin in admin.site._registry.items() if not model_admin.has_add_permission(request)
    }
    assert read_only == READ_ONLY


def test_the_admin_is_named_after_the_instance(staff_client, settings_options):
    settings_options(name="Orion")
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "<title>" in page and "Orion admin" in page
    assert 'id="site-name"' in page and ">Orion<" in page


# --- agents and workflows: model validation on the form


def agent_form(**fields) -> dict:
    data = {"id": "new-agent", "name": "", "description": "", "enabled": "on", "template": "", "provider": "scripted"}
    data |= {"model": "", "parameters": "{}", "system_prompt": "", "tools": "[]", "metadata": "{}"}
    data |= {"base_url": "", "api_key": ""}
    return data | fields


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": "Capitals"}, "lower-case letters"),
        ({"tools": '["teleport"]'}, "Unknown tool(s): teleport"),
        ({"provider": "skynet"}, "skynet is not one of the available choices"),
        ({"provider": "anthropic"}, "needs a model name"),
        ({"model": "gpt-4o"}, "only model is"),
        ({"api_key": "env:SECRET_KEY"}, "server's own secrets"),
        ({"api_key": "sk-live-0123"}, "never a value"),
        ({"base_url": "localhost:11434"}, "http:// or https:// URL"),
    ],
)
def test_agent_form_shows_model_errors(staff_client, fields, expected):
    response = staff_client.post(url(Agent, "add"), agent_form(**fields))
    assert response.status_code == 200
    assert expected in form_errors(response)
    assert not Agent.objects.exists()


def test_agent_form_creates_an_agent(staff_client):
    response = staff_client.post(url(Agent, "add"), agent_form(tools='["calculator"]'))
    assert response.status_code == 302
    assert Agent.objects.get(id="new-agent").tools == ["calculator"]


def test_agent_page_shows_the_key_status_never_the_value(staff_client, monkeypatch):
    secret = "sk-admin-page-0123456789-never-shown"
    monkeypatch.setenv("ASTEROS_SECRET_ADMIN_PAGE_KEY", secret)
    agent = make_agent(provider="openai", model="gpt-4o", api_key="env:ASTEROS_SECRET_ADMIN_PAGE_KEY")
    template = make_template(api_key="env:ASTEROS_SECRET_UNSET_HERE")
    page = staff_client.get(url(Agent, "change", agent.pk)).content.decode()
    assert "API key status" in page and ">set<" in page.replace("\n", "").replace(" ", "") and secret not in page
    template_page = staff_client.get(url(AgentTemplate, "change", template.pk)).content.decode()
    assert "not set" in template_page


def test_agent_form_refuses_past_max_agents(staff_client, settings_options):
    settings_options(max_agents=1)
    make_agent()
    response = staff_client.post(url(Agent, "add"), agent_form())
    assert "cosmos is full" in form_errors(response)


def test_agent_id_is_fixed_after_creation(staff_client):
    agent = make_agent()
    page = staff_client.get(url(Agent, "change", agent.pk)).content.decode()
    assert 'name="id"' not in page


def test_workflow_form_shows_definition_errors(staff_client):
    definition = {"steps": [{"name": "a", "type": "teleport"}]}
    data = {"id": "wf", "name": "", "description": "", "definition": json.dumps(definition), "enabled": "on"}
    response = staff_client.post(url(Workflow, "add"), data)
    assert "Step 'a': unknown type 'teleport'" in form_errors(response)
    assert not Workflow.objects.exists()


# --- stars: the membership inline


def star_form(star_id: str, members: list[dict]) -> dict:
    """POST data for the star form; members with an ``id`` are existing rows and come first."""
    data = {"id": star_id, "name": "", "description": "", "mode": "delegate", "config": "{}", "enabled": "on"}
    data |= {
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": str(sum(1 for m in members if m.get("id"))),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, member in enumerate(members):
        row = {"agent": "", "name": "", "role": Role.WORKER, "order": str(index), "description": "", "notes": ""}
        row |= {"id": "", "star": star_id if member.get("id") else ""} | member
        data |= {f"memberships-{index}-{key}": value for key, value in row.items()}
    return data


def test_star_with_members_is_created_from_the_inline(staff_client):
    leader, worker = make_agent(), make_agent()
    members = [{"agent": leader.id, "role": Role.LEADER}, {"agent": worker.id}]
    response = staff_client.post(url(Star, "add"), star_form("team", members))
    assert response.status_code == 302, form_errors(response)
    assert dict(Membership.objects.filter(star_id="team").values_list("agent_id", "role")) == {
        leader.id: Role.LEADER,
        worker.id: Role.WORKER,
    }


def test_two_new_leaders_in_one_submission(staff_client):
    members = [{"agent": make_agent().id, "role": Role.LEADER}, {"agent": make_agent().id, "role": Role.LEADER}]
    response = staff_client.post(url(Star, "add"), star_form("team", members))
    assert response.status_code == 200
    assert "A star has one leader" in form_errors(response)
    assert not Star.objects.exists()


def test_the_same_agent_twice_in_one_submission(staff_client):
    agent = make_agent()
    members = [{"agent": agent.id, "name": "first"}, {"agent": agent.id, "name": "second"}]
    response = staff_client.post(url(Star, "add"), star_form("team", members))
    assert response.status_code == 200
    assert f"Agent '{agent.id}' is listed 2 times" in form_errors(response)


def test_a_second_leader_added_to_a_saved_star(staff_client):
    leader = make_agent()
    star = make_star(leader=leader)
    existing = star.memberships.get()
    members = [
        {"id": str(existing.pk), "agent": leader.id, "name": existing.name, "role": Role.LEADER},
        {"agent": make_agent().id, "role": Role.LEADER},
    ]
    response = staff_client.post(url(Star, "change", star.pk), star_form(star.id, members))
    assert response.status_code == 200
    errors = form_errors(response)
    assert "already has a leader" in errors or "A star has one leader" in errors
    assert star.memberships.count() == 1


def test_a_duplicate_member_added_to_a_saved_star(staff_client):
    agent = make_agent()
    star = make_star(workers=[agent])
    existing = star.memberships.get()
    members = [{"id": str(existing.pk), "agent": agent.id, "name": existing.name}, {"agent": agent.id, "name": "again"}]
    response = staff_client.post(url(Star, "change", star.pk), star_form(star.id, members))
    assert response.status_code == 200
    assert "listed 2 times" in form_errors(response) or "already a member" in form_errors(response)
    assert star.memberships.count() == 1


def test_star_list_shows_leader_and_member_count(staff_client):
    leader = make_agent()
    make_star(leader=leader, workers=[make_agent(), make_agent()])
    response = staff_client.get(url(Star, "changelist"))
    star = response.context["cl"].result_list[0]
    assert (star.leader_id, star.members) == (leader.id, 3)


# --- runs


def test_run_page_shows_the_event_timeline(staff_client):
    run = make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "TEXT_MESSAGE_CONTENT", "RUN_FINISHED"])
    page = staff_client.get(url(Run, "change", run.pk)).content.decode()
    for event_type in ("RUN_STARTED", "TEXT_MESSAGE_CONTENT", "RUN_FINISHED"):
        assert event_type in page
    assert 'name="status"' not in page, "a run's fields are read-only"


def test_run_list_columns(staff_client):
    make_run(input_tokens=12, output_tokens=30, attempts=1)
    page = staff_client.get(url(Run, "changelist")).content.decode()
    assert "12 in / 30 out" in page


def test_starting_a_run_from_the_admin(staff_client, django_capture_on_commit_callbacks):
    agent = make_agent()
    data = {"kind": "agent", "target": agent.id, "input": "What is 2 + 2?", "session_id": ""}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(url(Run, "add"), data)
    assert response.status_code == 302, form_errors(response)
    run = Run.objects.get()
    assert (run.kind, run.target, run.status, run.origin) == ("agent", agent.id, RunStatus.QUEUED, "admin")
    assert run.input == {"message": "What is 2 + 2?"}
    assert run.caller == "user:staff"
    assert callbacks, "the run is dispatched when the transaction commits"


def test_starting_a_run_for_an_unknown_agent_shows_an_error(staff_client):
    data = {"kind": "agent", "target": "nobody", "input": '"hi"', "session_id": ""}
    response = staff_client.post(url(Run, "add"), data)
    assert response.status_code == 200
    assert "nobody" in form_errors(response)
    assert not Run.objects.exists()


def test_cancel_action(staff_client):
    queued, done = make_run(), make_run(status=RunStatus.SUCCEEDED)
    data = {"action": "cancel_runs", "_selected_action": [str(queued.pk), str(done.pk)]}
    response = staff_client.post(url(Run, "changelist"), data, follow=True)
    assert response.status_code == 200
    queued.refresh_from_db()
    done.refresh_from_db()
    assert queued.cancel_requested and queued.status == RunStatus.CANCELLED
    assert done.status == RunStatus.SUCCEEDED


# --- API keys


def test_a_new_key_is_shown_once_and_stored_hashed(staff_client):
    data = {"name": "ci", "scopes": ["read", "run"], "resources": "[]"}
    response = staff_client.post(url(APIKey, "add"), data, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    shown = [m for m in shown if "new API key" in m]
    assert len(shown) == 1
    raw = next(word for word in shown[0].split() if word.startswith("ak_"))
    key = APIKey.objects.get()
    assert key.hashed_key == hash_key(raw) and key.scopes == ["read", "run"]
    assert raw.startswith(f"ak_{key.prefix}_")
    assert raw not in json.dumps(list(APIKey.objects.values()), default=str)
    again = staff_client.get(url(APIKey, "change", key.pk)).content.decode()
    assert raw not in again and key.prefix in again


def test_key_form_validates_scopes_and_resources(staff_client):
    response = staff_client.post(url(APIKey, "add"), {"name": "ci", "scopes": ["root"], "resources": '["everything"]'})
    errors = form_errors(response)
    assert "root" in errors and "Resources must be" in errors
    assert not APIKey.objects.exists()


def test_revoke_action(staff_client):
    key, _ = APIKey.generate("old", ["read"])
    response = staff_client.post(url(APIKey, "changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked


def test_key_pages_show_quota_usage_and_limits_are_editable(staff_client):
    key, _ = APIKey.generate("metered", ["run"], max_concurrent_runs=3, tokens_per_day=1000)
    other, _ = APIKey.generate("idle", ["read"])
    make_run(caller=key.caller)  # active
    make_run(
        caller=key.caller, status=RunStatus.SUCCEEDED, finished_at=timezone.now(), input_tokens=70, output_tokens=5
    )

    listing = staff_client.get(url(APIKey, "changelist"))
    rows = {row.prefix: row for row in listing.context["cl"].result_list}
    assert (rows[key.prefix].active_run_count, rows[key.prefix].tokens_today_count) == (1, 75)
    assert (rows[other.prefix].active_run_count, rows[other.prefix].tokens_today_count) == (0, 0)
    page = listing.content.decode().lower()
    assert "1 / 3" in page and "75 / 1000" in page and "tokens today (utc)" in page

    change = staff_client.get(url(APIKey, "change", key.pk)).content.decode()
    assert "active runs: 1 / 3" in change and "tokens today (UTC): 75 / 1000" in change
    assert 'name="requests_per_minute"' in change and 'name="usage"' not in change  # usage is read-only

    data = {"name": "metered", "scopes": ["run"], "resources": "[]", "requests_per_minute": "60"}
    data |= {"max_concurrent_runs": "", "tokens_per_day": "0"}
    errors = form_errors(staff_client.post(url(APIKey, "change", key.pk), data))
    assert "greater than or equal to 1" in errors  # 0 is not a limit: revoke the key instead
    data["tokens_per_day"] = ""
    assert staff_client.post(url(APIKey, "change", key.pk), data).status_code == 302
    key.refresh_from_db()
    assert (key.requests_per_minute, key.max_concurrent_runs, key.tokens_per_day) == (60, None, None)


def test_a_new_key_gets_its_limits(staff_client):
    data = {"name": "ci", "scopes": ["run"], "resources": "[]", "max_concurrent_runs": "2"}
    assert staff_client.post(url(APIKey, "add"), data).status_code == 302
    assert APIKey.objects.get(name="ci").max_concurrent_runs == 2


# --- runs: read-only pages, plain text input, whole durations


def test_a_run_page_is_read_only_and_a_post_to_it_is_refused(staff_client):
    run = make_run(status=RunStatus.SUCCEEDED, output={"text": "done"})
    page = staff_client.get(url(Run, "change", run.pk)).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page and 'name="_addanother"' not in page
    assert "Watch live" in page  # the live parts are still there
    response = staff_client.post(url(Run, "change", run.pk), {"status": "failed", "_save": "Save"})
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_run_actions_still_work_on_the_read_only_list(staff_client):
    queued = make_run()
    response = staff_client.post(
        url(Run, "changelist"), {"action": "cancel_runs", "_selected_action": [str(queued.pk)]}, follow=True
    )
    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.cancel_requested


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Hello there  ", {"message": "Hello there"}),
        ("{not json, just braces}", {"message": "{not json, just braces}"}),
        ('{"messages": [{"role": "user", "content": "hi"}]}', {"messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_the_run_add_form_takes_plain_text(staff_client, django_capture_on_commit_callbacks, typed, stored):
    agent = make_agent()
    page = staff_client.get(url(Run, "add")).content.decode()
    assert '<textarea name="input"' in page
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(url(Run, "add"), {"kind": "agent", "target": agent.id, "input": typed})
    assert response.status_code == 302, form_errors(response)
    assert Run.objects.get().input == stored


def test_an_empty_run_input_is_a_form_error(staff_client):
    response = staff_client.post(url(Run, "add"), {"kind": "agent", "target": make_agent().id, "input": "   "})
    assert response.status_code == 200
    assert form_errors(response)
    assert not Run.objects.exists()


def test_run_durations_are_whole(staff_client):
    started = timezone.now()
    run = make_run(
        status=RunStatus.SUCCEEDED, started_at=started, finished_at=started + timezone.timedelta(seconds=123.4)
    )
    fast = make_run(
        status=RunStatus.SUCCEEDED, started_at=started, finished_at=started + timezone.timedelta(milliseconds=850)
    )
    listing = staff_client.get(url(Run, "changelist")).content.decode()
    assert "2 min 3 s" in listing and "850 ms" in listing
    assert "123.4s" not in listing and "0.8s" not in listing
    assert "2 min 3 s" in staff_client.get(url(Run, "change", run.pk)).content.decode()
    assert "850 ms" in staff_client.get(url(Run, "change", fast.pk)).content.decode()


def test_the_admin_header_links_to_the_dashboard_and_the_api_docs(staff_client):
    page = staff_client.get(reverse("admin:index")).content.decode()
    header = page[page.index('id="user-tools"') :]
    assert f'href="{reverse("dashboard:index")}"' in header
    assert f'href="{reverse("api:docs")}"' in header


def test_a_stars_config_is_edited_as_its_limits(staff_client):
    page = staff_client.get(url(Star, "add")).content.decode()
    assert 'name="config"' in page and "data-django-jsonform" in page
    for key in ("max_delegations", "max_depth", "member_timeout", "rounds"):
        assert f"&quot;{key}&quot;" in page
    # What the editor sends: every limit, the unset ones empty; those are not saved.
    sent = json.dumps({"max_delegations": None, "max_depth": 2, "member_timeout": None, "rounds": None})
    response = staff_client.post(url(Star, "add"), star_form("team", []) | {"config": sent})
    assert response.status_code == 302, form_errors(response)
    assert Star.objects.get(id="team").config == {"max_depth": 2}
    # Out of bounds: the model's message, on the form.
    response = staff_client.post(url(Star, "add"), star_form("team-2", []) | {"config": '{"rounds": 0}'})
    assert response.status_code == 200
    assert "rounds must be from 1 to 20" in form_errors(response)
    assert not Star.objects.filter(id="team-2").exists()
