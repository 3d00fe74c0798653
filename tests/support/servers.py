"""API server processes (``manage.py asteros serve``).

Like ``tests.support.workers.WorkerProcess``, an ``ApiProcess`` uses pytest-django's test
database (``worker_database_url``) on top of this process's environment unless its ``env`` says
otherwise, so it only sees committed rows: tests that use it are ``transaction=True``.
``ApiProcess.embedded(folder)`` is a fresh embedded AsterOS instead (its own migrated SQLite
file, no Redis, the worker a thread of the server), whatever the suite's mode. A server keeps its
port across ``restart()``, so clients reconnect to the same address.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

from .processes import LoggedProcess, embedded_env, free_port, manage
from .workers import worker_database_url


class ApiProcess(LoggedProcess):
    """An ASGI server process (daphne by default) on 127.0.0.1 and a port of its own."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        server: str = "daphne",
        port: int | None = None,
        whole_env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.server = server
        self.extra_env = env or {}
        self.whole_env = whole_env  # used as it is, instead of this process's environment
        super().__init__("asteros-test-api-")

    @classmethod
    def embedded(cls, folder: Path, *, server: str = "daphne", **env: str) -> ApiProcess:
        """A fresh embedded AsterOS on ``folder``'s SQLite file, migrated (not started yet)."""
        whole_env = embedded_env(folder, **env)
        migrated = manage(whole_env, "migrate", "-v0")
        if migrated.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrated.stderr[-3000:]}")
        return cls(server=server, whole_env=whole_env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ApiProcess:
        if self.whole_env is not None:
            env = self.whole_env
        else:
            env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"} | self.extra_env
        command = [sys.executable, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--server", self.server, "--no-static"]
        self.launch(command, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                # /health may be 503 (no worker yet); the API root answers as soon as Django does
                # (401 with auth on).
                if httpx.get(f"{self.url}/api", timeout=2).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API server did not start within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def restart(self, timeout: float = 60) -> ApiProcess:
        self.stop()
        return self.start(timeout)
