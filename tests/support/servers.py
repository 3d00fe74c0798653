"""API server processes (``manage.py asteros serve``) for distributed-mode tests.

Like ``tests.support.workers.WorkerProcess``, an ``ApiProcess`` uses pytest-django's test
database (``worker_database_url``) unless its ``env`` says otherwise, so it only sees committed
rows: tests that use it are ``transaction=True``. It keeps its port across ``restart()``, so
clients reconnect to the same address.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx

from .processes import free_port
from .workers import ROOT, worker_database_url


class ApiProcess:
    """An ASGI server process (daphne by default) on 127.0.0.1 and a port of its own."""

    def __init__(self, *, env: dict[str, str] | None = None, server: str = "daphne", port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = server
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="asteros-test-api-", suffix=".log", mode="w+")  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ApiProcess:
        env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"} | self.extra_env
        command = [sys.executable, "manage.py", "asteros", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--server", self.server, "--no-static"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                # /health may be 503 (no worker yet); the API root answers as soon as Django does.
                if httpx.get(f"{self.url}/api", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API server did not start within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        """SIGKILL: open connections drop without a goodbye, as when a machine dies."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, as a deploy does; SIGKILL if it is still there after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout: float = 60) -> ApiProcess:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        self.log.close()
