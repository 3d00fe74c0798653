"""Webhooks in the admin: subscriptions (the secret shown once), the delivery log, A2A push configs.

The delivery log is read-only: the runtime writes it. An operator redelivers (the same
``webhook-id``), sends a test ping, or rotates a subscription's secret; the secret is shown in
a message once, right after it is made, and never on a page again.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from cosmos.formatting import format_duration

from . import deliveries as delivery_services
from . import services
from .models import SUBSCRIBABLE, Delivery, DeliveryAttempt, PushConfig, Webhook

SECRET_NOTICE = "The signing secret of {name}: {secret} — copy it now, it is not shown again."


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",  # a URL written without a scheme
        help_text=Webhook._meta.get_field("url").help_text,
    )
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in SUBSCRIBABLE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = Webhook
        fields = ("name", "url", "events", "resource_kind", "resource_id", "enabled")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ("name", "url", "enabled", "event_list", "resource", "deliveries_link", "created_at")
    list_filter = ("enabled", "resource_kind")
    search_fields = ("name", "url", "resource_id")
    readonly_fields = ("caller", "deliveries_link", "created_at", "updated_at")
    actions = ("rotate_secrets", "send_tests")

    def get_fields(self, request, obj=None):
        fields = list(WebhookForm.Meta.fields)
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description="events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events) or "all"

    @admin.display(description="resource")
    def resource(self, obj: Webhook) -> str:
        return f"{obj.resource_kind or 'any'}:{obj.resource_id or '*'}"

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: Webhook) -> str:
        url = reverse("admin:webhooks_delivery_changelist") + f"?webhook__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, "Delivery log")

    def save_model(self, request: HttpRequest, obj: Webhook, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        fields = {name: form.cleaned_data[name] for name in WebhookForm.Meta.fields}
        created = services.create_webhook(caller=f"user:{request.user.get_username()}", **fields)
        obj.pk, obj.secret, obj.created_at = created.pk, created.secret, created.created_at
        self.message_user(request, SECRET_NOTICE.format(name=created.name, secret=created.secret), messages.WARNING)

    @admin.action(description="Rotate the secrets of the selected webhooks (shown once)")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> None:
        for webhook in queryset:
            services.rotate_secret(webhook)
            self.message_user(request, SECRET_NOTICE.format(name=webhook.name, secret=webhook.secret), messages.WARNING)

    @admin.action(description="Send a test event to the selected webhooks")
    def send_tests(self, request: HttpRequest, queryset: QuerySet) -> None:
        for webhook in queryset:
            services.send_test(webhook)
        self.message_user(request, f"Queued {queryset.count()} test event(s); see the delivery log.")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "status_code", "latency", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="latency")
    def latency(self, obj: DeliveryAttempt) -> str:
        return format_duration(None if obj.latency_ms is None else obj.latency_ms / 1000)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event",
        "receiver",
        "run_link",
        "status",
        "attempts",
        "last_status_code",
        "last_latency",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "event", "webhook")
    search_fields = ("message_id", "run__id")
    list_select_related = ("webhook", "push_config")
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)
    fields = (
        "message_id",
        "event",
        "receiver",
        "run_link",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "last_latency",
        "created_at",
        "delivered_at",
        "payload",
    )
    readonly_fields = fields

    @admin.display(description="latency", ordering="last_latency_ms")
    def last_latency(self, obj: Delivery) -> str:
        return format_duration(None if obj.last_latency_ms is None else obj.last_latency_ms / 1000)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="receiver")
    def receiver(self, obj: Delivery) -> str:
        if obj.webhook_id is not None:
            url = reverse("admin:webhooks_webhook_change", args=[obj.webhook_id])
            return format_html('<a href="{}">{}</a>', url, str(obj.webhook))
        return f"A2A push {obj.push_config}"

    @admin.display(description="run")
    def run_link(self, obj: Delivery) -> str:
        if obj.run_id is None:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:cosmos_run_change", args=[obj.run_id]), obj.run_id)

    @admin.action(description="Redeliver the selected deliveries (same webhook-id)")
    def redeliver(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for delivery in queryset:
            delivery_services.redeliver(delivery)
            count += 1
        self.message_user(request, f"Queued {count} delivery(ies) again.")


@admin.register(PushConfig)
class PushConfigAdmin(admin.ModelAdmin):
    list_display = ("run", "config_id", "url", "caller", "created_at")
    search_fields = ("config_id", "url", "run__id")
    fields = ("run", "config_id", "url", "caller", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
