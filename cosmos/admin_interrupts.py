"""The approvals queue: interrupts waiting for a person, pending first, oldest first.

Reviewers approve or reject the selected rows from the list, or open one interrupt's resolve
page (``<id>/resolve/``) to edit a tool call's arguments, answer a question or leave a message.
Every decision goes through ``cosmos.services.interrupts.resolve``, which validates it and
queues the run again; the rows themselves are never edited here. It takes a staff user with the
change permission on interrupts. The Run page lists its run's interrupts (``InterruptInline``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .models import Interrupt, InterruptKind, InterruptStatus
from .runtime.interrupts import ANSWER, APPROVE, DECISIONS, EDIT, REJECT
from .services import interrupts as interrupt_services
from .services.errors import Conflict, Invalid, NotFound, ServiceError

DECISION_LABELS = {
    APPROVE: "Approve the call as asked",
    EDIT: "Approve with the arguments below",
    REJECT: "Reject",
    ANSWER: "Answer",
}
INTERRUPT_FIELDS = (
    "id",
    "kind",
    "run",
    "root_run",
    "request",
    "status",
    "decision",
    "response",
    "resolved_by",
    "on_timeout",
    "expires_at",
    "created_at",
    "resolved_at",
)


def reviewer(request: HttpRequest) -> str:
    return request.user.get_username()


class ResolveForm(forms.Form):
    """One decision; the service checks it against the interrupt (kind, arguments, schema)."""

    decision = forms.ChoiceField(widget=forms.RadioSelect)
    arguments = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "class": "vLargeTextField"}),
        help_text="For an edited approval: the JSON object to run the tool with.",
    )
    answer = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="For a question: the answer (JSON when the question's schema asks for more than text).",
    )
    message = forms.CharField(
        required=False, max_length=2000, help_text="Optional: why, for the model (a rejection's reason)."
    )

    def __init__(self, *args: Any, interrupt: Interrupt, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interrupt = interrupt
        # Reject last: the decisions that let the call run (or answer) come first.
        allowed = sorted(DECISIONS.get(interrupt.kind, ()), key=lambda d: d == REJECT)
        choices = [(d, DECISION_LABELS[d]) for d in allowed]
        self.fields["decision"].choices = choices
        if choices:
            self.fields["decision"].initial = choices[0][0]
        if interrupt.kind == InterruptKind.APPROVAL:
            self.fields["arguments"].initial = (interrupt.request or {}).get("arguments")
            del self.fields["answer"]
        else:
            del self.fields["arguments"]

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        decision = data["decision"]
        answer_text = data.get("answer") or ""
        return {
            "arguments": data.get("arguments") if decision == EDIT else None,
            "answer": interrupt_services.answer_from_text(self.interrupt, answer_text)
            if decision == ANSWER and answer_text != ""
            else None,
            "message": data.get("message") or "",
        }


class InterruptInline(admin.TabularInline):
    """A run's interrupts on its page, read-only."""

    model = Interrupt
    fk_name = "run"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("kind", "what", "status", "decision", "resolved_by", "created_at", "expires_at", "resolved_at")
    readonly_fields = fields
    ordering = ("created_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="tool call or question")
    def what(self, obj: Interrupt) -> str:
        return interrupt_services.subject(obj)


def _resolve_selected(modeladmin: InterruptAdmin, request: HttpRequest, queryset: QuerySet, decision: str) -> None:
    """One decision for each selected row; what was resolved first is reported, never raised."""
    resolved, refused = 0, []
    for interrupt in queryset.order_by("created_at"):
        try:
            interrupt_services.resolve(interrupt.id, decision, resolved_by=reviewer(request))
            resolved += 1
        except ServiceError as exc:  # resolved meanwhile, or a question (it cannot be approved)
            refused.append(f"{str(interrupt.id)[:8]}: {exc.message}")
    done = "approved" if decision == APPROVE else "rejected"
    modeladmin.message_user(request, f"{resolved} interrupt(s) {done}.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "Not resolved: " + "; ".join(refused), messages.WARNING)


@admin.register(Interrupt)
class InterruptAdmin(admin.ModelAdmin):
    list_display = ("short_id", "kind", "run_link", "what", "status", "expires_at", "resolved_by", "resolve_link")
    list_filter = ("status", "kind")
    search_fields = ("=id", "=run__id", "=root_run__id", "resolved_by")
    list_select_related = ("run",)
    readonly_fields = INTERRUPT_FIELDS
    fields = INTERRUPT_FIELDS
    actions = ("approve_selected", "reject_selected")
    change_form_template = "admin/cosmos/interrupt/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        waiting = Case(
            When(status=InterruptStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        # Annotated before it is ordered by the annotation (ModelAdmin's own would order first).
        return Interrupt.objects.annotate(waiting_last=waiting).order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # Pending first, then the oldest: the queue's head is what waited longest.
        return ("waiting_last", "created_at")

    # Rows are written by the runtime and the resolve service only.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        return None

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None):
        extra = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list:
        # Before the default ones: ``<path:object_id>/`` would take ``<id>/resolve/`` too.
        resolve = path(
            "<path:object_id>/resolve/",
            self.admin_site.admin_view(self.resolve_view),
            name="cosmos_interrupt_resolve",
        )
        return [resolve, *super().get_urls()]

    # --- columns

    @admin.display(description="interrupt", ordering="created_at")
    def short_id(self, obj: Interrupt) -> str:
        return str(obj.id)[:8]

    @admin.display(description="run", ordering="run")
    def run_link(self, obj: Interrupt) -> str:
        url = reverse("admin:cosmos_run_change", args=[obj.run_id])
        return format_html('<a href="{}">{}</a> {}:{}', url, str(obj.run_id)[:8], obj.run.kind, obj.run.target)

    @admin.display(description="tool call or question")
    def what(self, obj: Interrupt) -> str:
        return interrupt_services.subject(obj)

    @admin.display(description="")
    def resolve_link(self, obj: Interrupt) -> str:
        if obj.status != InterruptStatus.PENDING:
            return ""
        url = reverse("admin:cosmos_interrupt_resolve", args=[obj.pk])
        return format_html('<a href="{}" class="asteros-resolve">Resolve…</a>', url)

    # --- actions

    @admin.action(description="Approve the selected interrupts", permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        _resolve_selected(self, request, queryset, APPROVE)

    @admin.action(description="Reject the selected interrupts", permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        _resolve_selected(self, request, queryset, REJECT)

    # --- one interrupt: edit and approve, answer, or reject with a message

    def resolve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        try:
            interrupt = interrupt_services.get_interrupt(object_id)
        except NotFound as exc:
            self.message_user(request, exc.message, messages.WARNING)
            return HttpResponseRedirect(reverse("admin:cosmos_interrupt_changelist"))
        if not self.has_change_permission(request, interrupt):
            raise PermissionDenied
        change_url = reverse("admin:cosmos_interrupt_change", args=[interrupt.pk])
        if interrupt.status != InterruptStatus.PENDING:
            self.message_user(request, f"Interrupt {interrupt.id} is already {interrupt.status}.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        form = ResolveForm(request.POST if request.method == "POST" else None, interrupt=interrupt)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    resolved = interrupt_services.resolve(
                        interrupt.id,
                        form.cleaned_data["decision"],
                        resolved_by=reviewer(request),
                        **form.service_arguments(),
                    )
                except Invalid as exc:
                    form.add_error(None, exc.message)
                except Conflict as exc:  # another reviewer, the timeout or a cancel came first
                    self.message_user(request, exc.message, messages.WARNING)
                    return HttpResponseRedirect(change_url)
                else:
                    self.message_user(request, f"Interrupt {str(resolved.id)[:8]} {resolved.status}.", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:cosmos_interrupt_changelist"))
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resolve {interrupt.kind} {str(interrupt.id)[:8]}",
            "opts": self.model._meta,
            "original": interrupt,
            "interrupt": interrupt,
            "request_json": json.dumps(interrupt.request, indent=2, ensure_ascii=False),
            "subject": interrupt_services.subject(interrupt),
            "form": form,
            "change_url": change_url,
            "run_url": reverse("admin:cosmos_run_change", args=[interrupt.run_id]),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/cosmos/interrupt/resolve.html", context, status=status)
