"""Running the project as a user would: a fresh embedded AsterOS in a subprocess.

Shared by the tests that need a real server process (runserver, the A2A and AG-UI clients)
or a management command in its own process (migrate, the CLI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATABASE_FILE = "asteros.sqlite3"  # an embedded test server's database, in its own folder
WORKER_LOG = "embedded worker started"  # what cosmos.embedded logs when its worker starts


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database (its WAL included), for a test of its own."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    original.close()
    copy.close()


def seeded_database(template: Path, folder: Path, *commands: tuple[str, ...]) -> Path:
    """A copy of the migrated ``template`` in ``folder``, after these ``manage.py`` commands
    (each must succeed): a module's starting data, made once and copied for each test."""
    copy_database(template, folder / DATABASE_FILE)
    env = embedded_env(folder)
    for args in commands:
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr[-2000:]
    return folder / DATABASE_FILE


def embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh embedded AsterOS on a temporary SQLite database."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ASTEROS_REQUIRE_SERVICES")}
    env |= {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / DATABASE_FILE}",
        "ASTEROS_LOG_LEVEL": "info",
        "ASTEROS_ENABLE_LOGGING": "true",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "asteros_site.settings",
    }
    env.pop("ASTEROS_PORT", None)
    return env | extra


def python_json(script: str, env: dict[str, str], timeout: float = 120) -> Any:
    """Run ``script`` in a fresh Python process of the project and return the JSON its last line
    prints (what a test wants to know about a process it could not look into otherwise)."""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_200(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout:.0f}s")


class LoggedProcess:
    """A subprocess of the project whose output goes to a temporary log: start, kill, stop."""

    def __init__(self, log_prefix: str) -> None:
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", mode="w+")  # noqa: SIM115

    def launch(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish or release anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as a deploy does; SIGKILL if it is still there after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        self.stop()
        self.log.close()
