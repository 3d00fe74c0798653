"""Remote A2A agents declared as rows (admin, API): tools, star members, and the allowlist.

The live A2A server of ``conftest.py`` plays the remote agent (its ``echo`` agent answers
"echo: <message>"). Runs go through ``embedded_worker``: the worker thread in embedded mode, a
``celery worker`` process in distributed mode, which starts before these rows exist.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from asteros_site.options import load_options
from cosmos.models import RunStatus
from cosmos.runtime.tools import ToolContext, tool_registry
from cosmos.services.runs import start_run
from interfaces.connectors import declared
from interfaces.connectors.models import RemoteAgent
from interfaces.connectors.remote import REMOTE_EVENT, RemoteA2ANotAllowed
from interfaces.keys.models import APIKey
from tests.factories import build_agent, build_remote_agent, make_agent, make_remote_agent
from tests.interfaces.http.conftest import SETTINGS_KEY, assert_error, bearer
from tests.stars.helpers import child_of, delegating_leader, make_team
from tests.support.model_server import ServerThread
from tests.support.runs import events, wait_for_run

from .helpers import base

pytestmark = pytest.mark.slow

ASK = {"when": "(?s)^(.+)$", "arguments": {"message": "$1"}}


def asking(tool_name: str) -> dict:
    """Scripted parameters: call ``tool_name`` with the whole user message."""
    return {"rules": [ASK | {"call": tool_name}]}


def context(events_seen: list[dict]) -> ToolContext:
    async def emit(event: dict) -> None:
        events_seen.append(event)

    return ToolContext(run_id="parent-run", emit=emit, tool_call_id="call-1")


def redirecting_app(target: str):
    """An HTTP server that answers every request with 307 to the same path on ``target``, and
    serves one card of its own (``/elsewhere``) whose interfaces are on ``target``."""

    async def app(scope, receive, send) -> None:
        path = scope["path"]
        if path == "/elsewhere/.well-known/agent-card.json":
            interface = {"url": base(target), "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            card = {"name": "Elsewhere", "supportedInterfaces": [interface], "capabilities": {"streaming": True}}
            headers, status, body = [(b"content-type", b"application/json")], 200, json.dumps(card).encode()
        else:
            query = scope.get("query_string", b"").decode()
            location = target + path + (f"?{query}" if query else "")
            headers, status, body = [(b"location", location.encode())], 307, b""
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def redirector(a2a_server):
    with ServerThread(redirecting_app(a2a_server.url)) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rows of a test are rolled back; their cached tools must not outlive it in this process."""
    yield
    declared.declared_agents.forget()


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


