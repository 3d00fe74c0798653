"""Pagination: limit/offset for definitions, cursors for runs (newest first)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class ResourcePagination(LimitOffsetPagination):
    """Limit/offset pages; the last page is counted from its rows, without a ``COUNT`` query."""

    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.offset = self.get_offset(request)
        rows = list(queryset[self.offset : self.offset + self.limit])
        if len(rows) < self.limit and (rows or self.offset == 0):
            # A short page is the last one: nothing lies past it (most lists fit one page).
            self.count = self.offset + len(rows)
        else:
            self.count = self.get_count(queryset)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return rows


class RunCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


def cursor_pagination(ordering: str) -> type[CursorPagination]:
    """A cursor paginator ordered by ``ordering`` (a unique-enough, immutable field)."""
    if ordering == RunCursorPagination.ordering:
        return RunCursorPagination
    return type("ResourceCursorPagination", (RunCursorPagination,), {"ordering": ordering})
