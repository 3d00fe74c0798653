"""Schedules in the admin. Celery beat's own tables are the machinery behind them, kept in step
with each schedule, not a second place to edit: their admin pages are taken away.

The list shows when each schedule fires next and how its last tick went; the change page lists
the next fire times and links to the schedule's runs (the run list filtered by their caller).
"Run now" starts a run of each selected schedule at once.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django_celery_beat import models as beat

from cosmos.admin_forms import JSON_EDITOR_OVERRIDES
from cosmos.services.errors import ServiceError

from . import services
from .models import Schedule

for model in (beat.PeriodicTask, beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule, beat.ClockedSchedule):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    formfield_overrides = JSON_EDITOR_OVERRIDES  # the input: a JSON editor that names a syntax error
    list_display = ("name", "target_display", "when", "enabled", "next_fire", "last_tick_at", "last_error_message")
    list_filter = ("enabled", "kind", "missed_policy")
    search_fields = ("name", "target", "description")
    readonly_fields = (
        "next_fire_times",
        "runs_link",
        "last_tick_at",
        "last_run_id",
        "last_error",
        "last_error_at",
        "caller",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "description", "kind", "target", "input", "session_id", "enabled")}),
        ("When", {"fields": ("cron", "interval_seconds", "timezone", "start_at", "end_at", "next_fire_times")}),
        ("Missed ticks", {"fields": ("missed_policy", "catch_up_limit")}),
        ("Runs", {"fields": ("runs_link", "last_tick_at", "last_run_id", "last_error", "last_error_at")}),
        ("Record", {"fields": ("caller", "created_at", "updated_at")}),
    )
    actions = ("run_now",)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # The name is the schedule's id and its runs' caller: renaming would orphan its runs.
        return ("name", *fields) if obj is not None else fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.caller = f"user:{request.user.get_username()}"
        super().save_model(request, obj, form, change)

    @admin.display(description="Target")
    def target_display(self, obj: Schedule) -> str:
        return f"{obj.kind} {obj.target}"

    @admin.display(description="Next fire (UTC)")
    def next_fire(self, obj: Schedule) -> str:
        times = services.next_fire_times(obj, n=1)
        return times[0].isoformat() if times else "—"

    @admin.display(description="Next fire times (UTC)")
    def next_fire_times(self, obj: Schedule):
        times = services.next_fire_times(obj) if obj.pk else []
        if not times:
            return "— (disabled, ended or not saved yet)"
        return format_html_join(
            "", "<div>{} <small>({})</small></div>", ((t.isoformat(), t.astimezone(obj.timezone)) for t in times)
        )

    @admin.display(description="Last error")
    def last_error_message(self, obj: Schedule) -> str:
        return (obj.last_error or {}).get("message", "") if isinstance(obj.last_error, dict) else ""

    @admin.display(description="Runs")
    def runs_link(self, obj: Schedule):
        if not obj.pk:
            return "—"
        url = reverse("admin:cosmos_run_changelist") + "?" + urlencode({"caller": obj.run_caller})
        return format_html('<a href="{}">{} run(s) of this schedule</a>', url, services.runs_of(obj).count())

    @admin.action(description="Run now (a run of each selected schedule, at once)")
    def run_now(self, request, queryset):
        for schedule in queryset:
            try:
                run = services.run_now(schedule.pk, caller=f"user:{request.user.get_username()}")
            except ServiceError as exc:
                self.message_user(request, f"{schedule.pk}: {exc.message}", messages.ERROR)
                continue
            link = reverse("admin:cosmos_run_change", args=[run.pk])
            self.message_user(request, format_html('{}: started run <a href="{}">{}</a>', schedule.pk, link, run.pk))
