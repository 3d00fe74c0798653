"""API keys managed in the admin: stored hashed, shown once, scoped and revocable."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.core.validators import MinValueValidator
from django.db import models

from cosmos.models import PRICE_CURRENCY

SCOPES = ("read", "run", "admin")
KEY_PREFIX = "ak_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class APIKey(models.Model):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text='Any of "read", "run", "admin".')
    resources = models.JSONField(
        default=list, blank=True, help_text='Optional: limit to resources like "agents:chat-agent"; empty = all.'
    )
    revoked = models.BooleanField(default=False)
    # Quotas (interfaces.keys.quotas); empty means unlimited. To stop a key altogether, revoke it.
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: unlimited."
    )
    max_concurrent_runs = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Queued or running runs; empty: unlimited."
    )
    tokens_per_day = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Tokens (input, cached input and output) of runs finished since 00:00 UTC; empty: unlimited.",
    )
    cost_per_day = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=f"{PRICE_CURRENCY}: what runs finished since 00:00 UTC cost (model price table); empty: unlimited.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "interfaces_apikey"  # the table kept its name when the model moved here from interfaces
        verbose_name = "API key"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def generate(
        cls, name: str, scopes: list[str], resources: list[str] | None = None, **limits: Any
    ) -> tuple[APIKey, str]:
        """Create a key (``limits``: the quota fields); the raw key is returned once and never stored."""
        prefix = secrets.token_hex(4)
        raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(
            name=name, prefix=prefix, hashed_key=hash_key(raw), scopes=scopes, resources=resources or [], **limits
        )
        return key, raw

    @property
    def caller(self) -> str:
        """The ``Run.caller`` of the runs this key starts (``interfaces.edge.auth.caller_of``)."""
        return f"key:{self.prefix}"

    def has_scope(self, scope: str) -> bool:
        # admin implies run, run implies read.
        order = {"read": 0, "run": 1, "admin": 2}
        return any(order.get(s, -1) >= order[scope] for s in self.scopes)
