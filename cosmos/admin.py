"""The control plane for cosmos: agent templates, agents, sessions, runs and workers.

Admin classes stay thin: validation lives in the models' ``clean()`` and in
``cosmos.services``; starting and cancelling runs call the run services.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import F
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from .admin_forms import JSON_EDITOR_OVERRIDES, ModelSettingsForm
from .admin_interrupts import InterruptInline  # also registers the approvals queue
from .admin_revisions import RevisionHistoryMixin
from .formatting import format_duration
from .kinds import get_kind, kind_choices
from .models import (
    ACTIVE_STATUSES,
    PRICE_CURRENCY,
    Agent,
    AgentTemplate,
    ModelPrice,
    Run,
    RunEvent,
    Session,
    WorkerHeartbeat,
)
from .services import costs
from .services import runs as run_services
from .services.agents import ensure_capacity
from .services.errors import ServiceError

TIMESTAMPS = ("created_at", "updated_at")
TIMELINE_LIMIT = 500


class ConflictSafeMixin:
    """A save that a concurrent write beat (two adds of one id at once: both forms validate, the
    database's unique constraint refuses the second) shows the form again with the reason, as a
    409, never a 500: validated again, the form now sees the row the other write committed."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except IntegrityError:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if response.status_code == 200:
                response.status_code = 409
            return response


class FixedIdMixin(ConflictSafeMixin):
    """The slug id is an address (URLs, stars, workflows): chosen on add, read-only after.

    Editing a primary key in the admin would copy the row instead of renaming it.
    """

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return ("id", *fields) if obj is not None else fields


class DefinitionAdmin(RevisionHistoryMixin, FixedIdMixin, admin.ModelAdmin):
    """Shared by every ``Definition`` (agents, stars, workflows): rows from code are marked."""

    list_display = ("id", "name", "enabled", "source", "updated_at")
    list_filter = ("enabled", "source")
    search_fields = ("id", "name", "description")
    readonly_fields = ("source", *TIMESTAMPS)
    formfield_overrides = JSON_EDITOR_OVERRIDES


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the runtime: browsable, never edited by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AgentTemplateForm(ModelSettingsForm):
    class Meta:
        model = AgentTemplate
        fields = "__all__"


@admin.register(AgentTemplate)
class AgentTemplateAdmin(RevisionHistoryMixin, FixedIdMixin, admin.ModelAdmin):
    revision_resource = "template"
    form = AgentTemplateForm
    formfield_overrides = JSON_EDITOR_OVERRIDES
    list_display = ("id", "name", "provider", "model", "updated_at")
    list_filter = ("provider",)
    search_fields = ("id", "name", "system_prompt")
    readonly_fields = ("api_key_status", *TIMESTAMPS)

    @admin.display(description="API key status")
    def api_key_status(self, obj: AgentTemplate) -> str:
        """Whether this process resolves the reference (none / set / not set / refused); never the value."""
        return obj.api_key_status


class AgentForm(ModelSettingsForm):
    provider_blank = "(the template's)"
    provider_help = "The model provider; empty: the template's."

    class Meta:
        model = Agent
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if self.instance._state.adding:
            try:
                ensure_capacity()
            except ServiceError as exc:
                raise ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(Agent)
class AgentAdmin(DefinitionAdmin):
    revision_resource = "agent"
    form = AgentForm
    list_display = ("id", "name", "provider", "model", "template", "enabled", "source", "updated_at")
    list_filter = ("enabled", "source", "provider", "template")
    list_select_related = ("template",)
    fieldsets = (
        (None, {"fields": ("id", "name", "description", "enabled", "source")}),
        (
            "Model",
            {
                "fields": (
                    "template",
                    "provider",
                    "model",
                    "base_url",
                    "api_key",
                    "api_key_status",
                    "parameters",
                    "system_prompt",
                    "tools",
                )
            },
        ),
        ("More", {"fields": ("metadata", *TIMESTAMPS)}),
    )
    readonly_fields = (*DefinitionAdmin.readonly_fields, "api_key_status")

    @admin.display(description="API key status")
    def api_key_status(self, obj: Agent) -> str:
        """Whether this process resolves the reference (none / set / not set / refused); never the value."""
        return obj.api_key_status


@admin.register(Session)
class SessionAdmin(FixedIdMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "target", "policy", "run_count", "updated_at")
    list_filter = ("kind", "policy")
    search_fields = ("id", "target")
    readonly_fields = TIMESTAMPS

    @admin.display(description="runs")
    def run_count(self, obj: Session) -> int:
        return obj.runs.count()


class RunStartForm(forms.ModelForm):
    """The add form: what to run. The run itself is created by ``start_run``."""

    kind = forms.ChoiceField(choices=kind_choices)  # the catalogue, read when the form is built
    # Plain text, as the "Run with an input…" action takes it: the text is the message; a JSON
    # object ({"message": ...} or {"messages": [...]}) is taken as the input itself.
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text='What to say to the target. A JSON object such as {"messages": [...]} is taken as it is.',
    )
    session_id = forms.CharField(required=False, max_length=128, help_text="Optional: continue this session.")

    class Meta:
        model = Run
        fields = ("kind", "target", "input")

    def clean(self):
        cleaned = super().clean()
        try:
            if cleaned.get("kind") and cleaned.get("target"):
                get_kind(cleaned["kind"]).check_target(cleaned["target"])
            if "input" in cleaned:
                cleaned["input"] = run_services.normalize_input(run_services.input_from_text(cleaned["input"]))
        except ServiceError as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "kind",
        "target",
        "status",
        "origin",
        "attempts",
        "tokens",
        "cost_shown",
        "created_at",
        "duration",
    )
    list_filter = ("status", "kind", "origin")
    search_fields = ("=id", "target", "caller", "idempotency_key", "worker_id")
    date_hierarchy = "created_at"
    list_select_related = ("parent",)
    actions = ("cancel_runs",)
    inlines = (InterruptInline,)
    fieldsets = (
        (None, {"fields": ("id", "kind", "target", "revision", "status", "origin", "caller", "parent", "session")}),
        ("Input and result", {"fields": ("input", "result", "error", "metadata")}),
        ("Work", {"fields": ("attempts", "max_attempts", "worker_id", "lease_expires_at", "cancel_requested")}),
        (
            "Usage and timing",
            {"fields": ("tokens", "cost_shown", "duration", *TIMESTAMPS, "dispatched_at", "started_at", "finished_at")},
        ),
        ("Events", {"fields": ("events_timeline",)}),
    )

    def get_queryset(self, request):
        tokens = F("input_tokens") + F("cache_read_tokens") + F("cache_write_tokens") + F("output_tokens")
        return super().get_queryset(request).annotate(total_tokens=tokens)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("kind", "target", "input", "session_id")}),)
        return self.fieldsets

    def get_inlines(self, request, obj=None):
        return self.inlines if obj is not None else ()  # the add form only says what to run

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RunStartForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Only the run services write a run: every field is shown, none is edited.
        return [name for fieldset in self.fieldsets for name in fieldset[1]["fields"]]

    def has_change_permission(self, request, obj=None) -> bool:
        # A run's page is a view (no Save buttons; a POST to it is refused): its actions (cancel,
        # retry) and the add form go through the run services instead.
        return False

    def save_model(self, request, obj, form, change):
        run, _ = run_services.start_run(
            form.cleaned_data["kind"],
            form.cleaned_data["target"],
            form.cleaned_data["input"],
            session_id=form.cleaned_data.get("session_id") or None,
            origin="admin",
            caller=f"user:{request.user.get_username()}",
        )
        obj.pk = run.pk
        obj.refresh_from_db()

    @admin.display(description="run", ordering="created_at")
    def short_id(self, obj: Run) -> str:
        return str(obj.id)[:8]

    @admin.display(description="tokens", ordering="total_tokens")
    def tokens(self, obj: Run) -> str:
        cached = obj.cache_read_tokens + obj.cache_write_tokens
        shown = f"{obj.input_tokens} in / {obj.output_tokens} out"
        return (
            f"{shown} / {cached} cached ({obj.cache_read_tokens} read, {obj.cache_write_tokens} written)"
            if cached
            else shown
        )

    @admin.display(description="cost", ordering="cost")
    def cost_shown(self, obj: Run) -> str:
        if obj.cost_unpriced:
            return f"unpriced ({obj.provider}:{obj.model} has no price)"
        return f"{obj.cost:.6f} {PRICE_CURRENCY}" + (f" ({obj.provider}:{obj.model})" if obj.model else "")

    @admin.display(description="output")
    def result(self, obj: Run) -> str:
        """A text answer as text (line breaks kept), anything else as indented JSON: not a quoted,
        escaped JSON string on one line."""
        output = obj.output
        if output is None:
            return "-"
        text = output if isinstance(output, str) else json.dumps(output, indent=2, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)

    @admin.display(description="duration")
    def duration(self, obj: Run) -> str:
        return format_duration(obj.duration_seconds)

    @admin.display(description="events")
    def events_timeline(self, obj: Run) -> str:
        events = [
            {"seq": e.seq, "type": e.type, "created_at": e.created_at, "data": json.dumps(e.data, ensure_ascii=False)}
            for e in obj.events.order_by("seq")[:TIMELINE_LIMIT]
        ]
        return render_to_string(
            "admin/cosmos/run/events_timeline.html",
            {"events": events, "total": obj.events.count(), "limit": TIMELINE_LIMIT},
        )

    @admin.action(description="Cancel the selected runs (and their children)")
    def cancel_runs(self, request, queryset):
        active = list(queryset.filter(status__in=ACTIVE_STATUSES).values_list("id", flat=True))
        flagged = sum(run_services.request_cancel(run_id) for run_id in active)
        skipped = queryset.count() - len(active)
        self.message_user(
            request, f"Cancel requested for {flagged} run(s); {skipped} already finished.", messages.SUCCESS
        )


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyAdmin):
    list_display = ("run", "seq", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("=run__id", "type")
    list_select_related = ("run",)
    readonly_fields = ("run", "seq", "type", "data", "created_at")
    raw_id_fields = ("run",)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("worker_id", "mode", "active_runs", "started_at", "seen_at")
    list_filter = ("mode",)
    search_fields = ("worker_id",)
    readonly_fields = ("worker_id", "mode", "active_runs", "started_at", "seen_at")


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """The price table runs are priced by; its changelist links to the usage page."""

    list_display = (
        "provider",
        "model",
        "input_per_million",
        "output_per_million",
        "cache_read_per_million",
        "cache_write_per_million",
        "currency",
        "updated_at",
    )
    list_editable = ("input_per_million", "output_per_million", "cache_read_per_million", "cache_write_per_million")
    list_filter = ("provider",)
    search_fields = ("model",)
    readonly_fields = ("updated_at",)
    change_list_template = "admin/cosmos/modelprice/change_list.html"

    def get_urls(self) -> list:
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name="cosmos_modelprice_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request):
        """Totals of the runs that ended in the last ``days`` days (UTC), by agent, caller, day and model."""
        try:
            days = min(366, max(1, int(request.GET.get("days") or 30)))
        except ValueError:
            days = 30
        since = costs.day_start(timezone.now().date() - timedelta(days=days - 1))
        tables = [
            (label, costs.usage_totals(group, since=since))
            for label, group in (
                ("Agents", "agent"),
                ("Callers (API keys: key:<prefix>)", "caller"),
                ("Days (UTC)", "day"),
                ("Models", "model"),
            )
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage, last {days} days",
            "opts": self.model._meta,
            "tables": tables,
            "total": costs.sum_rows(tables[2][1]),
            "days": days,
            "currency": PRICE_CURRENCY,
        }
        return TemplateResponse(request, "admin/cosmos/modelprice/usage.html", context)
