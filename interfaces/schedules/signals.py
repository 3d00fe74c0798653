"""Every save or delete of a schedule is mirrored into Celery beat's ``PeriodicTask``."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from .models import Schedule
from .services import remove_periodic_task, sync_periodic_task


def _saved(sender, instance: Schedule, raw: bool = False, **_kwargs) -> None:
    if not raw:
        sync_periodic_task(instance)


def _deleted(sender, instance: Schedule, **_kwargs) -> None:
    remove_periodic_task(instance.pk)


def connect() -> None:
    post_save.connect(_saved, sender=Schedule, dispatch_uid="schedules.sync_periodic_task")
    post_delete.connect(_deleted, sender=Schedule, dispatch_uid="schedules.remove_periodic_task")
