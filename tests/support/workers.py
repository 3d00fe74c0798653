"""Real ``celery worker`` processes for distributed-mode tests (PostgreSQL + Redis).

A worker subprocess must use pytest-django's test database, so ``worker_database_url`` rewrites
``DATABASE_URL`` with the test database's name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    """DATABASE_URL with its database name replaced by the test database's."""
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class WorkerProcess:
    """A ``celery -A asteros_site worker`` subprocess: start, wait until it answers, stop or kill."""

    def __init__(self, *, concurrency: int = 50, env: dict[str, str] | None = None) -> None:
        self.hostname = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="asteros-test-worker-", suffix=".log", mode="w+")  # noqa: SIM115

    def start(self, timeout: float = 60) -> WorkerProcess:
        from asteros_site.celery import app

        env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"} | self.extra_env
        command = [sys.executable, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads"]
        command += ["-c", str(self.concurrency), "-n", self.hostname, "--loglevel", "WARNING"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return self
        self.stop()
        raise RuntimeError(f"the celery worker did not start within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to finish or release anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        self.log.close()
