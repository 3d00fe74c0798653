"""Celery tasks of webhooks. Thin: they carry a delivery id and hand it to the sender."""

from celery import shared_task

from .deliveries import DELIVER_TASK, deliver


@shared_task(name=DELIVER_TASK, ignore_result=True)
def deliver_task(delivery_id: int) -> None:
    deliver(delivery_id)
