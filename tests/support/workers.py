"""Real ``celery worker`` processes for distributed-mode tests (PostgreSQL + Redis).

A worker subprocess must use pytest-django's test database, so ``worker_database_url`` rewrites
``DATABASE_URL`` with the test database's name.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from .processes import LoggedProcess


def worker_database_url() -> str:
    """DATABASE_URL with its database name replaced by the test database's."""
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


class WorkerProcess(LoggedProcess):
    """A ``celery -A asteros_site worker`` subprocess: start, wait until it answers, stop or kill."""

    def __init__(
        self,
        *,
        concurrency: int = 50,
        env: dict[str, str] | None = None,
        queues: tuple[str, ...] = (),
        include: tuple[str, ...] = (),
    ) -> None:
        self.hostname = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.queues = queues  # empty: the default queue, shared with every other worker
        self.include = include  # modules the worker imports at start (e.g. a test's own tools)
        super().__init__("asteros-test-worker-")

    def start(self, timeout: float = 60) -> WorkerProcess:
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> WorkerProcess:
        """Launch the process without waiting (start several, then ``wait_ready`` each)."""
        env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"} | self.extra_env
        command = [sys.executable, "-m", "celery", "-A", "asteros_site", "worker", "--pool", "threads"]
        command += ["-c", str(self.concurrency), "-n", self.hostname, "--loglevel", "WARNING"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        if self.queues:
            command += ["-Q", ",".join(self.queues)]
        if self.include:
            command += ["-I", ",".join(self.include)]
        self.launch(command, env)
        return self

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Return once the worker answers a ping on its broker (its own REDIS_URL, if given)."""
        from celery import Celery

        from asteros_site.celery import app

        assert self.process is not None, "spawn() first"
        broker = self.extra_env.get("REDIS_URL")
        # Control messages go through an app's own producer pool: one bound to the worker's broker.
        probe = Celery("pytest-probe", broker=broker, set_as_current=False) if broker else app
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if probe.control.ping(destination=[self.hostname], timeout=0.5):
                    return self
        finally:
            if probe is not app:
                probe.close()
        self.stop()
        raise RuntimeError(f"the celery worker did not start within {timeout:.0f}s:\n{self.output()[-3000:]}")

    @property
    def engine_id_prefix(self) -> str:
        """How ``Run.worker_id`` starts for the runs this process's engine claims."""
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}:"


@contextmanager
def the_queue_to_itself() -> Iterator[None]:
    """Inside the block, the workers already running (the session's shared worker, if a test
    started it) stop taking runs from the queue, so a worker started in the block gets every run
    sent meanwhile: a test that kills it knows which runs it held. They consume again after."""
    from celery import current_app

    queue = current_app.conf.task_default_queue
    others = [name for reply in current_app.control.ping(timeout=1.0) for name in reply]
    if others:
        current_app.control.cancel_consumer(queue, destination=others, reply=True, timeout=5.0)
    try:
        yield
    finally:
        if others:
            current_app.control.add_consumer(queue, destination=others, reply=True, timeout=5.0)


class BeatProcess(LoggedProcess):
    """A ``celery -A asteros_site beat`` subprocess (the database scheduler, as deployed) on the
    test database: start, kill or stop."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        self.extra_env = env or {}
        super().__init__("asteros-test-beat-")

    def start(self, timeout: float = 60) -> BeatProcess:
        """Launch it and return once its scheduler has read the schedule from the database."""
        env = os.environ | {"DATABASE_URL": worker_database_url(), "PYTHONUNBUFFERED": "1"} | self.extra_env
        command = [sys.executable, "-m", "celery", "-A", "asteros_site", "beat", "--loglevel", "INFO"]
        command += ["-S", "django_celery_beat.schedulers:DatabaseScheduler"]
        self.launch(command, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if "DatabaseScheduler: Schedule changed" in self.output():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"celery beat did not start within {timeout:.0f}s:\n{self.output()[-3000:]}")
