"""What an Agent Protocol thread has beyond its session: the client's metadata."""

from __future__ import annotations

from django.db import models

from cosmos.models import Session


class ThreadMetadata(models.Model):
    """The metadata a client gave a thread (a ``cosmos.Session``); deleted with the session."""

    session = models.OneToOneField(Session, primary_key=True, on_delete=models.CASCADE, related_name="protocol_thread")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "thread metadata"
        verbose_name_plural = "thread metadata"

    def __str__(self) -> str:
        return self.session_id
