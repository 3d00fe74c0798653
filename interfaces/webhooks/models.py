"""Webhook subscriptions, A2A push-notification configs, and the deliveries both make.

A delivery is one message to one URL: created once per (subscription, event) by a unique key,
sent by workers, retried with backoff until ``ASTEROS_WEBHOOK_RETRY_SECONDS`` have passed, and
logged attempt by attempt. ``message_id`` is the Standard Webhooks ``webhook-id``: the same on
every retry and redelivery, for receivers to de-duplicate.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Event(models.TextChoices):
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_INTERRUPTED = "run.interrupted"
    SCHEDULE_FAILED = "schedule.failed"
    # A ping an operator sends (POST /api/webhooks/{id}/test, the admin): always delivered,
    # whatever the subscription's events.
    WEBHOOK_TEST = "webhook.test"


SUBSCRIBABLE = tuple(event.value for event in Event if event != Event.WEBHOOK_TEST)


def events_problem(events: object) -> str | None:
    """Why ``events`` is not a list of subscribable events, or None (empty: all of them)."""
    if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
        return "A list of event names."
    unknown = sorted(set(events) - set(SUBSCRIBABLE))
    if unknown:
        return f"Unknown events {unknown}; choose among {list(SUBSCRIBABLE)}."
    return None


def resource_problem(kind: str, resource_id: str) -> dict[str, str]:
    """What is wrong with a subscription's resource filter, by field (empty: nothing)."""
    from cosmos.kinds import find_kind, kind_names

    if not kind:
        return {"resource_id": "Name the resource's kind (resource_kind) too."} if resource_id else {}
    found = find_kind(kind)
    if found is None:
        return {"resource_kind": f"Unknown kind {kind!r}; choose among {kind_names()}."}
    model = found.target_model
    if resource_id and model is not None and not model._default_manager.filter(pk=resource_id).exists():
        return {"resource_id": f"No {kind} {resource_id!r}."}
    return {}


# What an A2A push delivery carries (a StreamResponse with a task or a status update).
A2A_TASK_UPDATE = "a2a.task_update"


class Webhook(models.Model):
    """A subscription: these events, of any resource or of one, are POSTed to ``url``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, help_text="A label for people.")
    url = models.URLField("URL", max_length=2000, help_text="Where the events are POSTed (http or https).")
    events = models.JSONField(
        default=list,
        help_text="The events to send: run.succeeded, run.failed, run.cancelled, run.interrupted, "
        "schedule.failed. Empty: all of them.",
    )
    resource_kind = models.CharField(
        max_length=16, blank=True, help_text="Only runs of this kind (agent, star, workflow). Empty: any."
    )
    resource_id = models.CharField(max_length=64, blank=True, help_text="Only runs of this resource. Empty: any.")
    # The signing secret, "whsec_" + base64 (Standard Webhooks). Shown once, when it is made.
    secret = models.CharField(max_length=100, editable=False)
    enabled = models.BooleanField(default=True)
    caller = models.CharField(max_length=200, blank=True, editable=False, help_text="Who created it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "created_at")

    def __str__(self) -> str:
        return self.name or self.url

    def clean_fields(self, exclude=None) -> None:
        # ``events`` may be empty (all events): clean() checks it, not the blank rule.
        super().clean_fields(exclude={*(exclude or ()), "events"})

    def clean(self) -> None:
        """The URL by the outbound policy, the events among ``Event``, the resource filter by
        the catalogue of run kinds (the API and the admin both refuse what this refuses)."""
        from django.core.exceptions import ValidationError

        from .targets import receiver_url_problem

        errors: dict[str, str] = {}
        if problem := receiver_url_problem(self.url):
            errors["url"] = problem
        if problem := events_problem(self.events):
            errors["events"] = problem
        errors |= resource_problem(self.resource_kind, self.resource_id)
        if errors:
            raise ValidationError(errors)


class PushConfig(models.Model):
    """An A2A TaskPushNotificationConfig: the client's URL (and token) for one task's updates."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey("cosmos.Run", on_delete=models.CASCADE, related_name="push_configs")
    config_id = models.CharField(max_length=128, help_text="The config's id within its task.")
    url = models.URLField("URL", max_length=2000)
    token = models.CharField(max_length=1000, blank=True, help_text="Sent back as X-A2A-Notification-Token.")
    # AuthenticationInfo: {"scheme": "Bearer", "credentials": "..."}; the credentials are the
    # client's own, for its receiver, and are sent only to that URL.
    authentication = models.JSONField(null=True, blank=True)
    caller = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        verbose_name = "A2A push config"
        constraints = [models.UniqueConstraint(fields=["run", "config_id"], name="push_config_per_task")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.config_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Delivery(models.Model):
    """One message to one receiver, with its retries."""

    id = models.BigAutoField(primary_key=True)
    message_id = models.CharField(max_length=64, help_text="The webhook-id header: the same on every retry.")
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    push_config = models.ForeignKey(
        PushConfig, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=32)
    run = models.ForeignKey(
        "cosmos.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When it is due (pending only).")
    # When a task was last sent for it: the sweep resends a due delivery whose task was lost.
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A sender's claim on an attempt in flight: another sender leaves it alone until then.
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "message_id"], condition=Q(webhook__isnull=False), name="delivery_once_per_webhook"
            ),
            models.UniqueConstraint(
                fields=["push_config", "message_id"],
                condition=Q(push_config__isnull=False),
                name="delivery_once_per_push_config",
            ),
            models.CheckConstraint(
                condition=Q(webhook__isnull=False) | Q(push_config__isnull=False), name="delivery_has_a_receiver"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} {self.message_id}"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: what the receiver answered, and how fast."""

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("delivery", "number")

    def __str__(self) -> str:
        return f"attempt {self.number}"
