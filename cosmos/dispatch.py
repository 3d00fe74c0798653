"""Sending a run to a worker: the ``cosmos.execute_run`` task of ``cosmos.tasks``.

The task is sent by its name, so the services that dispatch (a new run, a session's next run,
the reaper's resend) do not import the task's module: it imports the engine, which uses them.
"""

from __future__ import annotations

import logging

from celery import current_app

from .models import Run

logger = logging.getLogger(__name__)

EXECUTE_RUN = "cosmos.execute_run"


def dispatch_run(run_id) -> None:
    """Send the run to the broker. A broker outage leaves it queued for the reaper to resend."""
    try:
        current_app.send_task(EXECUTE_RUN, args=[str(run_id)], retry=False, ignore_result=True)
    except Exception as exc:
        logger.warning(
            "dispatch failed, the reaper will resend: %s", exc.__class__.__name__, extra={"run_id": str(run_id)}
        )
        Run.objects.filter(id=run_id).update(dispatched_at=None)
