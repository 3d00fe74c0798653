"""The admin pages of what agents call out to: remote A2A agents and MCP servers.

Declare one and it is a tool (or a set of tools) everywhere. Validation is the model's
``clean()``; the card is read, or the server's tools listed, after the row is committed and
before a change page's transaction (both wait for the network, which must not hold one).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import models, transaction
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from cosmos.admin_forms import JSON_EDITOR_OVERRIDES
from interfaces.connectors import declared, mcp_tools
from interfaces.connectors.models import MCPServer, RemoteAgent, stdio_commands


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
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https"},
        **JSON_EDITOR_OVERRIDES,
    }  # a URL without a scheme

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


# ---------------------------------------------------------------------------------------------
# MCP servers: the change page lists the server's tools, read from it as the page opens


def _schema_summary(schema: object) -> str:
    """``a: integer (required), b: string``: what a person needs from an input schema."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "any arguments"
    required = set(schema.get("required") or ())
    parts = []
    for name, spec in schema["properties"].items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        parts.append(f"{name}: {kind}{' (required)' if name in required else ''}")
    return ", ".join(parts) or "no arguments"


def _formfield(field: models.Field, **kwargs: object) -> forms.Field | None:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # a URL typed without a scheme
    return field.formfield(**kwargs)


class MCPServerForm(forms.ModelForm):
    class Meta:
        model = MCPServer
        formfield_callback = _formfield
        fields = (
            "name",
            "description",
            "enabled",
            "transport",
            "url",
            "command",
            "connect_timeout",
            "call_timeout",
            "headers",
            "requires_approval",
            "tool_approvals",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A stdio server runs one of the commands the operator listed, chosen by name.
        choices = [("", "(none: a Streamable HTTP server)")] + [(name, name) for name in stdio_commands()]
        self.fields["command"] = forms.ChoiceField(
            choices=choices, required=False, help_text=self.fields["command"].help_text
        )


@admin.register(MCPServer)
class MCPServerAdmin(admin.ModelAdmin):
    form = MCPServerForm
    list_display = ("name", "transport", "enabled", "reachable", "tool_count", "checked_at")
    list_filter = ("enabled", "transport")
    search_fields = ("name", "description", "url", "command")
    readonly_fields = ("header_references", "live_tools", "checked_at", "check_error", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "enabled")}),
        ("Connection", {"fields": ("transport", "url", "command", "connect_timeout", "call_timeout")}),
        ("Headers", {"fields": ("headers", "header_references")}),
        ("Approvals", {"fields": ("requires_approval", "tool_approvals")}),
        ("Tools", {"fields": ("live_tools", "checked_at", "check_error")}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("check_now",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        # The name is in every agent's tool list: renaming would copy the row, not rename the tools.
        return ("name", *fields) if obj is not None else fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Read the tools live as the page opens: here, before the view's transaction begins.
        if request.method == "GET" and object_id:
            mcp_tools.check_server(unquote(object_id))
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: self._check(request, obj.pk))

    def _check(self, request, name: str) -> None:
        row = mcp_tools.check_server(name)
        if row is not None and row.check_error:
            self.message_user(request, f"{name}: the tools could not be listed: {row.check_error}", messages.WARNING)

    @admin.action(description="Check the selected servers now (list their tools)")
    def check_now(self, request, queryset):
        names = list(queryset.values_list("pk", flat=True))
        failed = [row.name for row in map(mcp_tools.check_server, names) if row is not None and row.check_error]
        level = messages.WARNING if failed else messages.SUCCESS
        note = f" Unreachable: {', '.join(failed)} (see each one's error)." if failed else ""
        self.message_user(request, f"Listed the tools of {len(names) - len(failed)} of {len(names)}.{note}", level)

    @admin.display(description="reachable")
    def reachable(self, obj: MCPServer) -> str:
        if obj.checked_at is None:
            return "not checked yet"
        return f"no: {obj.check_error[:80]}" if obj.check_error else "yes"

    @admin.display(description="tools")
    def tool_count(self, obj: MCPServer) -> int:
        return len(obj.tools_snapshot or ())

    @admin.display(description="header references")
    def header_references(self, obj: MCPServer) -> str:
        """Each header's reference and whether this process resolves it; never a value."""
        statuses = obj.header_status
        if not statuses:
            return "none"
        return format_html_join(mark_safe("<br>"), "{}: {} ({})", ((h, obj.headers[h], s) for h, s in statuses.items()))

    @admin.display(description="tools (as the server lists them)")
    def live_tools(self, obj: MCPServer) -> str:
        if obj.pk is None or obj.checked_at is None:
            return "Listed once the server is saved."
        status = (
            format_html("<strong>Unreachable</strong>: {}", obj.check_error)
            if obj.check_error
            else format_html("<strong>Reachable</strong>: {} tool(s).", len(obj.tools_snapshot or ()))
        )
        note = " The last list read:" if obj.check_error and obj.tools_snapshot else ""
        rows = format_html_join(
            "",
            "<tr><td><code>mcp:{}/{}</code></td><td>{}</td><td>{}</td></tr>",
            (
                (obj.name, tool.get("name", ""), tool.get("description", ""), _schema_summary(tool.get("inputSchema")))
                for tool in obj.tools_snapshot or ()
                if isinstance(tool, dict)
            ),
        )
        if not rows:
            return format_html("{}{}", status, note)
        table = format_html(
            "<table><thead><tr><th>tool</th><th>description</th><th>arguments</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )
        return format_html("{}{}{}", status, note, table)
