"""Scopes: read for safe methods, run for starting/cancelling runs, admin for writes."""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


def required_scope(request, view) -> str:
    scope = getattr(view, "required_scope", None)
    if callable(scope):
        scope = scope(request)
    if scope:
        return scope
    return "read" if request.method in SAFE_METHODS else "admin"


def principal_allows(user, scope: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_staff", False) and not hasattr(user, "scopes"):
        return True  # a staff session (browsable API, dashboard)
    return hasattr(user, "has_scope") and user.has_scope(scope)


class ScopePermission(BasePermission):
    message = "This needs an API key with the right scope."

    def has_permission(self, request, view) -> bool:
        scope = required_scope(request, view)
        if not settings.ASTEROS.enable_auth:
            return True  # ASTEROS_ENABLE_AUTH off: an open, local-first install
        self.message = f"This needs an API key with the {scope!r} scope."
        return principal_allows(request.user, scope)
