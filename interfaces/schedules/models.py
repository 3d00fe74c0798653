"""Schedules: an agent, star or workflow started on a clock (a cron expression or an interval).

A tick is one instant of a schedule's grid. It starts one run, keyed by the caller
``schedule:<name>`` and the idempotency key ``<tick instant, ISO 8601 UTC>``: the unique
(caller, idempotency key) of runs makes a tick start at most one run, however many beats wake it.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from timezone_field import TimeZoneField

from cosmos.kinds import kind_choices

from .validation import validate_schedule

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CALLER_PREFIX = "schedule:"


class MissedPolicy(models.TextChoices):
    SKIP = "skip", "Skip missed ticks (fire only the latest)"
    CATCH_UP = "catch_up", "Catch up (fire up to the limit)"


class Schedule(models.Model):
    """Runs of one agent, star or workflow on a clock."""

    name = models.CharField(
        max_length=64,
        primary_key=True,
        validators=[RegexValidator(NAME_PATTERN, "Lowercase letters, digits, '-' and '_' (1 to 64).")],
        help_text="The schedule's id: lowercase letters, digits, '-' and '_'.",
    )
    description = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=16, choices=kind_choices, help_text="What runs: agent, star or workflow.")
    target = models.CharField(max_length=64, help_text="The id of the agent, star or workflow.")
    cron = models.CharField(
        max_length=120,
        blank=True,
        help_text="Five fields: minute hour day-of-month month day-of-week (e.g. '0 9 * * mon-fri'), "
        "read in the schedule's timezone. Set this or the interval.",
    )
    interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Every this many seconds (on a grid from the start date, or from 1970-01-01 UTC). "
        "Set this or the cron expression.",
    )
    timezone = TimeZoneField(default="UTC", help_text="IANA name, e.g. Europe/Paris: how the cron fields are read.")
    input = models.JSONField(default=dict, blank=True, help_text="The run input, as POST .../run accepts it.")
    session_id = models.CharField(
        max_length=128, blank=True, help_text="Every tick in this session. Empty: a new session per tick."
    )
    enabled = models.BooleanField(default=True)
    start_at = models.DateTimeField(null=True, blank=True, help_text="No tick before this instant.")
    end_at = models.DateTimeField(null=True, blank=True, help_text="No tick after this instant.")
    missed_policy = models.CharField(max_length=16, choices=MissedPolicy.choices, default=MissedPolicy.SKIP)
    catch_up_limit = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)], help_text="catch_up: at most this many missed ticks fire."
    )
    last_tick_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="The last tick handled.")
    last_run_id = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.JSONField(null=True, blank=True, editable=False, help_text="Why the last tick failed.")
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    caller = models.CharField(max_length=200, blank=True, editable=False, help_text="Who created it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                name="schedule_cron_xor_interval",
                condition=(Q(cron="") & Q(interval_seconds__isnull=False))
                | (~Q(cron="") & Q(interval_seconds__isnull=True)),
            ),
            models.CheckConstraint(
                name="schedule_end_after_start",
                condition=Q(start_at__isnull=True) | Q(end_at__isnull=True) | Q(end_at__gt=models.F("start_at")),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def run_caller(self) -> str:
        """The ``caller`` of every run this schedule starts: how a run is linked to it."""
        return f"{CALLER_PREFIX}{self.pk}"

    @property
    def when(self) -> str:
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {self.interval_seconds}s"

    def clean(self) -> None:
        validate_schedule(self)
