"""Whole agent runs whose worker needs environment variables of its own (model API addresses,
keys, secret references), in either test mode.

Embedded mode: the session's in-process worker, with the variables set in this process for the
duration (the engine reads them at each run). Distributed mode: a ``celery worker`` process of
the caller's own, started with the variables, on a queue of its own (the session's shared
worker does not know them); runs are sent to that queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.utils import timezone

from cosmos.models import Run
from cosmos.services import runs as run_services
from cosmos.tasks import execute_run
from tests.cosmos.runtime.helpers import assert_well_formed
from tests.support.runs import assert_gapless, events, wait_for_run
from tests.support.workers import WorkerProcess


@dataclass
class RunsWithEnv:
    """Starts runs where the worker that has the variables takes them."""

    queue: str
    worker: WorkerProcess | None = None

    def start(self, agent_id: str, text: str = "hello") -> Run:
        if self.worker is None:
            run, _ = run_services.start_run("agent", agent_id, text)
            return run
        run, _ = run_services.start_run("agent", agent_id, text, dispatch=False)
        execute_run.apply_async(args=[str(run.id)], queue=self.queue)
        Run.objects.filter(id=run.id).update(dispatched_at=timezone.now())
        return run

    def finished(self, run: Run, timeout: float = 60) -> Run:
        """The run once terminal: gapless events, one final event, no lease left, worker alive."""
        run = wait_for_run(run.id, timeout=timeout)
        assert_gapless(run.id)
        assert run.lease_expires_at is None and run.finished_at is not None
        assert_well_formed(events(run.id)[1:-1])  # every START closed by its END, also on errors
        if self.worker is not None:
            assert self.worker.process.poll() is None, self.worker.output()[-3000:]
        return run


@contextmanager
def runs_with_env(
    request: pytest.FixtureRequest, django_db_blocker, env: Mapping[str, str], *, queue: str, concurrency: int = 4
) -> Iterator[RunsWithEnv]:
    """For a module-scoped fixture: ``RunsWithEnv`` whose worker has ``env``."""
    if not settings.ASTEROS.distributed:
        request.getfixturevalue("embedded_worker")
        with pytest.MonkeyPatch.context() as patch:  # the engine thread reads them at each run
            for name, value in env.items():
                patch.setenv(name, value)
            yield RunsWithEnv(queue)
        return
    with django_db_blocker.unblock():
        worker = WorkerProcess(concurrency=concurrency, env=dict(env), queues=(queue,)).start()
    try:
        yield RunsWithEnv(queue, worker)
    finally:
        worker.close()
