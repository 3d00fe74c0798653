"""Sending deliveries: claim, POST through the outbound policy, log the attempt, retry or end.

A delivery row is written in the transaction (or right after the commit) of what it reports,
and a Celery task carrying its id is sent on commit. The task claims the row with a conditional
UPDATE (so two tasks for one row send it once), POSTs, and records the attempt. A failure
(no answer, a timeout, a status that is not 2xx) schedules the next attempt with exponential
backoff and jitter; after ``ASTEROS_WEBHOOK_RETRY_SECONDS`` (a day by default) the delivery is
marked failed. Each process's run engine sweeps due deliveries every second (``sweep_due``):
retries, and the tasks a broker outage or a dead worker lost. Delivery is at least once: a
receiver that answered but whose answer was lost gets the message again, with the same
``webhook-id``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from cosmos import outbound

from .models import Delivery, DeliveryAttempt, DeliveryStatus
from .signing import signed_headers

logger = logging.getLogger(__name__)

DELIVER_TASK = "asteros.webhooks.deliver"
# Each POST: a receiver should answer quickly and do its work later (Standard Webhooks advice).
TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
# Backoff: 5 s (ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS), 10 s, 20 s, ... capped at an hour, each
# times a random factor in [0.5, 1.5).
MAX_RETRY_SECONDS = 3600.0
# A task sent for a due delivery that has not claimed it after this long was lost: resend.
REDISPATCH_AFTER = timedelta(seconds=60)
SWEEP_BATCH = 500
USER_AGENT = "AsterOS-Webhooks/1"

_clients = threading.local()


def _client() -> httpx.Client:
    # One client (and its connection pool) per thread: a worker sends many deliveries.
    client = getattr(_clients, "client", None)
    if client is None:
        client = outbound.sync_client(
            timeout=TIMEOUT_SECONDS, deadline=TIMEOUT_SECONDS * 2, max_bytes=MAX_RESPONSE_BYTES, follow_redirects=False
        )
        _clients.client = client
    return client


# --- queueing


def queue_once(rows: list[Delivery]) -> list[Delivery]:
    """Write these deliveries, except those whose receiver already has their message id, and send
    the new ones once the transaction commits. Returns the rows waiting for their first send."""
    if not rows:
        return []
    with transaction.atomic():
        # ignore_conflicts: a delivery this occurrence already has stays as it is (no id comes back).
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        waiting = list(
            Delivery.objects.filter(
                message_id__in=[row.message_id for row in rows], attempts=0, dispatched_at__isnull=True
            )
        )
        dispatch_on_commit([row.id for row in waiting])
    return waiting


def dispatch_on_commit(delivery_ids: list[int]) -> None:
    """Send a task for each new delivery once the transaction that wrote it commits."""
    if delivery_ids:
        transaction.on_commit(functools.partial(_dispatch, list(delivery_ids)), robust=True)


def _dispatch(delivery_ids: list[int]) -> None:
    # Marked dispatched first, in one UPDATE (a task may finish before a later write would land),
    # then one task each over one broker connection; what the broker refused is unmarked, for
    # the sweep to resend.
    now = timezone.now()
    for chunk in _chunks(delivery_ids):
        Delivery.objects.filter(id__in=chunk, dispatched_at__isnull=True).update(dispatched_at=now)
    refused = _send_tasks(delivery_ids)
    for chunk in _chunks(refused):
        Delivery.objects.filter(id__in=chunk, dispatched_at=now).update(dispatched_at=None)


def _send_tasks(delivery_ids: list[int]) -> list[int]:
    """Send a deliver task for each id over one producer; returns the ids the broker refused."""
    refused: list[int] = []
    try:
        with current_app.producer_or_acquire() as producer:
            for index, delivery_id in enumerate(delivery_ids):
                try:
                    current_app.send_task(
                        DELIVER_TASK, args=[delivery_id], retry=False, ignore_result=True, producer=producer
                    )
                except Exception as exc:  # the broker went away: the rest waits for the sweep
                    logger.warning("webhook dispatch failed, the sweep will resend: %s", exc.__class__.__name__)
                    refused.extend(delivery_ids[index:])
                    break
    except Exception as exc:  # no connection to the broker at all
        logger.warning("webhook dispatch failed, the sweep will resend: %s", exc.__class__.__name__)
        return list(delivery_ids)
    return refused


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def sweep_due(limit: int = SWEEP_BATCH) -> int:
    """Send a task for each due delivery with no live task (retries, and lost tasks)."""
    now = timezone.now()
    due = Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER)
    )
    due = due.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    sent = []
    for delivery_id, dispatched_at in list(due.values_list("id", "dispatched_at")[:limit]):
        # One process wins each row: the others see dispatched_at changed.
        if Delivery.objects.filter(id=delivery_id, dispatched_at=dispatched_at).update(dispatched_at=now):
            sent.append(delivery_id)
    for chunk in _chunks(_send_tasks(sent)):
        Delivery.objects.filter(id__in=chunk, dispatched_at=now).update(dispatched_at=None)
    return len(sent)


def redeliver(delivery: Delivery) -> Delivery:
    """Send a delivery again now, whatever its status, with the same ``webhook-id``."""
    now = timezone.now()
    Delivery.objects.filter(id=delivery.id).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, dispatched_at=None, locked_until=None
    )
    dispatch_on_commit([delivery.id])
    delivery.refresh_from_db()
    return delivery


# --- sending


def deliver(delivery_id: int) -> str | None:
    """Make one attempt at a due delivery; its status after, or None if it was not ours to send."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    request = _request_of(delivery)
    started_at = timezone.now()
    clock = time.perf_counter()
    status_code: int | None = None
    error = ""
    try:
        response = _client().post(request.url, content=request.body, headers=request.headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"The receiver answered {status_code}."
    except outbound.OutboundError:
        error = outbound.FAILURE_MESSAGE
    except httpx.HTTPError as exc:
        error = f"The request failed: {exc.__class__.__name__}."
    latency_ms = round((time.perf_counter() - clock) * 1000, 2)
    return _record(delivery, started_at, status_code, latency_ms, error)


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    claimable = Delivery.objects.filter(id=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    claimable = claimable.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    lock = now + timedelta(seconds=TIMEOUT_SECONDS * 3)
    if not claimable.update(locked_until=lock, attempts=F("attempts") + 1):
        return None
    return Delivery.objects.select_related("webhook", "push_config").get(id=delivery_id)


class _Request:
    def __init__(self, url: str, body: str, headers: dict[str, str]) -> None:
        self.url, self.body, self.headers = url, body, headers


def _request_of(delivery: Delivery) -> _Request:
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    now = timezone.now()
    if delivery.webhook_id is not None:
        webhook = delivery.webhook
        headers |= signed_headers(webhook.secret, delivery.message_id, now, body)
        return _Request(webhook.url, body, headers)
    config = delivery.push_config
    headers["content-type"] = "application/a2a+json"  # an A2A StreamResponse (A2A 1.0, 4.3.3)
    headers |= {"webhook-id": delivery.message_id, "webhook-timestamp": str(int(now.timestamp()))}
    if config.token:
        headers["x-a2a-notification-token"] = config.token
    auth = config.authentication or {}
    if auth.get("credentials"):
        scheme = str(auth.get("scheme") or "Bearer")
        headers["authorization"] = f"{scheme} {auth['credentials']}"
    return _Request(config.url, body, headers)


def _record(delivery: Delivery, started_at, status_code: int | None, latency_ms: float, error: str) -> str:
    now = timezone.now()
    succeeded = not error
    fields: dict[str, Any] = {
        "locked_until": None,
        "dispatched_at": None,
        "last_status_code": status_code,
        "last_error": error[:500],
        "last_latency_ms": latency_ms,
    }
    if succeeded:
        fields |= {"status": DeliveryStatus.SUCCEEDED, "delivered_at": now, "next_attempt_at": None}
    else:
        retry_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        if retry_at > delivery.created_at + timedelta(seconds=settings.ASTEROS.webhook_retry_seconds):
            fields |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
        else:
            fields["next_attempt_at"] = retry_at
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery_id=delivery.id,
            number=delivery.attempts,
            started_at=started_at,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error[:500],
        )
        # Only the attempt that holds the claim writes its outcome (a redeliver meanwhile wins).
        Delivery.objects.filter(id=delivery.id, attempts=delivery.attempts, status=DeliveryStatus.PENDING).update(
            **fields
        )
    if error:
        logger.info(
            "webhook delivery failed",
            extra={"delivery": delivery.id, "attempt": delivery.attempts, "status_code": status_code},
        )
    return fields.get("status", DeliveryStatus.PENDING)


def backoff_seconds(attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): doubling from
    ``ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS`` (5 s), capped at an hour, with jitter in [0.5, 1.5)
    so receivers that come back are not hit all at once."""
    first = settings.ASTEROS.webhook_first_retry_seconds
    base = min(MAX_RETRY_SECONDS, first * 2 ** min(max(0, attempt - 1), 32))
    return base * (0.5 + random.random())
