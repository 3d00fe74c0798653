"""The admin site's names, and API keys: created here, shown once, stored hashed, revocable,
with their quotas (editable) and current usage (read-only)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.functional import lazy

from cosmos.models import PRICE_CURRENCY
from interfaces.keys import quotas
from interfaces.keys.models import SCOPES, APIKey

# The one place the admin is named after the instance; lazy so it follows settings.ASTEROS.
admin.site.site_header = lazy(lambda: settings.ASTEROS.name, str)()
admin.site.site_title = lazy(lambda: f"{settings.ASTEROS.name} admin", str)()
admin.site.index_title = lazy(lambda: f"Control plane ({settings.ASTEROS.mode} mode)", str)()


LIMIT_FIELDS = ("requests_per_minute", "max_concurrent_runs", "tokens_per_day", "cost_per_day")


class APIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="admin implies run, run implies read.",
    )

    class Meta:
        model = APIKey
        fields = ("name", "scopes", "resources", "revoked", *LIMIT_FIELDS)

    def clean_resources(self):
        resources = self.cleaned_data.get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, str) and ":" in r for r in resources):
            raise forms.ValidationError('Resources must be a JSON list like ["agents:chat-agent", "stars:chat-team"].')
        return resources


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    form = APIKeyForm
    list_display = (
        "name",
        "prefix",
        "scope_list",
        "revoked",
        "last_used_at",
        "requests_this_minute",
        "active_runs",
        "tokens_today",
        "cost_today",
    )
    list_filter = ("revoked",)
    search_fields = ("name", "=prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at", "usage")
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:  # a new key is not revoked, and has no prefix until generated
            return ("name", "scopes", "resources", *LIMIT_FIELDS)
        return (
            "name",
            "prefix",
            "scopes",
            "resources",
            "revoked",
            *LIMIT_FIELDS,
            "usage",
            "created_at",
            "last_used_at",
        )

    def get_queryset(self, request):
        return quotas.with_usage(super().get_queryset(request))

    @staticmethod
    def _of(used: object, limit: object) -> str:
        shown = "?" if used is None else str(used)
        return shown if limit is None else f"{shown} / {limit}"

    @admin.display(description="requests this minute")
    def requests_this_minute(self, obj: APIKey) -> str:
        window = quotas.request_windows().peek(obj.prefix)
        return self._of(None if window is None else window.count, obj.requests_per_minute)

    @admin.display(description="active runs", ordering="active_run_count")
    def active_runs(self, obj: APIKey) -> str:
        return self._of(obj.active_run_count, obj.max_concurrent_runs)

    @admin.display(description="tokens today (UTC)", ordering="tokens_today_count")
    def tokens_today(self, obj: APIKey) -> str:
        return self._of(obj.tokens_today_count, obj.tokens_per_day)

    @admin.display(description="cost today (UTC)", ordering="cost_today_amount")
    def cost_today(self, obj: APIKey) -> str:
        return self._of(f"{obj.cost_today_amount:.4f} {PRICE_CURRENCY}", obj.cost_per_day)

    @admin.display(description="usage now")
    def usage(self, obj: APIKey) -> str:
        rows = quotas.key_usage(obj)
        names = {
            quotas.REQUESTS_PER_MINUTE: "requests this minute",
            quotas.CONCURRENT_RUNS: "active runs",
            quotas.TOKENS_PER_DAY: "tokens today (UTC)",
            quotas.COST_PER_DAY: f"cost today (UTC, {PRICE_CURRENCY})",
        }
        return "; ".join(f"{names[quota]}: {self._of(row['used'], row['limit'])}" for quota, row in rows.items())

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        limits = {name: getattr(obj, name) for name in LIMIT_FIELDS}
        key, raw = APIKey.generate(obj.name, list(obj.scopes), obj.resources, **limits)
        obj.pk = key.pk
        obj.refresh_from_db()
        messages.warning(request, f"The new API key is {raw} - copy it now: it is stored hashed and never shown again.")

    @admin.display(description="scopes")
    def scope_list(self, obj: APIKey) -> str:
        return ", ".join(obj.scopes)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
