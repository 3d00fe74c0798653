"""Credentials by reference (``cosmos.secrets``), as remote A2A agents use them: refused at
validation in the API and the admin, refused again at call time, shown as set / not set only.
Remote agents on 127.0.0.1 reach the outbound policy like any other call."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from asteros_site.options import load_options
from cosmos.outbound import FAILURE_MESSAGE
from cosmos.secrets import (
    SecretReferenceError,
    parse_reference,
    reference_status,
    resolve_credential,
)
from interfaces.connectors import declared
from interfaces.connectors.models import RemoteAgent
from interfaces.connectors.remote import RemoteA2AError
from interfaces.keys.models import APIKey
from tests.factories import make_remote_agent
from tests.interfaces.http.conftest import SETTINGS_KEY, bearer
from tests.support.model_server import ServerThread

from .helpers import base

SERVER_SECRETS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ASTEROS_API_KEY", "ANTHROPIC_API_KEY")
TOKEN_VALUE = "tok-value-0123456789-never-shown"


@pytest.fixture(autouse=True)
def _fresh_cache():
    yield
    declared.declared_agents.forget()


# --- the reference rules


@pytest.mark.parametrize(
    "reference",
    [
        *(f"env:{name}" for name in SERVER_SECRETS),
        "env:secret_key",  # case does not get around it
        "env:HOME",  # not ASTEROS_SECRET_*, not listed
        "ASTEROS_SECRET_TOKEN",  # a bare name is not a reference
        "sk-live-0123456789",  # a value is never accepted
        "env:",
        "env:ASTEROS SECRET",
        "vault:ASTEROS_SECRET_TOKEN",
    ],
)
def test_refused_references(reference, settings_options):
    settings_options(secret_env=("HOME_TOKEN",))
    with pytest.raises(SecretReferenceError):
        parse_reference(reference)
    with pytest.raises(SecretReferenceError):
        resolve_credential(reference, {"SECRET_KEY": "s", "HOME": "/root", "ASTEROS_SECRET_TOKEN": "t"})
    assert reference_status(reference) in ("refused",)


def test_accepted_references(settings_options):
    settings_options(secret_env=("PARTNER_TOKEN",))
    env = {"ASTEROS_SECRET_A": "a", "PARTNER_TOKEN": "p"}
    assert resolve_credential("env:ASTEROS_SECRET_A", env) == "a"
    assert resolve_credential("env:PARTNER_TOKEN", env) == "p"
    assert resolve_credential("env:ASTEROS_SECRET_UNSET", env) is None
    assert reference_status("env:ASTEROS_SECRET_A", env) == "set"
    assert reference_status("env:ASTEROS_SECRET_UNSET", env) == "not set"
    assert reference_status("", env) == "none"


@pytest.mark.parametrize(
    "name", [*SERVER_SECRETS, "asteros_api_key", "ASTEROS_ADMIN_PASSWORD", "ASTEROS_NEW_OPTION", "DJANGO_X"]
)
def test_secret_env_can_never_name_a_server_secret(name):
    with pytest.raises(ImproperlyConfigured, match="ASTEROS_SECRET_ENV"):
        load_options({"ASTEROS_SECRET_ENV": f"PARTNER_TOKEN, {name}"})
    with pytest.raises(ImproperlyConfigured, match="ASTEROS_SECRET_ENV"):
        load_options({"ASTEROS_SECRET_ENV": "NOT A NAME"})
    assert load_options({"ASTEROS_SECRET_ENV": " PARTNER_TOKEN ,OTHER"}).secret_env == ("PARTNER_TOKEN", "OTHER")


# --- the API and the admin refuse the same references


@pytest.fixture
def admin_key(settings_options) -> str:
    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    return APIKey.generate("admin", ["admin"])[1]


@pytest.mark.django_db
@pytest.mark.parametrize("reference", [f"env:{name}" for name in SERVER_SECRETS] + ["ASTEROS_API_KEY", "env:HOME"])
def test_the_api_refuses_a_forbidden_reference(api_client, admin_key, reference):
    body = {"name": "leaky", "url": "https://agents.example.test/a2a", "auth_secret": reference}
    response = api_client.post("/api/remote-agents", body, format="json", **bearer(admin_key))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and "auth_secret" in error["details"]
    assert not RemoteAgent.objects.filter(pk="leaky").exists()


@pytest.mark.django_db(transaction=True)
def test_the_api_shows_whether_a_reference_resolves_never_the_value(
    api_client, admin_key, monkeypatch, settings_options
):
    monkeypatch.setenv("ASTEROS_SECRET_PARTNER", TOKEN_VALUE)
    body = {"name": "partner", "url": "http://127.0.0.1:9/a2a", "auth_secret": "env:ASTEROS_SECRET_PARTNER"}
    made = api_client.post("/api/remote-agents", body, format="json", **bearer(admin_key))
    assert made.status_code == 201, made.content
    assert made.json()["auth_secret"] == "env:ASTEROS_SECRET_PARTNER"
    assert made.json()["auth_secret_status"] == "set"
    monkeypatch.delenv("ASTEROS_SECRET_PARTNER")
    shown = api_client.get("/api/remote-agents/partner", **bearer(admin_key))
    assert shown.json()["auth_secret_status"] == "not set"
    monkeypatch.setenv("ASTEROS_SECRET_PARTNER", TOKEN_VALUE)
    for response in (shown, api_client.get("/api/remote-agents", **bearer(admin_key))):
        assert TOKEN_VALUE not in response.content.decode()
    # A listed extra name works too.
    settings_options(secret_env=("PARTNER_TOKEN",))
    other = body | {"name": "partner2", "auth_secret": "env:PARTNER_TOKEN"}
    assert api_client.post("/api/remote-agents", other, format="json", **bearer(admin_key)).status_code == 201


@pytest.mark.django_db
def test_the_admin_refuses_a_forbidden_reference_and_shows_status_only(staff_client, monkeypatch):
    form = {"name": "leaky", "url": "https://agents.example.test/a2a", "auth_header": "Authorization", "timeout": "30"}
    for reference in ("env:SECRET_KEY", "env:DATABASE_URL", "env:ASTEROS_API_KEY", "ASTEROS_SECRET_X"):
        refused = staff_client.post("/admin/connectors/remoteagent/add/", form | {"auth_secret": reference})
        assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert not RemoteAgent.objects.exists()

    monkeypatch.setenv("ASTEROS_SECRET_PARTNER", TOKEN_VALUE)
    make_remote_agent("partner", auth_secret="env:ASTEROS_SECRET_PARTNER")
    make_remote_agent("unset", auth_secret="env:ASTEROS_SECRET_NOT_THERE")
    listed = staff_client.get("/admin/connectors/remoteagent/").content.decode()
    assert "env:ASTEROS_SECRET_PARTNER (set)" in listed and "env:ASTEROS_SECRET_NOT_THERE (not set)" in listed
    page = staff_client.get("/admin/connectors/remoteagent/partner/change/").content.decode()
    assert TOKEN_VALUE not in listed and TOKEN_VALUE not in page


# --- at call time: a row that slipped past validation still reaches no server secret


class Recorder:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    async def __call__(self, scope, receive, send) -> None:
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        body = json.dumps({"error": "nothing here"}).encode()
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


@pytest.mark.django_db
def test_a_forbidden_reference_in_the_database_is_refused_at_call_time(monkeypatch, settings_options):
    monkeypatch.setenv("SECRET_KEY", "the-servers-own-secret-key")
    recorder = Recorder()
    with ServerThread(recorder) as server:
        settings_options(outbound_allowlist=(f"127.0.0.1:{server.port}",))
        row = make_remote_agent(url=f"{server.url}/a2a")
        RemoteAgent.objects.filter(pk=row.pk).update(auth_secret="env:SECRET_KEY")  # past validation
        row.refresh_from_db()
        with pytest.raises(RemoteA2AError, match="refused"):
            declared.auth_headers(row)()
        tool = declared.declared_agents.get(row.name).tool
        result = asyncio.run(_call(tool))
        assert isinstance(result, RemoteA2AError) and "refused" in str(result)
        # The card (read without auth) may be fetched; the secret is sent nowhere.
        assert all("the-servers-own-secret-key" not in json.dumps(h) for h in recorder.headers)
        assert RemoteAgent.objects.get(pk=row.pk).auth_secret_status == "refused"


async def _call(tool):
    from cosmos.runtime.tools import ToolContext

    async def emit(event):
        return None

    try:
        return await tool.fn(message="hi", context=ToolContext(run_id="r", emit=emit, tool_call_id="c"))
    except RemoteA2AError as exc:
        return exc


# --- remote agents go through the outbound policy


@pytest.mark.django_db
def test_a_remote_agent_on_loopback_is_refused_unless_allowlisted(a2a_server, settings_options):
    settings_options(outbound_allowlist=())
    row = make_remote_agent(url=base(a2a_server.url))
    checked = declared.read_card(row.name)
    assert checked.card_error.endswith(FAILURE_MESSAGE) and checked.card_name == ""
    port = a2a_server.url.rsplit(":", 1)[1]
    settings_options(outbound_allowlist=(f"127.0.0.1:{port}",))
    assert declared.read_card(row.name).card_name == "Echo"


# --- the migration: a bare variable name becomes a reference


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_a_name_into_a_reference():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("interfaces", "0003_remoteagent")], [("interfaces", "0004_remoteagent_auth_secret")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("interfaces", "RemoteAgent")
        old.objects.create(name="named", url="https://a.example.test/", auth_env="ASTEROS_SECRET_OLD")
        old.objects.create(name="leaky", url="https://a.example.test/", auth_env="DATABASE_URL")
        old.objects.create(name="none", url="https://a.example.test/", auth_env="")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    rows = dict(RemoteAgent.objects.values_list("name", "auth_secret"))
    assert rows == {"named": "env:ASTEROS_SECRET_OLD", "leaky": "env:DATABASE_URL", "none": ""}
    # The old row that named a server secret converts, and is refused whenever it is used.
    assert RemoteAgent.objects.get(pk="leaky").auth_secret_status == "refused"
    RemoteAgent.objects.all().delete()
