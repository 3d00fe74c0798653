"""Stars: teams of Cosmos agents with one leader and any number of workers."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from cosmos.models import Agent, Definition, Run
from cosmos.validators import slug_id_validator

# The run kind of a star (``Run.kind``), registered in ``StarsConfig.ready()``.
STAR_KIND = "star"


class StarMode(models.TextChoices):
    DELEGATE = "delegate", "Delegate (leader hands out work)"
    BROADCAST = "broadcast", "Broadcast (all workers, leader synthesizes)"
    ROUND_ROBIN = "round_robin", "Round robin (members speak in turn)"


class Role(models.TextChoices):
    LEADER = "leader", "Leader"
    WORKER = "worker", "Worker"


class Star(Definition):
    mode = models.CharField(max_length=16, choices=StarMode.choices, default=StarMode.DELEGATE)
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="max_delegations, max_depth, member_timeout (seconds), rounds",
    )

    class Meta(Definition.Meta):
        pass

    def clean(self) -> None:
        from .limits import config_errors

        errors = config_errors(self.config)
        if errors:
            raise ValidationError({"config": errors})


class Membership(models.Model):
    star = models.ForeignKey(Star, on_delete=models.CASCADE, related_name="memberships")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="memberships")
    name = models.SlugField(
        max_length=64, blank=True, validators=[slug_id_validator], help_text="Defaults to the agent id."
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.WORKER)
    order = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True, help_text="What this member is good at (shown to the leader).")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("star", "order", "id")
        constraints = [
            models.UniqueConstraint(fields=["star", "agent"], name="membership_agent_once_per_star"),
            models.UniqueConstraint(fields=["star", "name"], name="membership_name_once_per_star"),
            models.UniqueConstraint(fields=["star"], condition=Q(role="leader"), name="membership_one_leader"),
        ]

    def __str__(self) -> str:
        return f"{self.star_id}/{self.name} ({self.role})"

    def save(self, *args, **kwargs):
        if not self.name:
            self.name = self.agent_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not self.name and self.agent_id:
            self.name = self.agent_id
        errors: dict[str, str] = {}
        if self.star_id is None:
            return
        others = Membership.objects.filter(star_id=self.star_id).exclude(pk=self.pk)
        if self.agent_id and others.filter(agent_id=self.agent_id).exists():
            errors["agent"] = f"Agent {self.agent_id!r} is already a member of star {self.star_id!r}."
        if self.name and others.filter(name=self.name).exists():
            errors["name"] = f"A member named {self.name!r} already exists in star {self.star_id!r}."
        if self.role == Role.LEADER and others.filter(role=Role.LEADER).exists():
            errors["role"] = f"Star {self.star_id!r} already has a leader."
        if errors:
            raise ValidationError(errors)


class StarMessage(models.Model):
    """One message between members of a star run: who said what to whom."""

    star = models.ForeignKey(Star, on_delete=models.CASCADE, related_name="messages")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="star_messages")
    sender = models.CharField(max_length=64)
    recipient = models.CharField(max_length=64, help_text="A member name, or '*' for everyone.")
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.sender} -> {self.recipient}"
