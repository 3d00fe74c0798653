"""The control plane for stars: a star with its members inline, and the members' messages.

``Membership.clean()`` checks each member against the saved ones; the inline formset adds the
same rules across the rows of one submission (two new leaders, the same agent twice).
"""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, OuterRef, Subquery
from django.forms.models import BaseInlineFormSet

from cosmos.admin import ConflictSafeMixin, DefinitionAdmin, ReadOnlyAdmin
from cosmos.admin_forms import SchemaJSONField

from .limits import BOUNDS, DEFAULTS
from .models import Membership, Role, Star, StarMessage


def config_schema() -> dict:
    """The limits a star's config holds (stars/limits.py), as the editor's form: one field each,
    with its bounds and its default."""
    return {
        "type": "object",
        "title": "Limits",
        "properties": {
            key: {
                "type": "integer" if integer else "number",
                "minimum": low,
                "maximum": high,
                "helpText": f"{low:g} to {high:g}; empty: {DEFAULTS[key]:g}.",
            }
            for key, (low, high, integer) in BOUNDS.items()
        },
    }


class StarForm(forms.ModelForm):
    # The model checks the values (stars.limits.config_errors); unset limits are not saved.
    config = SchemaJSONField(schema=config_schema, empty_json={}, prune=True, check=False)

    class Meta:
        model = Star
        fields = ("id", "name", "description", "mode", "config", "enabled")


class MembershipForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        # As Membership.save() does: the name defaults to the agent id (before the formset
        # compares names across rows).
        if not cleaned.get("name") and cleaned.get("agent"):
            cleaned["name"] = cleaned["agent"].pk
        return cleaned


class MembershipFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        rows = [
            form.cleaned_data
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]
        errors = []
        leaders = [row["agent"].pk for row in rows if row.get("role") == Role.LEADER and row.get("agent")]
        if len(leaders) > 1:
            errors.append(f"A star has one leader; {', '.join(leaders)} are all marked leader.")
        agents = Counter(row["agent"].pk for row in rows if row.get("agent"))
        errors += [
            f"Agent {agent!r} is listed {n} times; an agent is a member once." for agent, n in agents.items() if n > 1
        ]
        names = Counter(row["name"] for row in rows if row.get("name"))
        errors += [f"Two members are named {name!r}; names are unique in a star." for name, n in names.items() if n > 1]
        if errors:
            raise ValidationError(errors)
        super().clean()  # Django's own unique checks, once ours have passed


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    fields = ("agent", "name", "role", "order", "description", "notes")
    autocomplete_fields = ("agent",)
    extra = 1
    ordering = ("order", "id")
    # Six columns on one row: narrow boxes keep the table within a 1400-pixel page (the
    # admin's default text areas alone are 40 columns each).
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 20})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 12})},
        models.IntegerField: {"widget": forms.NumberInput(attrs={"style": "width: 5em"})},
    }


@admin.register(Star)
class StarAdmin(DefinitionAdmin):
    revision_resource = "star"
    form = StarForm
    list_display = ("id", "name", "mode", "leader", "member_count", "enabled", "source", "updated_at")
    list_filter = ("mode", "enabled", "source")
    search_fields = ("id", "name", "description", "memberships__agent__id")
    inlines = (MembershipInline,)
    fields = ("id", "name", "description", "mode", "config", "enabled", "source", "created_at", "updated_at")

    def get_queryset(self, request):
        leader = Membership.objects.filter(star=OuterRef("pk"), role=Role.LEADER).values("agent_id")[:1]
        return super().get_queryset(request).annotate(members=Count("memberships"), leader_id=Subquery(leader))

    @admin.display(description="members", ordering="members")
    def member_count(self, obj: Star) -> int:
        return obj.members

    @admin.display(description="leader", ordering="leader_id")
    def leader(self, obj: Star) -> str:
        return obj.leader_id or "-"


@admin.register(Membership)
class MembershipAdmin(ConflictSafeMixin, admin.ModelAdmin):
    list_display = ("star", "name", "agent", "role", "order")
    list_filter = ("role", "star")
    search_fields = ("star__id", "agent__id", "name")
    autocomplete_fields = ("star", "agent")
    readonly_fields = ("created_at",)


@admin.register(StarMessage)
class StarMessageAdmin(ReadOnlyAdmin):
    list_display = ("star", "run", "sender", "recipient", "short_content", "created_at")
    list_filter = ("star",)
    search_fields = ("sender", "recipient", "content", "=run__id")
    list_select_related = ("star", "run")
    readonly_fields = ("star", "run", "sender", "recipient", "content", "created_at")

    @admin.display(description="content")
    def short_content(self, obj: StarMessage) -> str:
        return obj.content[:80]
