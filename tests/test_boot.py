"""The boot sequence: one autodiscovery from ``ready()``, and the OS started by every way of
serving before it answers (``manage.py asteros serve``, ``runserver``, and ``daphne`` /
``uvicorn asteros_site.asgi:application`` run directly)."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from django.apps import AppConfig, apps

from asteros_site.apps import autodiscover
from asteros_site.system import AsterOS, start_all
from cosmos.models import Agent, Source
from cosmos.runtime.tools import tool_registry
from interfaces.http.registry import site
from stars.models import StarMessage
from tests.support.processes import ROOT, LoggedProcess, embedded_env, free_port, manage, python_json
from workflows.functions import function_registry
from workflows.models import Workflow

ASTEROS_MODULE = """
    from asteros_site.system import AsterOS

    os = AsterOS(name="Discovered")
    os.register_agent("discovered-agent", {"provider": "scripted", "description": "from code",
                                           "parameters": {"reply": "discovered: {input}"}})
    os.register_workflow("discovered-flow", {"definition": {"steps": [
        {"name": "one", "type": "agent", "agent": "discovered-agent", "prompt": "{{ input }}"}]}})
"""
TOOLS_MODULE = """
    from cosmos.runtime.tools import tool

    @tool
    def discovered_tool(text: str) -> str:
        '''Echo.'''
        return text
"""
FUNCTIONS_MODULE = """
    from workflows.functions import workflow_function

    @workflow_function
    def discovered_function(text: str) -> str:
        '''Echo.'''
        return text
"""


def write_package(folder: Path, name: str, modules: dict[str, str]) -> None:
    package = folder / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def install_app(tmp_path, monkeypatch) -> Iterator[Callable[..., str]]:
    """``install_app(name, asteros=..., tools=...)``: a package with those modules, installed in
    Django's app registry for the test (as if listed in INSTALLED_APPS)."""
    original = apps.app_configs
    installed: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(name: str, **modules: str) -> str:
        write_package(tmp_path, name, modules)
        config = AppConfig.create(name)
        config.apps = apps
        config.import_models()
        apps.app_configs = {**apps.app_configs, config.label: config}
        apps.clear_cache()
        installed.append(name)
        return name

    yield install
    apps.app_configs = original
    apps.clear_cache()
    for name in installed:
        apps.all_models.pop(name, None)
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


@pytest.fixture
def code_registrations() -> Iterator[None]:
    """Forget the tool and workflow function the discovered modules register."""
    yield
    for registry, name in ((tool_registry, "discovered_tool"), (function_registry, "discovered_function")):
        if name in registry.names():
            registry.unregister(name)


# --- one autodiscovery


@pytest.mark.django_db
def test_discovery_imports_every_apps_modules_and_touches_no_database(
    install_app, code_registrations, django_assert_num_queries
):
    install_app("discoverable_app", asteros=ASTEROS_MODULE, tools=TOOLS_MODULE, workflow_functions=FUNCTIONS_MODULE)
    with django_assert_num_queries(0):  # importing registers in memory only
        autodiscover()
    assert {"discoverable_app.asteros", "discoverable_app.tools", "discoverable_app.workflow_functions"} <= set(
        sys.modules
    )
    assert "discovered_tool" in tool_registry.names()
    assert "discovered_function" in function_registry.names()

    discovered = sys.modules["discoverable_app.asteros"].os
    assert not discovered.started
    assert discovered in start_all()
    agent = Agent.objects.get(id="discovered-agent")
    assert agent.source == Source.CODE and agent.description == "from code"
    assert Workflow.objects.get(id="discovered-flow").source == Source.CODE
    # the next process's start upserts: no duplicate, no error
    again = AsterOS(name="Again", http=False)
    again.register_agent("discovered-agent", {"provider": "scripted", "description": "changed"})
    again.start()
    assert Agent.objects.get(id="discovered-agent").description == "changed"


def test_with_auto_discover_off_only_tools_and_functions_are_discovered(
    install_app, code_registrations, settings_options
):
    settings_options(auto_discover=False)
    install_app("discoverable_app", asteros=ASTEROS_MODULE, tools=TOOLS_MODULE, workflow_functions=FUNCTIONS_MODULE)
    autodiscover()
    assert "discoverable_app.asteros" not in sys.modules
    assert "discovered_tool" in tool_registry.names()
    assert "discovered_function" in function_registry.names()


def test_a_failing_asteros_module_leaves_the_resource_registry_as_it_was(install_app):
    before = site.names()
    install_app(
        "broken_app",
        asteros="""
            from rest_framework import viewsets

            from interfaces.http.registry import site
            from stars.models import StarMessage

            site.register(StarMessage, resource_name="half-registered")
            site.register_viewset("half-viewset", viewsets.ViewSet)
            site.unregister("agents")
            raise RuntimeError("broken asteros module")
        """,
    )
    with pytest.raises(RuntimeError, match="broken asteros module"):
        autodiscover()
    assert site.names() == before
    assert not site.is_registered(StarMessage)
    assert site.get("agents").model is Agent


