"""The live admin: actions added to the existing admin classes, and the Run page's live parts.

``install()`` adds, once, to the ModelAdmins already registered on ``admin.site``:

- on agents, stars and workflows: **Run with an input…** (an intermediate page asks for the
  input and an optional session, then starts one run per selected row);
- on runs: **Retry as new runs** (failed or cancelled top-level runs start again with the same
  input; ``metadata.retry_of`` names the original) and, if the Run admin has none,
  **Cancel the selected runs**.

The actions parse the form and call the run services; nothing else. The Run change page
(``templates/admin/cosmos/run/change_form.html``) adds the run's usage, its children, a link to
the dashboard's live view and a timeline that keeps growing over ``ws/runs/{id}/``.
"""

from __future__ import annotations

import threading
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from cosmos.kinds import kind_for_model
from cosmos.models import ACTIVE_STATUSES, Definition, Run
from cosmos.services import runs as run_services
from cosmos.services.errors import ServiceError
from cosmos.services.runs import retry_run

ORIGIN = "admin"

_lock = threading.Lock()
_installed: set[int] = set()


class RunInputForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text='Text, or a JSON object such as {"message": "..."}.',
    )
    session = forms.CharField(required=False, max_length=128, help_text="Optional: continue this session.")

    def clean_input(self) -> Any:
        return run_services.input_from_text(self.cleaned_data["input"])


def _caller(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _run_links(run_ids: list[str]) -> Any:
    return format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        ((reverse("admin:cosmos_run_change", args=[run_id]), run_id[:8]) for run_id in run_ids),
    )


@admin.action(description="Run with an input…")
def run_with_input(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
    run_kind = kind_for_model(modeladmin.model)
    if run_kind is None:
        modeladmin.message_user(request, "No run kind serves these rows.", level=messages.ERROR)
        return None
    kind = run_kind.name
    form = RunInputForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        started, failed = [], []
        for obj in queryset:
            try:
                run, _ = run_services.start_run(
                    kind,
                    str(obj.pk),
                    form.cleaned_data["input"],
                    session_id=form.cleaned_data["session"] or None,
                    origin=ORIGIN,
                    caller=_caller(request),
                )
                started.append(str(run.id))
            except ServiceError as exc:
                failed.append(f"{obj.pk}: {exc.message}")
        if started:
            modeladmin.message_user(
                request,
                format_html(
                    "Started {} run(s): {}. <a href='{}'>Watch live</a>.",
                    len(started),
                    _run_links(started),
                    reverse("dashboard:index") + f"?run={started[0]}",
                ),
                messages.SUCCESS,
            )
        for problem in failed:
            modeladmin.message_user(request, f"Not started: {problem}", messages.ERROR)
        return None  # back to the list
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Run {modeladmin.model._meta.verbose_name_plural} with an input",
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        "form": form,
        "kind": kind,
        "action_name": "run_with_input",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/cosmos/run_with_input.html", context)


@admin.action(description="Retry the selected failed or cancelled runs as new runs")
def retry_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    started, skipped = [], []
    for run_id in queryset.values_list("id", flat=True):
        try:
            started.append(str(retry_run(run_id, caller=_caller(request), origin=ORIGIN).id))
        except ServiceError as exc:
            skipped.append(f"{str(run_id)[:8]}: {exc.message}")
    if started:
        modeladmin.message_user(
            request, format_html("Retried as new run(s): {}.", _run_links(started)), messages.SUCCESS
        )
    if skipped:
        modeladmin.message_user(request, "Not retried: " + "; ".join(skipped), messages.WARNING)


@admin.action(description="Cancel the selected runs (and their children)")
def cancel_runs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    active = list(queryset.filter(status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    flagged = sum(run_services.request_cancel(run_id) for run_id in active)
    modeladmin.message_user(request, f"Cancel requested for {flagged} run(s).", messages.SUCCESS)


def _add_action(model_admin: admin.ModelAdmin, action: Any) -> None:
    names = [getattr(a, "__name__", a) for a in (model_admin.actions or ())]
    if action.__name__ not in names:
        model_admin.actions = (*(model_admin.actions or ()), action)


def install(site: admin.AdminSite = admin.site) -> None:
    """Add the live actions to the registered admin classes (idempotent, per site)."""
    # Make sure the admin modules have registered their classes, whatever the import order.
    import cosmos.admin  # noqa: F401
    import stars.admin  # noqa: F401
    import workflows.admin  # noqa: F401

    with _lock:
        if id(site) in _installed:
            return
        # Every definition's list (agents, stars, workflows); the action looks its kind up in the
        # catalogue when it is used.
        for model in list(site._registry):
            if issubclass(model, Definition) and not model._meta.abstract:
                _add_action(site.get_model_admin(model), run_with_input)
        if site.is_registered(Run):
            run_admin = site.get_model_admin(Run)
            _add_action(run_admin, retry_runs)
            if "cancel_runs" not in [getattr(a, "__name__", a) for a in (run_admin.actions or ())]:
                _add_action(run_admin, cancel_runs)
        _installed.add(id(site))
