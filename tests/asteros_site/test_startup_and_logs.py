"""How the project starts and what it logs, as a user sees it in a terminal.

- One access-log line per HTTP request, on ``asteros serve`` (daphne) and on ``runserver``
  (``make run``), whose servers each wrote their own copy before.
- A bad option (an ``ASTEROS_*`` variable or an argument of the ``asteros`` command) stops the
  process with one clear line on stderr and a non-zero status, no traceback unless asked for.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.support.processes import ROOT, LoggedProcess, embedded_env, free_port, manage, wait_for_200
from tests.support.servers import ApiProcess

pytestmark = pytest.mark.slow


# --- one line per request


def lines_about(process: LoggedProcess, needle: str, since: int, settle: float = 1.0) -> list[str]:
    """The server's output lines after offset ``since`` that mention ``needle``, once the first
    has appeared and a moment has passed for any copy of it."""
    deadline = time.monotonic() + 15
    while needle not in process.output()[since:] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(settle)
    return [line for line in process.output()[since:].splitlines() if needle in line]


def count_lines_per_request(process: LoggedProcess, base_url: str) -> dict[str, list[str]]:
    found = {}
    for status, path in ((200, f"/api/agents?probe={uuid.uuid4().hex}"), (404, f"/api/agents/{uuid.uuid4().hex}")):
        since = len(process.output())
        response = httpx.get(base_url + path, timeout=10)
        assert response.status_code == status, response.text
        found[path] = lines_about(process, response.headers["X-Request-ID"], since) + [
            line
            for line in lines_about(process, path.split("?")[0], since, settle=0)
            if response.headers["X-Request-ID"] not in line
        ]
    return found


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_asteros_serve_logs_one_line_per_request(tmp_path, server):
    api = ApiProcess.embedded(tmp_path, server=server)
    try:
        api.start()
        for path, lines in count_lines_per_request(api, api.url).items():
            assert len(lines) == 1, (path, lines)
            assert '"logger": "asteros.access"' in lines[0]
    finally:
        api.close()


def test_runserver_logs_one_line_per_request(tmp_path):
    env = embedded_env(tmp_path)
    assert manage(env, "migrate", "-v0").returncode == 0
    port = free_port()
    server = LoggedProcess("asteros-test-runserver-")
    server.launch([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env)
    try:
        wait_for_200(f"http://127.0.0.1:{port}/api", server.process)
        for path, lines in count_lines_per_request(server, f"http://127.0.0.1:{port}").items():
            assert len(lines) == 1, (path, lines)
            assert '"logger": "asteros.access"' in lines[0]
    finally:
        server.close()


# --- a bad option: one line, no traceback


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


MANAGE = [sys.executable, "manage.py"]
CELERY = [sys.executable, "-m", "celery", "-A", "asteros_site"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ASTEROS_PORT", "abc", "ASTEROS_PORT='abc' is not a whole number; use an integer from 1 to 65535."),
        ("ASTEROS_MODE", "nonsense", "ASTEROS_MODE='nonsense' is not a mode; use embedded or distributed"),
        ("ASTEROS_MODE", "distributed", "ASTEROS_MODE=distributed needs DATABASE_URL (PostgreSQL) and REDIS_URL."),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        [*MANAGE, "asteros", "serve"],
        [*MANAGE, "runserver"],
        [*MANAGE, "migrate"],
        [*CELERY, "worker", "--pool", "solo"],
        [*CELERY, "beat"],
    ],
    ids=["asteros-serve", "runserver", "migrate", "celery-worker", "celery-beat"],
)
def test_a_bad_environment_option_prints_one_line(tmp_path, command, variable, value, message):
    result = run(command, embedded_env(tmp_path, **{variable: value}))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ImproperlyConfigured: ") and message in lines[0], result.stderr


@pytest.mark.parametrize(
    ("command", "env"),
    [
        ([*MANAGE, "asteros", "serve", "--traceback"], {"ASTEROS_PORT": "abc"}),
        ([*MANAGE, "runserver", "--traceback"], {"ASTEROS_PORT": "abc"}),
        ([*CELERY, "worker", "--pool", "solo"], {"ASTEROS_LOG_LEVEL": "debug", "ASTEROS_MODE": "nonsense"}),
        ([*CELERY, "worker", "--pool", "solo", "--loglevel", "DEBUG"], {"ASTEROS_PORT": "abc"}),
    ],
)
def test_traceback_or_debug_logging_shows_the_traceback(tmp_path, command, env):
    result = run(command, embedded_env(tmp_path, **env))

    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "django.core.exceptions.ImproperlyConfigured: " in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["serve", "--port", "abc"], "argument --port: 'abc' is not a port number; use an integer from 1 to 65535"),
        (["serve", "--port", "70000"], "argument --port: '70000' is out of range; use an integer from 1 to 65535"),
        (["serve", "--server", "gunicorn"], "argument --server: invalid choice: 'gunicorn'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_a_bad_command_argument_prints_its_usage_and_one_error(tmp_path, arguments, message):
    result = run([*MANAGE, "asteros", *arguments], embedded_env(tmp_path))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(message) or message in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[0].startswith("usage: manage.py asteros")
