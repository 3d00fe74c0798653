"""``make run``'s pieces: the demo, the admin user, the embedded worker and the server itself.

The subprocess tests run the project as a user would, always in embedded mode (a temporary
SQLite database, no Redis), whatever mode the test session itself is in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from cosmos.embedded import embedded_worker_started, start_embedded_worker
from cosmos.models import ACTIVE_STATUSES, Agent, RunStatus
from cosmos.services.runs import start_run
from interfaces.connectors.models import MCPServer
from stars.models import Membership, Role, Star
from tests.factories import make_agent
from tests.support.processes import ROOT, WORKER_LOG, free_port, python_json, wait_for_200
from workflows.models import Workflow

WORKER_THREAD = "asteros-embedded-worker"


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Agent, Star, Membership, Workflow)}


# --- asteros demo


DEMO_AGENT_IDS = {"chat-agent", "agent-1", "agent-2", "approval-agent", "slow-agent", "mcp-agent"}


@pytest.mark.django_db
def test_demo_is_idempotent(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    command("asteros", "demo")
    first = counts()
    Agent.objects.filter(id="agent-1").update(name="renamed by hand")
    command("asteros", "demo")
    assert counts() == first == {"Agent": 6, "Star": 1, "Membership": 2, "Workflow": 1}
    assert set(Agent.objects.values_list("id", flat=True)) == DEMO_AGENT_IDS
    assert MCPServer.objects.get(name="demo").command == "demo", "the bundled stdio MCP server"
    assert set(Agent.objects.values_list("provider", flat=True)) == {"scripted"}, "offline without ANTHROPIC_API_KEY"
    assert Agent.objects.get(id="agent-1").name == "renamed by hand", "a user's edit is kept (--reset restores)"
    members = dict(Membership.objects.filter(star_id="chat-team").values_list("agent_id", "role"))
    assert members == {"agent-1": Role.LEADER, "agent-2": Role.WORKER}
    Workflow.objects.get(id="demo-workflow").full_clean()
    for agent in Agent.objects.all():
        agent.full_clean()


@pytest.mark.django_db
def test_demo_has_no_mcp_server_when_the_operator_allows_no_stdio_command(monkeypatch, settings):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings.ASTEROS = dataclasses.replace(settings.ASTEROS, mcp_stdio_commands=())
    command("asteros", "demo")
    assert not MCPServer.objects.exists()
    assert not Agent.objects.filter(id="mcp-agent").exists()


@pytest.mark.django_db
def test_demo_uses_anthropic_when_a_key_is_set(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-used")
    command("asteros", "demo")
    providers = dict(Agent.objects.values_list("id", "provider"))
    assert providers.pop("slow-agent") == "scripted", "its point is the pace, offline"
    assert set(providers.values()) == {"anthropic"}
    assert not any(Agent.objects.exclude(id="slow-agent").values_list("parameters", flat=True)), "no scripts"


# --- asteros ensure-admin


@pytest.mark.django_db
def test_admin_user_is_created_once_with_a_generated_password(monkeypatch, django_user_model):
    monkeypatch.delenv("ASTEROS_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ASTEROS_ADMIN_USER", raising=False)
    first = command("asteros", "ensure-admin")
    assert "created with password: " in first and "shown once" in first
    password = first.split("password: ", 1)[1].split()[0]
    user = django_user_model.objects.get(username="admin")
    assert user.is_superuser and user.is_staff and user.check_password(password)

    second = command("asteros", "ensure-admin")
    assert "exists" in second and "password" not in second
    assert django_user_model.objects.count() == 1
    assert django_user_model.objects.get(pk=user.pk).password == user.password, "the password is not re-generated"


@pytest.mark.django_db
def test_admin_password_from_the_environment_is_not_printed(monkeypatch, django_user_model):
    monkeypatch.setenv("ASTEROS_ADMIN_PASSWORD", "correct-horse-battery")
    output = command("asteros", "ensure-admin", "--username", "boss")
    assert "correct-horse-battery" not in output and "ASTEROS_ADMIN_PASSWORD" in output
    assert django_user_model.objects.get(username="boss").check_password("correct-horse-battery")


# --- the embedded worker


def test_embedded_worker_starts_once_per_process(settings):
    if settings.ASTEROS.distributed:
        assert start_embedded_worker() is None, "distributed mode uses separate celery workers"
        return
    first = start_embedded_worker()
    assert start_embedded_worker() is first
    assert embedded_worker_started()
    assert [thread.name for thread in threading.enumerate()].count(WORKER_THREAD) == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_fixture_executes_dispatched_runs(embedded_worker):
    """The ``embedded_worker`` fixture (a thread here, a celery process when distributed) runs runs."""
    run, _ = start_run("agent", make_agent().id, "hello worker", origin="cli")
    deadline = time.monotonic() + 30
    while run.status in ACTIVE_STATUSES and time.monotonic() < deadline:
        time.sleep(0.1)
        run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error)
    assert "hello worker" in json.dumps(run.output)
    assert run.events.first().type == "RUN_STARTED" and run.events.last().type == "RUN_FINISHED"


@pytest.mark.slow
def test_migrate_does_not_start_the_worker(migrated_env):
    script = (
        "import django, json, threading\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from cosmos.embedded import embedded_worker_started\n"
        "threads = [t.name for t in threading.enumerate()]\n"
        "print(json.dumps({'started': embedded_worker_started(), 'threads': threads}))\n"
    )
    state = python_json(script, migrated_env)
    assert state["started"] is False
    assert WORKER_THREAD not in state["threads"]


# --- runserver


def serve(env: dict[str, str], *args: str, log_dir: Path) -> tuple[str, str]:
    """Start ``manage.py runserver ARGS``, wait for /admin/login/, stop it; return (stdout, stderr)."""
    port = free_port()
    out_path, err_path = log_dir / "stdout.log", log_dir / "stderr.log"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", *args, f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: the reloader's child stops with it
        )
        try:
            wait_for_200(f"http://127.0.0.1:{port}/admin/login/", process)
            time.sleep(0.5)  # let the worker thread log its start
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nstdout:\n{out_path.read_text()[-2000:]}\nstderr:\n{err_path.read_text()[-3000:]}"
            ) from exc
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
    return out_path.read_text(), err_path.read_text()


@pytest.mark.slow
def test_runserver_serves_the_admin_with_the_banner_and_one_worker(migrated_env, tmp_path):
    env = migrated_env | {"ASTEROS_NAME": "Test Orion"}
    stdout, stderr = serve(env, "--noreload", log_dir=tmp_path)
    port = stdout.split("running on http://127.0.0.1:", 1)[1].split()[0]
    assert f"AsterOS 'Test Orion' is running on http://127.0.0.1:{port}" in stdout
    assert "mode:      embedded" in stdout
    assert f"admin:     http://127.0.0.1:{port}/admin/" in stdout
    assert (stdout + stderr).count(WORKER_LOG) == 1


@pytest.mark.slow
def test_runserver_with_the_autoreloader_starts_one_worker(migrated_env, tmp_path):
    stdout, stderr = serve(migrated_env, log_dir=tmp_path)
    assert "AsterOS 'AsterOS' is running on" in stdout
    assert (stdout + stderr).count(WORKER_LOG) == 1, "only the serving child starts a worker, not the reloader"
