"""Webhook events: which subscriptions want an event, and the deliveries made for them.

``emit`` is the one way in: it writes one delivery per matching subscription, keyed by a
message id derived from the subscription and the event's own key, so emitting the same event
twice (a signal and the sweep that backs it up) delivers it once per subscription.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from .deliveries import queue_once
from .models import Delivery, Event, Webhook
from .signing import new_secret

MESSAGE_NAMESPACE = uuid.UUID("6f1c3f0e-7d0a-4a51-9a8e-3b1f2f6f1a77")


def message_id(receiver: Any, event_key: str) -> str:
    """The ``webhook-id`` of one event for one receiver: stable, so retries and re-emits match."""
    return "msg_" + uuid.uuid5(MESSAGE_NAMESPACE, f"{receiver}:{event_key}").hex


def subscribers(event: str, kind: str = "", target: str = "", hooks: list[Webhook] | None = None) -> list[Webhook]:
    """The enabled subscriptions (of ``hooks``, default all) that want this event of this resource."""
    wanted = []
    for webhook in Webhook.objects.filter(enabled=True) if hooks is None else hooks:
        if webhook.events and event not in webhook.events:
            continue
        if webhook.resource_kind and webhook.resource_kind != kind:
            continue
        if webhook.resource_id and webhook.resource_id != target:
            continue
        wanted.append(webhook)
    return wanted


def emit(
    event: str,
    data: dict,
    *,
    event_key: str,
    kind: str = "",
    target: str = "",
    run_id: Any = None,
    occurred_at: datetime | None = None,
    hooks: list[Webhook] | None = None,
) -> list[Delivery]:
    """Queue ``event`` for every subscription (of ``hooks``, default all) that wants it; returns
    the deliveries it created.

    ``event_key`` names this occurrence (e.g. ``<run id>:run.succeeded``): the same key never
    makes a second delivery for the same subscription."""
    hooks = subscribers(event, kind, target, hooks)
    if not hooks:
        return []
    payload = {"type": event, "timestamp": (occurred_at or timezone.now()).isoformat(), "data": data}
    now = timezone.now()
    rows = [
        Delivery(
            message_id=message_id(webhook.pk, event_key),
            webhook=webhook,
            event=event,
            run_id=run_id,
            payload=payload,
            next_attempt_at=now,
        )
        for webhook in hooks
    ]
    return queue_once(rows)


def emit_schedule_failed(
    schedule_id: str, name: str, kind: str, target: str, tick: datetime, error: dict
) -> list[Delivery]:
    """A schedule's tick could not start its run (once per tick)."""
    return emit(
        Event.SCHEDULE_FAILED,
        {
            "schedule": {"id": schedule_id, "name": name},
            "kind": kind,
            "target": target,
            "tick": tick.isoformat(),
            "error": error,
        },
        event_key=f"schedule:{schedule_id}:{tick.isoformat()}",
        kind=kind,
        target=target,
        occurred_at=timezone.now(),
    )


# --- subscriptions (the API and the admin)


def create_webhook(*, caller: str = "", **fields: Any) -> Webhook:
    """A new subscription with a fresh secret (the caller shows it once)."""
    webhook = Webhook(secret=new_secret(), caller=caller[:200], **fields)
    webhook.save(force_insert=True)
    return webhook


def rotate_secret(webhook: Webhook) -> Webhook:
    """A new signing secret; the old one stops signing at once."""
    webhook.secret = new_secret()
    webhook.save(update_fields=["secret", "updated_at"])
    return webhook


def send_test(webhook: Webhook) -> Delivery:
    """A ``webhook.test`` ping to this subscription, delivered like any event (enabled or not)."""
    now = timezone.now()
    event_key = f"test:{uuid.uuid4().hex}"
    payload = {
        "type": Event.WEBHOOK_TEST,
        "timestamp": now.isoformat(),
        "data": {"webhook": {"id": str(webhook.pk), "name": webhook.name}},
    }
    row = Delivery(
        message_id=message_id(webhook.pk, event_key),
        webhook=webhook,
        event=Event.WEBHOOK_TEST,
        payload=payload,
        next_attempt_at=now,
    )
    return queue_once([row])[0]
