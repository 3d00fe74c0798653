"""The fire task beat wakes: thin, the work is ``services.fire``."""

from __future__ import annotations

from celery import shared_task

from .services import FIRE_TASK, fire


@shared_task(name=FIRE_TASK, ignore_result=True)
def fire_schedule(name: str) -> None:
    """Start the runs of the schedule's ticks that are due (none twice)."""
    fire(name)
