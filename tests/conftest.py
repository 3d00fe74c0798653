"""Project-wide test fixtures and the services rule.

The services rule: a test marked ``@pytest.mark.services`` needs PostgreSQL and Redis. It runs
when ``DATABASE_URL`` and ``REDIS_URL`` are both set; otherwise it is skipped with the reason
"needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL". With ``ASTEROS_REQUIRE_SERVICES=1``
(CI's distributed pass) a missing or silent service fails the whole run instead of skipping.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.processes import DATABASE_FILE

pytest_plugins = ["tests.support.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
SERVICES_REASON = "needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL"
DISTRIBUTED_WORKER_CONCURRENCY = 50


def _require_services() -> bool:
    return os.environ.get("ASTEROS_REQUIRE_SERVICES", "").strip().lower() in ("1", "true", "yes", "on")


@cache
def services_problem() -> str | None:
    """Why the services tests cannot run here, or None when PostgreSQL and Redis both answer."""
    database_url = os.environ.get("DATABASE_URL", "").strip()
    redis_url = os.environ.get("REDIS_URL", "").strip()
    if not (database_url and redis_url):
        return SERVICES_REASON
    if urlsplit(database_url).scheme not in ("postgres", "postgresql", "pgsql"):
        return f"{SERVICES_REASON} (DATABASE_URL is not a PostgreSQL URL)"
    problems = [p for p in (_postgres_problem(database_url), _redis_problem(redis_url)) if p]
    return "; ".join(problems) or None


def _postgres_problem(url: str) -> str | None:
    import psycopg

    try:
        psycopg.connect(url.replace("pgsql://", "postgresql://", 1), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):  # the server answers; pytest-django creates its own test database
            return None
        return f"PostgreSQL at DATABASE_URL does not answer: {str(exc).strip()[:200]}"
    return None


def _redis_problem(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at REDIS_URL does not answer: {exc}"
    return None


def pytest_report_header(config) -> str:
    from django.conf import settings

    mode = settings.ASTEROS.mode
    return f"asteros: {mode} mode; services tests: {services_problem() or 'enabled'}"


def pytest_sessionstart(session) -> None:
    if _require_services() and services_problem():
        raise pytest.UsageError(f"ASTEROS_REQUIRE_SERVICES=1 but the services are missing: {services_problem()}")


def pytest_collection_modifyitems(config, items) -> None:
    """In distributed mode, leave out the tests that run their own embedded AsterOS whatever the
    suite's mode (``embedded_only``): the embedded pass ran them, and they would run the same again."""
    from django.conf import settings

    if not settings.ASTEROS.distributed or config.getoption("-m"):
        return
    left_out = [item for item in items if item.get_closest_marker("embedded_only") is not None]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item.get_closest_marker("embedded_only") is None]


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("services") is None:
        return
    problem = services_problem()
    if problem is None:
        return
    if _require_services():
        pytest.fail(f"ASTEROS_REQUIRE_SERVICES=1: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing() -> Iterator[None]:
    """Tests hash passwords with MD5: PBKDF2's deliberate slowness would cost ~0.3s per user."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def _flush_waits_out_deadlocks() -> Iterator[None]:
    """A transactional test ends with a flush (TRUNCATE) while the engines of the test process
    and of worker processes may be in a short transaction of their own (a lease renewal, the
    reaper, a session hand-off). PostgreSQL may then pick the flush as a deadlock victim: try it
    again, as the other transaction has ended by then. (No server ever truncates its tables.)"""
    from django.core.management.base import CommandError
    from django.db import OperationalError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self) -> None:
        for attempt in range(5):
            try:
                return original(self)
            except CommandError as exc:
                if not isinstance(exc.__cause__, OperationalError) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(autouse=True, scope="session")
def _test_process_serves_without_starting() -> Iterator[None]:
    """Tests call ``asteros_site.asgi.application`` in this process, which would start the OS
    and an embedded worker thread on its first connection (``StartBeforeServing``): here each
    test starts what it needs (its own ``AsterOS``, the ``embedded_worker`` fixture). The
    servers tests run as subprocesses start for real."""
    from asteros_site import serving

    started, serving._started = serving._started, True
    yield
    serving._started = started


# --- clients


@pytest.fixture
def api_client():
    """A DRF ``APIClient``, not authenticated: add ``credentials(HTTP_AUTHORIZATION=...)``
    or ``force_authenticate`` as the test needs."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def staff_user(db, django_user_model):
    """A staff superuser named ``staff`` (password ``staff-password``)."""
    return django_user_model.objects.create_superuser(
        username="staff", email="staff@example.com", password="staff-password"
    )


@pytest.fixture
def staff_client(client, staff_user):
    """The Django test client, logged in as ``staff_user`` (a staff superuser): for the admin
    and session-authenticated pages. Works with ``db`` and ``transactional_db`` tests."""
    client.force_login(staff_user)
    return client


# --- settings


@pytest.fixture
def settings_options(settings) -> Callable[..., object]:
    """Override fields of ``settings.ASTEROS`` (a frozen ``Options``) for one test::

        def test_named(settings_options):
            settings_options(name="Orion", enable_auth=True, api_key="k" * 16)

    Returns the new ``Options``; pytest-django's ``settings`` fixture restores the old ones.
    Only code that reads ``settings.ASTEROS`` at call time sees the change: settings derived from
    the options when ``settings.py`` was imported (databases, URL patterns, CORS) do not.
    """

    def override(**fields):
        settings.ASTEROS = dataclasses.replace(settings.ASTEROS, **fields)
        return settings.ASTEROS

    return override


# --- workers


@pytest.fixture(scope="session")
def embedded_worker(django_db_setup, django_db_blocker) -> Iterator[object]:
    """A worker that executes the runs tests dispatch, started once per test session.

    Embedded mode: ``cosmos.embedded.start_embedded_worker()``, the same Celery worker thread
    (memory:// broker) the server runs; yields the ``WorkController``.
    Distributed mode: a real ``celery -A asteros_site worker --pool threads -c 50`` subprocess
    on the Redis broker and the *test* database (pytest-django's ``test_<name>``); yields the
    ``subprocess.Popen``, and stops it at the end of the session.

    The worker reads the database from other threads or processes, so it only sees committed
    rows: tests that use it must use ``transactional_db`` (``@pytest.mark.django_db(transaction=True)``).
    """
    from django.conf import settings

    if not settings.ASTEROS.distributed:
        from cosmos.embedded import start_embedded_worker

        yield start_embedded_worker()
        return
    problem = services_problem()
    if problem and _require_services():
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)
    from asteros_site.options import DEMO_STDIO_COMMAND
    from tests.support.mcp_servers import STDIO_COMMAND, stdio_argv
    from tests.support.workers import WorkerProcess

    # The worker lists the demo's and the test MCP server's stdio commands, as the tests do.
    demo_name, demo_argv = DEMO_STDIO_COMMAND
    commands = f"{demo_name}={shlex.join(demo_argv)};{STDIO_COMMAND}={shlex.join(stdio_argv())}"
    worker = WorkerProcess(
        concurrency=DISTRIBUTED_WORKER_CONCURRENCY, env={"ASTEROS_MCP_STDIO_COMMANDS": commands}
    ).start()
    try:
        yield worker.process
    finally:
        worker.close()


