"""The admin site's names, and API keys: created here, shown once, stored hashed, revocable."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.functional import lazy

from .models import SCOPES, APIKey

# The one place the admin is named after the instance; lazy so it follows settings.ASTEROS.
admin.site.site_header = lazy(lambda: settings.ASTEROS.name, str)()
admin.site.site_title = lazy(lambda: f"{settings.ASTEROS.name} admin", str)()
admin.site.index_title = lazy(lambda: f"Control plane ({settings.ASTEROS.mode} mode)", str)()


class APIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="admin implies run, run implies read.",
    )

    class Meta:
        model = APIKey
        fields = ("name", "scopes", "resources", "revoked")

    def clean_resources(self):
        resources = self.cleaned_data.get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, str) and ":" in r for r in resources):
            raise forms.ValidationError('Resources must be a JSON list like ["agents:chat-agent", "stars:chat-team"].')
        return resources


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    form = APIKeyForm
    list_display = ("name", "prefix", "scope_list", "revoked", "created_at", "last_used_at")
    list_filter = ("revoked",)
    search_fields = ("name", "=prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ("revoke",)

    def get_fields(self, request, obj=None):
        if obj is None:  # a new key is not revoked, and has no prefix until generated
            return ("name", "scopes", "resources")
        return ("name", "prefix", "scopes", "resources", "revoked", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = APIKey.generate(obj.name, list(obj.scopes), obj.resources)
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
