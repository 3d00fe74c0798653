"""Sending a run to be executed: to this process's engine when it can take it, else to a worker.

**The fast path.** A process that executes runs (the embedded server; a worker) registers its
engine here (``set_local_executor``). A run accepted in such a process is inserted already
claimed by that engine, with its lease, and started on the engine's loop when the insert
commits (``cosmos.services.runs.start_run``); a run queued again (a session's next turn, a
resumed run, the reaper's resend) is handed to the engine, which claims it. Either way there is
no broker hop. The run is a row with a lease before it executes, as on the broker's path: if
the process dies, the lease expires and the reaper re-queues it for any worker.

**The broker.** Anywhere else (a distributed API process), or when the engine is full (its
``ASTEROS_WORKER_CONCURRENCY``), the ``cosmos.execute_run`` task of ``cosmos.tasks`` is sent by
its name, so the services that dispatch do not import the task's module: it imports the engine,
which uses them.
"""

from __future__ import annotations

import logging
from typing import Protocol

from celery import current_app

from .models import Run

logger = logging.getLogger(__name__)

EXECUTE_RUN = "cosmos.execute_run"


class LocalExecutor(Protocol):
    """What the fast path needs of an engine (``cosmos.engine.RunEngine``)."""

    worker_id: str
    lease_seconds: int

    def reserve(self) -> bool:
        """Take one of the engine's slots for a run about to be handed over; False if full."""

    def release(self) -> None:
        """Give back a slot reserved for a run that was not handed over after all."""

    def hand_over_claimed(self, run: Run) -> None:
        """Execute a run this engine already holds the lease of (in a reserved slot)."""

    def hand_over(self, run_id: str) -> None:
        """Claim and execute a queued run (in a reserved slot)."""


_local: LocalExecutor | None = None


def set_local_executor(executor: LocalExecutor | None) -> None:
    global _local
    _local = executor


def local_executor() -> LocalExecutor | None:
    """This process's engine, if it executes runs here."""
    return _local


def dispatch_run(run_id) -> None:
    """Execute a queued run: on this process's engine if it has room, else through the broker.
    A broker outage leaves it queued for the reaper to resend."""
    local = _local
    if local is not None and local.reserve():
        try:
            local.hand_over(str(run_id))
            return
        except Exception as exc:  # its loop is gone (the process is exiting): the broker takes it
            local.release()
            logger.warning("the engine did not take the run: %s", exc.__class__.__name__, extra={"run_id": str(run_id)})
    try:
        current_app.send_task(EXECUTE_RUN, args=[str(run_id)], retry=False, ignore_result=True)
    except Exception as exc:
        logger.warning(
            "dispatch failed, the reaper will resend: %s", exc.__class__.__name__, extra={"run_id": str(run_id)}
        )
        Run.objects.filter(id=run_id).update(dispatched_at=None)