@pytest.fixture(autouse=True, scope="session")
def _close_run_engine_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The run engine and event followers hold connections on ``cosmos.db``'s thread pool;
    close them before pytest-django drops the test database (PostgreSQL refuses otherwise),
    after the engine's runs and periodic work stopped (they would query a dropped database)."""
    yield
    from cosmos.db import close_pool_connections
    from cosmos.engine import running_engine

    engine = running_engine()
    if engine is not None:
        engine.stop_runs()
        engine.stop_background()

    with django_db_blocker.unblock():
        close_pool_connections()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    """One migrated embedded SQLite database for the session (a ``migrate`` takes seconds);
    asserts ``migrate`` started no worker. Tests get copies (``migrated_env``)."""
    from tests.support.processes import WORKER_LOG, embedded_env, manage

    folder = tmp_path_factory.mktemp("migrated")
    result = manage(embedded_env(folder), "migrate", "--noinput")
    assert result.returncode == 0, result.stderr[-3000:]
    assert WORKER_LOG not in result.stdout + result.stderr
    return folder / DATABASE_FILE


@pytest.fixture
def migrated_env(tmp_path, migrated_database) -> dict[str, str]:
    """The environment of a fresh embedded AsterOS on a migrated temporary SQLite database (a
    copy of the session's), for subprocesses (``tests.support.processes``)."""
    from tests.support.processes import copy_database, embedded_env

    copy_database(migrated_database, tmp_path / DATABASE_FILE)
    return embedded_env(tmp_path)
