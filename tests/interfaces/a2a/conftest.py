"""A live AsterOS for the A2A tests: ``manage.py asteros serve`` as a subprocess, embedded mode.

One temporary SQLite database is migrated and seeded (``seed.py``) once per session; each server
gets its own copy of it. ``a2a_server`` has auth off; ``a2a_auth_server`` has auth on with the
key ``AUTH_KEY``. Both also add the A2A plugin through ``ASTEROS_INTERFACES``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
AUTH_KEY = "a2a-test-key-0123456789"
SEED_SCRIPT = (
    "import django\n"
    "django.setup()\n"
    "from django.core.management import call_command\n"
    "call_command('migrate', verbosity=0, interactive=False)\n"
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    cursor.execute('PRAGMA journal_mode=WAL')\n"  # persistent: the server reads while its worker writes
    "from tests.interfaces.a2a.seed import seed\n"
    "seed()\n"
)


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log: Path
    name: str  # its ASTEROS_NAME, unique: tells it apart from another server that took the port
    database: Path
    extra: dict[str, str]

    def output(self) -> str:
        return self.log.read_text()[-4000:]


class PortTaken(Exception):
    """Someone else listens on the port picked for the server (tests running in parallel)."""


def _env(database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ASTEROS_REQUIRE_SERVICES", "ASTEROS_PORT")}
    env |= {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
        "ASTEROS_LOG_LEVEL": "warning",
        "ASTEROS_INTERFACES": "interfaces.a2a.A2AInterface",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    return env | extra


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory) -> Path:
    database = tmp_path_factory.mktemp("a2a") / "seed.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", SEED_SCRIPT], cwd=ROOT, env=_env(database), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return database


def _launch(database: Path, label: str, **extra: str) -> LiveServer:
    port = _free_port()
    name = f"a2a-test-{label}-{uuid.uuid4().hex[:8]}"
    log = database.with_name(f"{label}.log")
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=_env(database, ASTEROS_NAME=name, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LiveServer(f"http://127.0.0.1:{port}", process, log, name, database, extra)


def _copy_and_launch(seeded: Path, label: str, **extra: str) -> LiveServer:
    database = seeded.with_name(f"{label}.sqlite3")
    shutil.copy(seeded, database)
    return _launch(database, label, **extra)


def _stop(server: LiveServer) -> None:
    process = server.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # a throwaway server: no need to wait for a graceful stop
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_until_up(server: LiveServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if "Address already in use" in server.output():
                raise PortTaken(server.url)
            raise AssertionError(f"the server exited:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/a2a/", timeout=2) as response:
                if response.status == 200:
                    if json.loads(response.read()).get("name") != server.name:
                        raise PortTaken(server.url)
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not answer within {timeout:.0f}s:\n{server.output()}")


def _up(servers: dict[str, LiveServer], label: str) -> LiveServer:
    """Wait for the server; if another process got its port first, start it again on another."""
    for _attempt in range(3):
        server = servers[label]
        try:
            _wait_until_up(server)
            return server
        except PortTaken:
            _stop(server)
            servers[label] = _launch(server.database, label, **server.extra)
    raise AssertionError(f"could not find a free port for the {label} server")


@pytest.fixture(scope="session")
def _servers(seeded_database) -> Iterator[dict[str, LiveServer]]:
    """Both servers start together (in parallel) the first time either is needed."""
    servers = {
        "open": _copy_and_launch(seeded_database, "open"),
        "auth": _copy_and_launch(seeded_database, "auth", ASTEROS_ENABLE_AUTH="true", ASTEROS_API_KEY=AUTH_KEY),
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            _stop(server)


@pytest.fixture(scope="session")
def a2a_server(_servers) -> LiveServer:
    return _up(_servers, "open")


@pytest.fixture(scope="session")
def a2a_auth_server(_servers) -> LiveServer:
    return _up(_servers, "auth")


@pytest.fixture
def http(a2a_server) -> Iterator[httpx.Client]:
    """Raw HTTP to the auth-off server."""
    with httpx.Client(base_url=a2a_server.url, timeout=30) as client:
        yield client
