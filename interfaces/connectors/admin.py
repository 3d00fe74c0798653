"""The admin page of remote A2A agents: declare one by its URL, and it is a tool everywhere.

Validation is the model's ``clean()``; the card is read after the row is committed (it waits
for the network, which must not hold a database transaction).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models, transaction

from interfaces.connectors import declared
from interfaces.connectors.models import RemoteAgent


@admin.register(RemoteAgent)
class RemoteAgentAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "enabled", "token", "card", "updated_at")
    list_filter = ("enabled", "binding")
    search_fields = ("name", "url", "description", "card_name", "card_description")
    readonly_fields = (
        "token_status",
        "card_name",
        "card_description",
        "card_checked_at",
        "card_error",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "url", "description", "enabled")}),
        ("Authentication", {"fields": ("auth_secret", "token_status", "auth_header")}),
        ("Calls", {"fields": ("binding", "timeout")}),
        ("Card", {"fields": ("card_name", "card_description", "card_checked_at", "card_error")}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("read_cards",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a URL without a scheme

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # The name is what agents list: renaming would copy the row, not rename the tool.
        return ("name", *fields) if obj is not None else fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: self._read_card(request, obj.pk))

    def _read_card(self, request, name: str) -> None:
        row = declared.read_card(name)
        if row is not None and row.card_error:
            self.message_user(request, f"{name}: the card could not be read: {row.card_error}", messages.WARNING)

    @admin.action(description="Read the selected agents' cards again")
    def read_cards(self, request, queryset):
        names = list(queryset.values_list("pk", flat=True))
        failed = [row.name for row in map(declared.read_card, names) if row is not None and row.card_error]
        level = messages.WARNING if failed else messages.SUCCESS
        note = f" Not readable: {', '.join(failed)} (see each one's card error)." if failed else ""
        self.message_user(request, f"Read {len(names) - len(failed)} of {len(names)} card(s).{note}", level)

    @admin.display(description="token")
    def token(self, obj: RemoteAgent) -> str:
        if not obj.auth_secret:
            return "none"
        # Whether this process resolves it; the value itself is never shown.
        return f"{obj.auth_secret} ({obj.auth_secret_status})"

    @admin.display(description="token status")
    def token_status(self, obj: RemoteAgent) -> str:
        """Whether this process resolves the reference (set / not set / refused); never the value."""
        return obj.auth_secret_status

    @admin.display(description="card")
    def card(self, obj: RemoteAgent) -> str:
        if obj.card_checked_at is None:
            return "not read yet"
        return f"error: {obj.card_error[:80]}" if obj.card_error else (obj.card_name or "read")