# --- the row: validation, and what agents may name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "calculator"}, "name"),  # a tool registered from code
        ({"name": "9lives"}, "name"),
        ({"name": "has space"}, "name"),
        ({"url": "ftp://example.com/agent"}, "url"),
        ({"url": "http://user:secret@example.com/a2a"}, "url"),
        ({"url": "https://example.com/a2a#card"}, "url"),
        ({"auth_secret": "MY TOKEN"}, "auth_secret"),
        ({"auth_header": "X Bad"}, "auth_header"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_a_bad_row_is_refused_by_clean(fields, field):
    with pytest.raises(ValidationError) as caught:
        build_remote_agent(**fields).full_clean()
    assert field in caught.value.message_dict


@pytest.mark.django_db
def test_agents_may_list_a_declared_remote_agent_and_nothing_unknown():
    remote = make_remote_agent()
    assert remote.name in tool_registry and remote.name in tool_registry.names()
    make_agent(tools=["calculator", remote.name])
    with pytest.raises(ValidationError, match="Unknown tool"):
        build_agent(tools=["no_such_remote"]).full_clean()
    remote.enabled = False
    remote.save()  # the saving process forgets its cache at once
    with pytest.raises(ValidationError, match="Unknown tool"):
        build_agent(tools=[remote.name]).full_clean()


@pytest.mark.django_db
def test_an_a2a_agent_names_a_remote_agent_as_its_model():
    remote = make_remote_agent()
    make_agent(provider="a2a", model=remote.name)
    for model in ("", "no_such_remote"):
        with pytest.raises(ValidationError) as caught:
            build_agent(provider="a2a", model=model).full_clean()
        assert "remote A2A agent" in caught.value.message_dict["model"][0]


@pytest.mark.django_db
def test_another_process_change_is_seen_within_the_cache_time(monkeypatch):
    remote = make_remote_agent(description="First words.")
    cache = declared.declared_agents
    assert tool_registry.get(remote.name).description == "First words."
    # As another process would: an UPDATE this process gets no signal of.
    RemoteAgent.objects.filter(pk=remote.name).update(description="Second words.")
    assert tool_registry.get(remote.name).description == "First words."  # cached
    now = cache.clock()
    monkeypatch.setattr(cache, "clock", lambda: now + declared.CACHE_SECONDS + 1)
    assert tool_registry.get(remote.name).description == "Second words."
    RemoteAgent.objects.filter(pk=remote.name).update(enabled=False)
    monkeypatch.setattr(cache, "clock", lambda: now + 2 * declared.CACHE_SECONDS + 2)
    assert tool_registry.get(remote.name) is None


@pytest.mark.django_db(transaction=True)
async def test_lookups_from_asyncio_code():
    from asgiref.sync import sync_to_async

    remote = await sync_to_async(make_remote_agent)()
    # A synchronous lookup on an event loop's thread queries on another thread (Django refuses here).
    assert tool_registry.get(remote.name).name == remote.name
    declared.declared_agents.forget()
    assert (await declared.find_remote(remote.name)).url == remote.url  # on cosmos's database threads
    assert await declared.find_remote("no_such_remote") is None


def test_the_allowlist_option():
    options = load_options({"ASTEROS_A2A_REMOTE_ALLOWLIST": " Agents.Example.com, *.corp.test ,10.0.0.7:8443"})
    assert options.a2a_remote_allowlist == ("agents.example.com", "*.corp.test", "10.0.0.7:8443")
    assert load_options({}).a2a_remote_allowlist == ()
    for bad in ("https://agents.example.com", "agents.example.com/a2a", "host:99999"):
        with pytest.raises(ImproperlyConfigured, match="ASTEROS_A2A_REMOTE_ALLOWLIST"):
            load_options({"ASTEROS_A2A_REMOTE_ALLOWLIST": bad})


# --- the card: read when the row is saved, and the tool's description by default


@pytest.mark.django_db
def test_the_admin_declares_a_remote_agent_and_reads_its_card(
    staff_client, a2a_server, django_capture_on_commit_callbacks
):
    form = {"name": "echo_remote", "url": base(a2a_server.url), "auth_header": "Authorization", "timeout": "30"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/admin/connectors/remoteagent/add/", form | {"enabled": "on"})
    assert response.status_code == 302, response.content[:2000]
    row = RemoteAgent.objects.get(pk="echo_remote")
    assert (row.card_name, row.card_description, row.card_error) == ("Echo", "Repeats what you say.", "")
    assert tool_registry.get("echo_remote").description == "Repeats what you say."  # the card's

    refused = staff_client.post("/admin/connectors/remoteagent/add/", form | {"name": "calculator"})
    assert refused.status_code == 200 and "registered from code" in refused.content.decode()
    listed = staff_client.get("/admin/connectors/remoteagent/", {"q": "echo"})
    assert "echo_remote" in listed.content.decode() and "Echo" in listed.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_api_declares_a_remote_agent(api_client, a2a_server, settings_options):
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    reader, admin = APIKey.generate("reader", ["read"])[1], APIKey.generate("admin", ["admin"])[1]
    body = {"name": "api_echo", "url": base(a2a_server.url), "auth_secret": "env:ASTEROS_SECRET_API_ECHO"}
    denied = api_client.post("/api/remote-agents", body, format="json", **bearer(reader))
    assert_error(denied, 403, "permission_denied")
    assert_error(api_client.get("/api/remote-agents"), 401, "not_authenticated")
    bad = api_client.post("/api/remote-agents", body | {"url": "http://u:p@x.test/"}, format="json", **bearer(admin))
    assert "url" in assert_error(bad, 400)["details"]

    made = api_client.post("/api/remote-agents", body, format="json", **bearer(admin))
    assert made.status_code == 201, made.content
    assert made.json()["card_name"] == "Echo" and made.json()["auth_secret"] == "env:ASTEROS_SECRET_API_ECHO"
    listed = api_client.get("/api/tools", {"limit": 500}, **bearer(reader)).json()["results"]
    assert {"name": "api_echo", "description": "Repeats what you say."}.items() <= next(
        t for t in listed if t["name"] == "api_echo"
    ).items()


# --- the allowlist: the agent's own host, and ASTEROS_A2A_REMOTE_ALLOWLIST


@pytest.mark.django_db
def test_a_redirect_off_the_allowed_hosts_is_refused(redirector, a2a_server, settings_options):
    tool = tool_registry.get(make_remote_agent(url=base(redirector.url)).name)
    seen: list[dict] = []
    with pytest.raises(RemoteA2ANotAllowed, match="ASTEROS_A2A_REMOTE_ALLOWLIST") as caught:
        asyncio.run(tool.fn(message="hi", context=context(seen)))
    assert f"'127.0.0.1:{port_of(a2a_server.url)}' is not the remote agent's own host" in str(caught.value)
    assert [e["type"] for e in seen] == ["SUBAGENT_STARTED", "SUBAGENT_ERROR"]

    settings_options(a2a_remote_allowlist=(f"127.0.0.1:{port_of(a2a_server.url)}",))
    assert asyncio.run(tool.fn(message="hi", context=context([]))) == "echo: hi"  # followed, now allowed


@pytest.mark.django_db
def test_a_card_pointing_elsewhere_is_refused(redirector):
    tool = tool_registry.get(make_remote_agent(url=f"{redirector.url}/elsewhere").name)
    with pytest.raises(RemoteA2ANotAllowed, match="Refused to call"):
        asyncio.run(tool.fn(message="hi", context=context([])))


# --- runs: a row saved after the worker started is used by the next run


def executed_elsewhere_when_distributed(run, settings) -> None:
    if settings.ASTEROS.distributed:
        assert run.worker_id.split(":")[1] != str(os.getpid())  # a worker process, started before the row


@pytest.mark.django_db(transaction=True)
def test_a_declared_remote_agent_is_a_tool_of_the_next_run(embedded_worker, a2a_server, settings):
    remote = make_remote_agent(url=base(a2a_server.url))
    agent = make_agent(tools=[remote.name], parameters=asking(remote.name))
    run, _ = start_run("agent", agent.id, "relay this", origin="cli")
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "The result is echo: relay this."
    executed_elsewhere_when_distributed(run, settings)
    seen = events(run.id)
    started = next(e for e in seen if e["type"] == "SUBAGENT_STARTED")
    assert started["agent"] == remote.name and started["parentRunId"] == str(run.id)
    assert any(e["type"] == "CUSTOM" and e["name"] == REMOTE_EVENT for e in seen)
    finished = next(e for e in seen if e["type"] == "SUBAGENT_FINISHED")
    assert finished["output"] == "echo: relay this"


@pytest.mark.django_db(transaction=True)
def test_a_remote_agent_as_a_star_member(embedded_worker, a2a_server, settings):
    remote = make_remote_agent(url=base(a2a_server.url))
    member = make_agent(provider="a2a", model=remote.name, description="A remote echo.")
    star = make_team(delegating_leader(("remote", "part one")), {"remote": member})
    run, _ = start_run("star", star.id, "split the work", origin="cli")
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert "echo: part one" in run.output
    executed_elsewhere_when_distributed(run, settings)

    child = child_of(run.id, "remote")[0]
    assert child.status == RunStatus.SUCCEEDED and child.output == "echo: part one"
    seen = events(child.id)
    types = [e["type"] for e in seen]
    # The remote answer is the member's own text, with the remote stream forwarded beside it.
    assert "".join(e["delta"] for e in seen if e["type"] == "TEXT_MESSAGE_CONTENT") == "echo: part one"
    assert types.index("SUBAGENT_STARTED") < types.index("TEXT_MESSAGE_START") < types.index("TEXT_MESSAGE_END")
    assert any(e["type"] == "CUSTOM" and e["name"] == REMOTE_EVENT for e in seen)
    assert next(e for e in seen if e["type"] == "SUBAGENT_FINISHED")["agent"] == remote.name
    star_finished = [e for e in events(run.id) if e["type"] == "SUBAGENT_FINISHED"]
    assert {e["member"] for e in star_finished} == {"lead", "remote"}


@pytest.mark.django_db(transaction=True)
def test_a_redirect_off_the_allowed_hosts_fails_the_call_not_the_worker(embedded_worker, redirector):
    remote = make_remote_agent(url=base(redirector.url), timeout=20)
    asker = make_agent(tools=[remote.name], parameters=asking(remote.name))
    run, _ = start_run("agent", asker.id, "hello", origin="cli")
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED, run.error  # the model read the tool error and answered
    result = next(e for e in events(run.id) if e["type"] == "TOOL_CALL_RESULT")
    assert "RemoteA2ANotAllowed" in result["content"] and "ASTEROS_A2A_REMOTE_ALLOWLIST" in result["content"]
    assert any(e["type"] == "SUBAGENT_ERROR" for e in events(run.id))

    # An agent that *is* the remote agent fails its run with a clear code.
    member = make_agent(provider="a2a", model=remote.name)
    run, _ = start_run("agent", member.id, "hello", origin="cli")
    run = wait_for_run(run.id)
    assert run.status == RunStatus.FAILED and run.error["code"] == "remote_agent_not_allowed"
    last = events(run.id)[-1]
    assert last["type"] == "RUN_ERROR" and "not the remote agent's own host" in last["message"]
