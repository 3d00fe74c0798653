"""Scopes: ``read`` for safe methods, ``run`` for starting and cancelling runs, ``admin`` for writes.

A view (or a DRF ``@action(required_scope=...)``) may name its scope; otherwise safe methods need
``read`` and the rest ``admin``. Keys restricted to some resources (``"agents:chat-agent"``) are
checked per object through the view's ``resource_key(obj)``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission

from cosmos.kinds import all_kinds
from interfaces.edge.auth import KeyPrincipal, principal_allows, principal_sees_everything

__all__ = ["MetricsPermission", "ScopePermission", "principal_allows", "required_scope", "restrict_to_usable_runs"]


def required_scope(request, view) -> str:
    scope = getattr(view, "required_scope", None)
    if callable(scope):
        scope = scope(request)
    if scope:
        return scope
    return "read" if request.method in SAFE_METHODS else "admin"


class ScopePermission(BasePermission):
    message = "This needs an API key with the right scope."

    def has_permission(self, request, view) -> bool:
        if not settings.ASTEROS.enable_auth:
            return True  # ASTEROS_ENABLE_AUTH off: an open, local-first install
        scope = required_scope(request, view)
        self.message = f"This needs an API key with the {scope!r} scope."
        if not principal_allows(request.user, scope):
            return False
        principal = request.user
        may_use = getattr(view, "principal_may_use", None)
        if may_use is not None and isinstance(principal, KeyPrincipal) and principal.resources:
            self.message = f"This API key may not use {getattr(view, 'resource_name', 'this resource')}."
            return may_use(principal)
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        principal = request.user
        if not settings.ASTEROS.enable_auth or not isinstance(principal, KeyPrincipal) or not principal.resources:
            return True
        key = getattr(view, "resource_key", None)
        if key is None:
            return True
        resource, object_id = key(obj)
        self.message = f"This API key may not use {resource} {object_id}."
        return principal.allows_resource(resource, object_id)


class MetricsPermission(BasePermission):
    """``/metrics``: public with ASTEROS_METRICS_PUBLIC, else ``read`` with no resource limit (the
    metrics name every agent and its usage: more than a key limited to some resources may see)."""

    message = (
        "Metrics need an API key with the 'read' scope and no resource limit, or a staff session "
        "(or ASTEROS_METRICS_PUBLIC=true)."
    )

    def has_permission(self, request, view) -> bool:
        options = settings.ASTEROS
        return not options.enable_auth or options.metrics_public or principal_sees_everything(request.user, "read")


def restrict_to_usable_runs(queryset: QuerySet, principal: KeyPrincipal, run: str = "") -> QuerySet:
    """The rows of ``queryset`` whose run (``run``: the path to it, e.g. ``root_run__``) is of a
    resource the key may use: a key limited to ``agents:a`` sees the runs of agent ``a``."""
    if principal.allows_resource("runs"):
        return queryset
    allowed = Q(pk__in=[])
    for kind in all_kinds():
        ids = principal.allowed_ids(kind.collection)
        if ids is None:
            allowed |= Q(**{f"{run}kind": kind.name})
        elif ids:
            allowed |= Q(**{f"{run}kind": kind.name, f"{run}target__in": ids})
    return queryset.filter(allowed)