def test_built_in_resources_are_registered_before_any_asteros_module_runs():
    """``asteros_site`` comes after the apps whose ``ready()`` an ``asteros.py`` builds on, and
    before the apps whose ``runserver`` its own replaces."""
    from django.core.management import get_commands

    names = [config.name for config in apps.get_app_configs()]
    for app in ("cosmos", "stars", "workflows", "interfaces", "interfaces.keys", "interfaces.connectors"):
        assert names.index(app) < names.index("asteros_site"), app
    assert names.index("interfaces.console") < names.index("asteros_site")
    assert get_commands()["runserver"] == "asteros_site"
    assert site.is_registered("agents") and site.is_registered("tools")


# --- started by every way of serving


def discovering_project(folder: Path) -> dict[str, str]:
    """A migrated embedded project with an extra app: its ``asteros.py`` registers an agent, its
    ``tools.py`` a tool and its ``workflow_functions.py`` a function."""
    write_package(
        folder,
        "discoverable_app",
        {"asteros": ASTEROS_MODULE, "tools": TOOLS_MODULE, "workflow_functions": FUNCTIONS_MODULE},
    )
    (folder / "discovering_settings.py").write_text(
        "from asteros_site.settings import *  # noqa: F403\n"
        "INSTALLED_APPS = [*INSTALLED_APPS, 'discoverable_app']  # noqa: F405\n"
    )
    env = embedded_env(
        folder,
        DJANGO_SETTINGS_MODULE="discovering_settings",
        PYTHONPATH=os.pathsep.join([str(folder), str(ROOT)]),
    )
    migrated = manage(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


def first_answer(url: str, server: LoggedProcess, timeout: float = 60) -> httpx.Response:
    """The answer to the first request that reaches the server (the port opens when it listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"the server exited:\n{server.output()[-3000:]}"
        try:
            return httpx.get(url, timeout=30)
        except httpx.ConnectError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout:.0f}s:\n{server.output()[-3000:]}")


ASGI_PATH = "asteros_site.asgi:application"
SERVERS = {
    "daphne": lambda port: ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), ASGI_PATH],
    "uvicorn": lambda port: ["-m", "uvicorn", ASGI_PATH, "--host", "127.0.0.1", "--port", str(port)],
}


@pytest.mark.slow
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_the_asgi_application_run_directly_starts_the_os_before_its_first_answer(tmp_path, server):
    """uvicorn starts it at the ASGI lifespan startup, Daphne (no lifespan) on the first
    connection: either way the first request already finds the agent an ``asteros.py``
    registered, and in embedded mode the worker thread runs its runs."""
    env = discovering_project(tmp_path)
    port = free_port()
    process = LoggedProcess(f"asteros-test-{server}-")
    process.launch([sys.executable, *SERVERS[server](port)], env)
    try:
        response = first_answer(f"http://127.0.0.1:{port}/api/agents/discovered-agent", process)
        assert response.status_code == 200, response.text
        assert response.json()["source"] == "code"
        run = httpx.post(
            f"http://127.0.0.1:{port}/api/agents/discovered-agent/run?wait=30", json={"input": "hi"}, timeout=60
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "succeeded" and run.json()["output"] == "discovered: hi"
    finally:
        process.close()


@pytest.mark.slow
def test_importing_the_asgi_application_starts_nothing(tmp_path):
    env = discovering_project(tmp_path)
    script = (
        "import json\n"
        "import asteros_site.asgi\n"
        "from asteros_site.serving import serving_started\n"
        "from cosmos.embedded import embedded_worker_started\n"
        "from cosmos.models import Agent\n"
        "print(json.dumps([serving_started(), embedded_worker_started(), Agent.objects.count()]))\n"
    )
    assert python_json(script, env) == [False, False, 0]


def test_the_wsgi_application_starts_the_os_before_its_first_answer(tmp_path):
    env = discovering_project(tmp_path)
    script = (
        "import io, json\n"
        "from asteros_site.wsgi import application\n"
        "from asteros_site.serving import serving_started\n"
        "before = serving_started()\n"
        "environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/api/agents/discovered-agent', 'SERVER_NAME': 'localhost',\n"
        "           'SERVER_PORT': '80', 'wsgi.input': io.BytesIO(), 'wsgi.url_scheme': 'http'}\n"
        "statuses = []\n"
        "body = b''.join(application(environ, lambda status, headers: statuses.append(status)))\n"
        "print(json.dumps([before, statuses[0], json.loads(body)['source'], serving_started()]))\n"
    )
    assert python_json(script, env) == [False, "200 OK", "code", True]


@pytest.mark.slow
def test_a_celery_worker_boots_with_every_apps_modules_discovered(tmp_path):
    """A worker starts no OS (it reads the rows servers wrote), but runs tools and workflow
    functions: Celery's Django fixup calls ``django.setup()`` as the worker boots
    (``init_worker``), and so the same ``ready()`` discovery."""
    env = discovering_project(tmp_path)
    script = (
        "import json, sys\n"
        "from asteros_site.celery import app\n"
        "app.loader.init_worker()  # what `celery -A asteros_site worker` does before it consumes\n"
        "from cosmos.runtime.tools import tool_registry\n"
        "from workflows.functions import function_registry\n"
        "from asteros_site.serving import serving_started\n"
        "print(json.dumps(['discoverable_app.asteros' in sys.modules, 'discovered_tool' in tool_registry.names(),\n"
        "                  'discovered_function' in function_registry.names(), serving_started()]))\n"
    )
    assert python_json(script, env) == [True, True, True, False]
