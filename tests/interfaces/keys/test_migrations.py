"""The move of ``APIKey`` (to ``interfaces.keys``, label ``keys``) and ``RemoteAgent`` (to
``interfaces.connectors``, label ``connectors``) keeps their rows: the tables stayed
(``interfaces_apikey``, ``interfaces_remoteagent``) and only Django's picture of them moved
(``interfaces 0005``, ``keys 0001``, ``connectors 0001``, all ``SeparateDatabaseAndState``).

Rows written before the move, through the historical models, are read after it through the new
models and served by the API: a raw key issued before the move still authenticates. The move
also migrates back, rows and all. The database is left fully migrated whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from interfaces.connectors.models import RemoteAgent
from interfaces.keys.models import APIKey, hash_key

# Before the move: interfaces at 0004, and neither new app migrated.
OLD_INTERFACES = ("interfaces", "0004_remoteagent_auth_secret")
BEFORE_THE_MOVE = [OLD_INTERFACES, ("keys", None), ("connectors", None)]
RAW_KEY = "ak_0ld0ld00_issued-before-the-move"
SETTINGS_KEY = "s" * 32


def migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    """Migrate to ``targets`` with a fresh executor (each reads the recorded state anew)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def tables() -> set[str]:
    return set(connection.introspection.table_names())


@pytest.fixture
def before_the_move() -> Iterator[MigrationExecutor]:
    """The database as it was before the move; fully migrated again afterwards."""
    try:
        yield migrate(BEFORE_THE_MOVE)
    finally:
        migrate(latest())
        APIKey.objects.all().delete()
        RemoteAgent.objects.all().delete()


def historical(executor: MigrationExecutor, model_name: str):
    """A model of the interfaces app as it was at 0004."""
    return executor.loader.project_state([OLD_INTERFACES]).apps.get_model("interfaces", model_name)


def write_rows_before_the_move(executor: MigrationExecutor) -> None:
    old_key = historical(executor, "APIKey")
    old_remote = historical(executor, "RemoteAgent")
    old_key.objects.create(
        name="issued before",
        prefix=RAW_KEY.split("_")[1],
        hashed_key=hash_key(RAW_KEY),
        scopes=["read"],
        resources=["remote-agents"],
        requests_per_minute=100,
    )
    old_remote.objects.create(
        name="researcher",
        url="https://remote.example.test/",
        description="Finds things.",
        auth_secret="env:ASTEROS_SECRET_RESEARCHER",
        binding="JSONRPC",
        timeout=30.0,
    )


@pytest.mark.django_db(transaction=True)  # migrations run their own transactions
def test_the_moved_models_keep_their_rows_and_an_old_key_still_authenticates(before_the_move, settings_options):
    assert {"interfaces_apikey", "interfaces_remoteagent"} <= tables()
    write_rows_before_the_move(before_the_move)
    migrate(latest())

    key = APIKey.objects.get()
    assert (key.name, key.prefix, key.scopes, key.resources, key.requests_per_minute) == (
        "issued before",
        "0ld0ld00",
        ["read"],
        ["remote-agents"],
        100,
    )
    remote = RemoteAgent.objects.get()
    assert (remote.name, remote.url, remote.auth_secret, remote.binding, remote.timeout) == (
        "researcher",
        "https://remote.example.test/",
        "env:ASTEROS_SECRET_RESEARCHER",
        "JSONRPC",
        30.0,
    )
    assert (APIKey._meta.db_table, RemoteAgent._meta.db_table) == ("interfaces_apikey", "interfaces_remoteagent")

    settings_options(enable_auth=True, api_key=SETTINGS_KEY)
    client = Client()
    served = client.get("/api/remote-agents/researcher", headers={"Authorization": f"Bearer {RAW_KEY}"})
    assert served.status_code == 200, served.content
    assert served.json()["url"] == "https://remote.example.test/"
    refused = client.get("/api/remote-agents/researcher", headers={"Authorization": f"Bearer {RAW_KEY}x"})
    assert refused.status_code == 401, refused.content
    out_of_reach = client.get("/api/agents", headers={"Authorization": f"Bearer {RAW_KEY}"})
    assert out_of_reach.status_code == 403, "the key's resources moved with it"
    assert APIKey.objects.get().last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_move_migrates_back_with_its_rows(before_the_move):
    write_rows_before_the_move(before_the_move)
    migrate(latest())
    executor = migrate(BEFORE_THE_MOVE)
    assert {"interfaces_apikey", "interfaces_remoteagent"} <= tables()
    old_key = historical(executor, "APIKey")
    old_remote = historical(executor, "RemoteAgent")
    assert list(old_key.objects.values_list("hashed_key", flat=True)) == [hash_key(RAW_KEY)]
    assert list(old_remote.objects.values_list("name", "auth_secret")) == [
        ("researcher", "env:ASTEROS_SECRET_RESEARCHER")
    ]
    recorded = executor.loader.applied_migrations
    assert ("interfaces", "0005_delete_apikey_delete_remoteagent") not in recorded
    assert ("keys", "0001_initial") not in recorded and ("connectors", "0001_initial") not in recorded


@pytest.mark.django_db(transaction=True)
def test_permissions_granted_on_the_old_models_follow_them(before_the_move):
    # A database from before the move has the content types under "interfaces" and none under
    # the new labels (Django creates those after a migrate; this test database already has them).
    ContentType.objects.filter(app_label__in=("keys", "connectors")).delete()
    ContentType.objects.clear_cache()
    key_type, _ = ContentType.objects.get_or_create(app_label="interfaces", model="apikey")
    remote_type, _ = ContentType.objects.get_or_create(app_label="interfaces", model="remoteagent")
    operators = Group.objects.create(name="operators")
    operators.permissions.add(
        Permission.objects.get_or_create(content_type=key_type, codename="view_apikey")[0],
        Permission.objects.get_or_create(content_type=remote_type, codename="change_remoteagent")[0],
    )
    migrate(latest())
    ContentType.objects.clear_cache()
    held = set(operators.permissions.values_list("content_type__app_label", "codename"))
    assert held == {("keys", "view_apikey"), ("connectors", "change_remoteagent")}
    assert ContentType.objects.get_for_model(APIKey).pk == key_type.pk
    assert not ContentType.objects.filter(app_label="interfaces", model__in=("apikey", "remoteagent")).exists()
    migrate(BEFORE_THE_MOVE)
    assert set(operators.permissions.values_list("content_type__app_label", flat=True)) == {"interfaces"}
    Group.objects.all().delete()
    ContentType.objects.clear_cache()
