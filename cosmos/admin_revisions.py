"""The admin's "History" of a definition: its revisions, a diff between any two, and a restore.

Django's History button opens ``history_view``; for definitions it shows the revisions
(cosmos.services.revisions) instead of the admin's own log, which misses saves made through the
API or code. A restore is a POST with the CSRF token, and is recorded as a new revision.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from .services import revisions
from .services.errors import ServiceError

HISTORY_LIMIT = 500


class RevisionHistoryMixin:
    """Mix into a definition's ModelAdmin, with ``revision_resource`` ("agent", "star", …)."""

    revision_resource = ""

    def _history_url(self, object_id: str) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[object_id])

    def get_urls(self) -> list:
        opts = self.model._meta
        restore = path(
            "<path:object_id>/revisions/<int:number>/restore/",
            self.admin_site.admin_view(require_POST(self.restore_revision_view)),
            name=f"{opts.app_label}_{opts.model_name}_restore_revision",
        )
        return [restore, *super().get_urls()]

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        listed = list(revisions.list_revisions(self.revision_resource, str(obj.pk))[:HISTORY_LIMIT])
        first, second = request.GET.get("from"), request.GET.get("to")
        if (first is None or second is None) and len(listed) >= 2:
            first, second = listed[1].number, listed[0].number  # what the last save changed
        comparison, problem = None, None
        if first is not None and second is not None:
            try:
                comparison = revisions.compare(self.revision_resource, str(obj.pk), first, second)
            except ServiceError as exc:
                problem = exc.message
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {obj}",
            "subtitle": None,
            "opts": self.model._meta,
            "object": obj,
            "revisions": listed,
            "comparison": comparison,
            "problem": problem,
            "can_restore": self.has_change_permission(request, obj),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/revisions.html", context)

    def restore_revision_view(self, request, object_id, number: int):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        try:
            restored = revisions.restore(
                self.revision_resource, str(obj.pk), number, author=f"user:{request.user.get_username()}"
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Revision {number} restored as revision {restored.number}.")
        return HttpResponseRedirect(self._history_url(object_id))
