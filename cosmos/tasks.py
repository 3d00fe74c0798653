"""Celery tasks. Thin: they carry a run id and hand it to the engine.

``cosmos.dispatch.dispatch_run`` sends ``execute_run`` (by its name, ``EXECUTE_RUN``).
"""

import contextlib
from concurrent.futures import CancelledError

from celery import shared_task

from .dispatch import EXECUTE_RUN
from .engine import get_engine
from .services.leases import reap_expired_runs


@shared_task(name=EXECUTE_RUN, acks_late=True, ignore_result=True)
def execute_run(run_id: str) -> None:
    # Blocks this pool slot until the run ends, so the worker's concurrency bounds its runs.
    # A run stopped here without an end (the process exits, or its lease was lost) is cancelled
    # here and not finished: its lease expires and the reaper re-queues it.
    with contextlib.suppress(CancelledError):
        get_engine().submit(run_id).result()


@shared_task(name="cosmos.reap_expired_runs", ignore_result=True)
def reap_expired_runs_task() -> dict:
    return reap_expired_runs()
