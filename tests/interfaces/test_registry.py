"""The AsterOS registry (generated APIs), the seed's Python API and interfaces (autodiscovery and
start-up: tests/test_boot.py)."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from asteros_site import system as asteros_module
from asteros_site.system import AsterOS, resolve_interface
from cosmos.cosmos import Cosmos
from cosmos.models import Agent, Source
from cosmos.runtime.agent import AgentSpec
from cosmos.services.errors import Conflict, Invalid, NotFound
from interfaces.base import Interface
from interfaces.http.registry import AlreadyRegistered, NotRegistered, register, site
from interfaces.http.viewsets import GenericResourceViewSet, ReadOnlyResourceViewSet, ResourceViewSet
from stars.models import Membership, Role, Star, StarMessage
from stars.stars import Stars
from tests.factories import make_agent, make_membership, make_star, workflow_definition
from tests.support.registry import temporarily

ROOT = Path(__file__).resolve().parents[2]


# --- the registry: generated APIs


class MessageViewSet(ResourceViewSet):
    resource_name = "star-messages"
    filter_fields = ("sender", "star")
    search_fields = ("content",)
    ordering_fields = ("created_at", "sender")
    read_only_fields = ("created_at",)
    write_once_fields = ()

    @action(detail=True, methods=["get"], filter_backends=[])
    def shout(self, request, *args, **kwargs):
        return Response({"shout": self.get_object().content.upper()})


@pytest.fixture
def messages_api(db):
    with temporarily(StarMessage, MessageViewSet) as resource:
        yield resource


@pytest.mark.django_db
def test_register_generates_crud_with_filter_search_ordering_and_pagination(api_client, messages_api):
    star = make_star()
    for index, (sender, content) in enumerate([("ann", "hello there"), ("bob", "general kenobi"), ("ann", "bye")]):
        response = api_client.post(
            "/api/star-messages",
            {"star": star.id, "sender": sender, "recipient": "*", "content": content},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["id"] == index + 1 or response.json()["id"]

    listed = api_client.get("/api/star-messages").json()
    assert listed["count"] == 3 and len(listed["results"]) == 3
    assert [m["content"] for m in api_client.get("/api/star-messages?sender=ann").json()["results"]] == [
        "hello there",
        "bye",
    ]
    assert [m["sender"] for m in api_client.get("/api/star-messages?search=kenobi").json()["results"]] == ["bob"]
    ordered = api_client.get("/api/star-messages?ordering=-sender").json()["results"]
    assert [m["sender"] for m in ordered] == ["bob", "ann", "ann"]
    page = api_client.get("/api/star-messages?limit=1&offset=1").json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"] and page["previous"]

    first = listed["results"][0]["id"]
    assert api_client.patch(f"/api/star-messages/{first}", {"content": "edited"}, format="json").status_code == 200
    assert api_client.get(f"/api/star-messages/{first}/shout").json() == {"shout": "EDITED"}
    assert api_client.delete(f"/api/star-messages/{first}").status_code == 204
    assert api_client.get(f"/api/star-messages/{first}").status_code == 404
    # the generated serializer validates with the model: a star that does not exist is a 400
    bad = api_client.post("/api/star-messages", {"star": "nope", "sender": "a", "recipient": "b", "content": "c"})
    assert bad.status_code == 400 and "star" in bad.json()["error"]["details"]


@pytest.mark.django_db
def test_the_api_root_lists_every_registered_resource(api_client, messages_api):
    resources = api_client.get("/api").json()["resources"]
    assert set(resources) >= {"agents", "templates", "stars", "workflows", "runs", "sessions", "tools", "star-messages"}
    assert resources["star-messages"].endswith("/api/star-messages")


@pytest.mark.django_db
def test_a_temporary_registration_goes_away(api_client):
    with temporarily(StarMessage, MessageViewSet):
        assert api_client.get("/api/star-messages").status_code == 200
    assert not site.is_registered(StarMessage)
    assert api_client.get("/api/star-messages").status_code == 404


def test_registering_twice_is_an_error():
    with pytest.raises(AlreadyRegistered, match="already registered"):
        site.register(Agent)
    with temporarily(StarMessage, resource_name="agents-two"), pytest.raises(AlreadyRegistered):
        site.register(StarMessage)
    with pytest.raises(AlreadyRegistered, match="named 'agents'"):
        site.register(StarMessage, resource_name="agents")
    assert not site.is_registered(StarMessage)


def test_unregistering_what_is_not_registered_is_an_error():
    with pytest.raises(NotRegistered):
        site.unregister(StarMessage)
    with pytest.raises(NotRegistered):
        site.get("nothing-here")


def test_a_config_naming_a_missing_field_is_refused():
    with pytest.raises(ImproperlyConfigured, match="no field 'nope'"):
        site.register(StarMessage, filter_fields=("nope",))
    with pytest.raises(ImproperlyConfigured, match="pagination"):
        site.register(StarMessage, pagination="pages")
    with pytest.raises(ImproperlyConfigured, match="subclass"):
        site.register(StarMessage, object)
    assert not site.is_registered(StarMessage)


@pytest.mark.django_db
def test_a_read_only_viewset_serves_no_writes(api_client):
    with temporarily(StarMessage, ReadOnlyResourceViewSet) as resource:
        assert resource.name == "star-messages"
        assert api_client.get("/api/star-messages").status_code == 200
        response = api_client.post("/api/star-messages", {}, format="json")
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


class ListAndCreate(GenericResourceViewSet, mixins.ListModelMixin, mixins.CreateModelMixin):
    resource_name = "star-messages"


@pytest.mark.django_db
def test_drf_mixins_choose_the_operations(api_client):
    star = make_star()
    message = {"star": star.id, "sender": "ann", "recipient": "*", "content": "hi"}
    with temporarily(StarMessage, ListAndCreate):
        created = api_client.post("/api/star-messages", message, format="json")
        assert created.status_code == 201, created.content
        assert api_client.get("/api/star-messages").json()["count"] == 1
        assert api_client.get(f"/api/star-messages/{created.json()['id']}").status_code == 404  # no detail route


def test_drf_write_mixins_listed_first_are_refused():
    # Their perform_create (a bare serializer.save()) would shadow the resource's write semantics.
    class MixinsFirst(mixins.CreateModelMixin, GenericResourceViewSet):
        resource_name = "star-messages"

    with pytest.raises(ImproperlyConfigured, match="before DRF's CreateModelMixin"):
        site.register(StarMessage, MixinsFirst)
    assert not site.is_registered(StarMessage)


class Unpaged(ResourceViewSet):
    resource_name = "star-messages"
    pagination_class = None
    filter_backends: list = []
    filter_fields = ("sender",)


@pytest.mark.django_db
def test_declared_pagination_and_filter_backends_are_kept(api_client):
    star = make_star()
    StarMessage.objects.create(star=star, sender="ann", recipient="*", content="one")
    StarMessage.objects.create(star=star, sender="bob", recipient="*", content="two")
    with temporarily(StarMessage, Unpaged):
        listed = api_client.get("/api/star-messages?sender=ann").json()
    assert isinstance(listed, list) and len(listed) == 2  # no page envelope, no filtering


def test_the_decorator_registers_like_admin_register():
    try:

        @register(StarMessage)
        class Decorated(ResourceViewSet):
            resource_name = "decorated"

        assert site.get(StarMessage).base_viewset is Decorated
        assert site.get("decorated").model is StarMessage
    finally:
        site.unregister(StarMessage)


@pytest.mark.django_db
def test_writes_of_agents_go_through_the_service_so_max_agents_holds(api_client, settings_options):
    settings_options(max_agents=1)
    make_agent()
    response = api_client.post("/api/agents", {"id": "one-too-many", "provider": "scripted"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "cosmos_full",
        "message": "cosmos is full (max 1 agents)",
        "details": None,
    }


# --- the seed's Python API


class Recorder(Interface):
    type = "test"

    def __init__(self, name: str = "recorder", fail_in: str | None = None) -> None:
        super().__init__(name)
        self.calls: list[tuple] = []
        self.fail_in = fail_in

    def _record(self, *call) -> None:
        self.calls.append(call)
        if self.fail_in == call[0]:
            raise RuntimeError(f"{self.name} breaks in {call[0]}")

    def start(self, os) -> None:
        super().start(os)
        self._record("start", os.name)

    def stop(self) -> None:
        self._record("stop")

    def on_agent_registered(self, agent_id, agent) -> None:
        self._record("agent", agent_id, agent.source)

    def on_stars_registered(self, stars_id, stars) -> None:
        self._record("stars", stars_id)

    def on_workflow_registered(self, workflow_id, workflow) -> None:
        self._record("workflow", workflow_id)


@pytest.mark.django_db
def test_interface_lifecycle_with_a_late_added_interface():
    os_ = AsterOS(name="Lifecycle", cosmos=Cosmos())
    early = os_.add_interface(Recorder("early"))
    os_.register_agent("life-agent", Agent(provider="scripted", description="an unsaved Agent"))
    assert early.calls == []  # nothing happens before start
    os_.start()
    assert early.calls == [("start", "Lifecycle"), ("agent", "life-agent", "code")]

    os_.register_agent("life-agent-2", {"provider": "scripted"})  # after start: written and announced at once
    assert Agent.objects.get(id="life-agent-2").source == Source.CODE
    assert early.calls[-1] == ("agent", "life-agent-2", "code")

    late = os_.add_interface(Recorder("late"))  # started and told about everything so far
    assert late.calls == [("start", "Lifecycle"), ("agent", "life-agent", "code"), ("agent", "life-agent-2", "code")]

    removed = os_.remove_interface("late")
    assert removed is late and late.calls[-1] == ("stop",)
    with pytest.raises(NotRegistered):
        os_.remove_interface("late")
    with pytest.raises(AlreadyRegistered):
        os_.add_interface(Recorder("early"))
    assert set(os_.interfaces) == {"http", "early"}
    os_.stop()
    assert early.calls[-1] == ("stop",)


@pytest.mark.django_db
def test_a_failing_callback_is_logged_with_the_interface_name_and_breaks_nothing(caplog):
    os_ = AsterOS(name="Sturdy", http=False)
    broken = os_.add_interface(Recorder("broken", fail_in="agent"))
    healthy = os_.add_interface(Recorder("healthy"))
    os_.register_agent("sturdy-agent", {"provider": "scripted"})
    with caplog.at_level(logging.ERROR, logger="asteros_site.system"):
        os_.start()
    assert ("agent", "sturdy-agent", "code") in healthy.calls
    assert ("agent", "sturdy-agent", "code") in broken.calls
    failures = [r for r in caplog.records if getattr(r, "interface", None) == "broken"]
    assert failures and "broken" in failures[0].getMessage() and failures[0].callback == "on_agent_registered"

    failing_start = Recorder("failing-start", fail_in="start")
    with caplog.at_level(logging.ERROR, logger="asteros_site.system"):
        os_.add_interface(failing_start)  # its start fails: logged, not announced to, still removable
    assert failing_start.calls == [("start", "Sturdy")]
    os_.remove_interface("failing-start")


@pytest.mark.django_db
def test_register_agent_accepts_specs_mappings_and_models_and_refuses_duplicates():
    os_ = AsterOS(http=False)
    spec = AgentSpec(
        id="from-spec", name="Spec", provider="scripted", tools=("calculator",), approvals={"calculator": "x > 1"}
    )
    os_.register_agent("from-spec", spec)
    os_.register_agent("from-dict", {"provider": "scripted", "tools": ["calculator"]})
    with pytest.raises(AlreadyRegistered):
        os_.register_agent("from-dict", {"provider": "scripted"})
    with pytest.raises(Invalid, match="not a valid agent id"):
        os_.register_agent("Not Valid", {"provider": "scripted"})
    os_.start()
    spec_agent = Agent.objects.get(id="from-spec")
    assert spec_agent.name == "Spec" and spec_agent.tools == ["calculator"] and spec_agent.source == Source.CODE
    assert spec_agent.approvals == {"calculator": "x > 1"}
    assert os_.registered()["agents"] == ["from-spec", "from-dict"]


@pytest.mark.django_db
def test_a_bad_registration_raises_at_a_strict_start_after_writing_the_others():
    os_ = AsterOS(http=False)
    os_.register_agent("good-agent", {"provider": "scripted"})
    os_.register_agent("bad-agent", {"provider": "no-such-provider"})
    with pytest.raises(Invalid):
        os_.start()
    assert Agent.objects.filter(id="good-agent").exists()
    assert not Agent.objects.filter(id="bad-agent").exists()


@pytest.mark.django_db
def test_register_stars_with_the_seed_shape_and_a_mapping():
    make_agent("leader-agent")
    make_agent("worker-agent")
    recorder = Recorder()
    os_ = AsterOS(name="Teams", http=False, interfaces=[recorder])
    os_.register_stars("chat-team", Stars(os_.cosmos, "ChatTeam").add_member("leader", "leader-agent", "leader"))
    os_.register_stars("other-team", {"name": "Other", "members": [("lead", "worker-agent", "leader")]})
    os_.register_workflow("flow", {"definition": workflow_definition("leader-agent")})
    os_.start()
    star = Star.objects.get(id="chat-team")
    assert star.source == Source.CODE
    assert list(Membership.objects.filter(star=star).values_list("name", "agent_id", "role")) == [
        ("leader", "leader-agent", "leader")
    ]
    assert Star.objects.get(id="other-team").memberships.get().name == "lead"
    assert ("stars", "chat-team") in recorder.calls and ("workflow", "flow") in recorder.calls


def test_interfaces_resolve_from_dotted_paths_and_refuse_others():
    interface = resolve_interface("interfaces.http.interface.HTTPInterface")
    assert interface.name == "http" and interface.type == "http"
    with pytest.raises(ImproperlyConfigured, match="ASTEROS_INTERFACES"):
        resolve_interface("no.such.Interface")
    with pytest.raises(ImproperlyConfigured, match=r"not an interfaces\.base\.Interface"):
        resolve_interface("interfaces.http.viewsets.ResourceViewSet")


@pytest.mark.django_db
def test_interfaces_listed_in_settings_belong_to_the_default_os(settings_options, monkeypatch):
    settings_options(interfaces=("interfaces.http.interface.HTTPInterface",))
    monkeypatch.setattr(asteros_module, "_default", None)
    with pytest.raises(AlreadyRegistered):  # the HTTP interface is there by default: listing it again clashes
        asteros_module.default_os()
    settings_options(interfaces=())
    assert set(asteros_module.default_os().interfaces) == {"http", "a2a", "agui"}, "A2A and AG-UI are on by default"
    monkeypatch.setattr(asteros_module, "_default", None)
    settings_options(enable_a2a=False, enable_agui=False)
    assert set(asteros_module.default_os().interfaces) == {"http"}


# --- the Cosmos manager


@pytest.mark.django_db
def test_cosmos_manager_create_get_list_status_remove(settings_options):
    settings_options(max_agents=3)
    cosmos = Cosmos(max_agents=2)
    assert cosmos.max_agents == 2
    cosmos.create("alpha", provider="scripted")
    assert cosmos.get("alpha").id == "alpha"
    cosmos.create("beta", provider="scripted")
    with pytest.raises(Conflict, match=r"cosmos is full \(max 2 agents\)"):
        cosmos.create("gamma", provider="scripted")
    assert [a.id for a in cosmos.list()] == ["alpha", "beta"]
    assert cosmos.status("alpha")["status"] == "idle"
    cosmos.remove("alpha")
    with pytest.raises(NotFound):
        cosmos.get("alpha")
    with pytest.raises(NotFound, match="template"):
        cosmos.create("delta", template="no-such-template")


# --- the example interface in docs/examples


def _load_example(name: str):
    path = ROOT / "docs" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"asteros_docs_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_the_example_roster_interface(tmp_path):
    roster = _load_example("roster_interface").RosterInterface(tmp_path / "roster.json")
    os_ = AsterOS(name="Example", http=False)
    os_.register_agent("roster-agent", {"provider": "scripted", "name": "Roster agent"})
    os_.start()
    os_.add_interface(roster)  # late: started and told about the agent
    os_.register_workflow("roster-flow", {"definition": workflow_definition("roster-agent"), "name": "Flow"})
    written = json.loads((tmp_path / "roster.json").read_text())
    assert written == {
        "os": "Example",
        "agents": {"roster-agent": {"name": "Roster agent", "description": ""}},
        "stars": {},
        "workflows": {"roster-flow": {"name": "Flow", "description": ""}},
    }
    os_.remove_interface("roster")
    assert not (tmp_path / "roster.json").exists()


@pytest.mark.django_db
def test_the_example_star_messages_resource(api_client):
    viewset = _load_example("star_messages_resource").StarMessageViewSet
    star = make_star()
    make_membership(star, make_agent(), name="lead", role=Role.LEADER, order=0)
    make_membership(star, make_agent(), name="scout", order=1)
    with temporarily(StarMessage, viewset):
        for sender, recipient, content in [("lead", "scout", "go"), ("scout", "lead", "done"), ("lead", "*", "bye")]:
            body = {"star": star.id, "sender": sender, "recipient": recipient, "content": content}
            assert api_client.post("/api/star-messages", body, format="json").status_code == 201
        stranger = {"star": star.id, "sender": "nobody", "recipient": "lead", "content": "hi"}
        refused = api_client.post("/api/star-messages", stranger, format="json")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_member"  # the service
        listed = api_client.get("/api/star-messages?sender=lead").json()["results"]
        assert [m["content"] for m in listed] == ["go", "bye"]
        thread = api_client.get(f"/api/star-messages/{listed[0]['id']}/thread").json()
        assert [m["content"] for m in thread] == ["go", "done"]
        assert api_client.patch(f"/api/star-messages/{listed[0]['id']}", {"content": "x"}).status_code == 405


@pytest.mark.django_db
def test_a_registered_spec_stores_its_key_reference_never_its_key(settings_options):
    settings_options(outbound_allowlist=("models.example.com",))
    keyed = AgentSpec(
        id="keyed", name="Keyed", provider="openai", model="gpt-4o", api_key="sk-raw-never-stored",
        api_key_ref="env:ASTEROS_SECRET_KEYED", base_url="https://models.example.com/v1",
    )  # fmt: skip
    os_ = AsterOS(http=False)
    os_.register_agent("keyed", keyed)
    os_.register_agent("plain", AgentSpec(id="plain", name="Plain", provider="scripted"))
    os_.start()
    row = Agent.objects.get(id="keyed")
    assert (row.api_key, row.base_url) == ("env:ASTEROS_SECRET_KEYED", "https://models.example.com/v1")
    assert (Agent.objects.get(id="plain").api_key, Agent.objects.get(id="plain").base_url) == ("", "")
