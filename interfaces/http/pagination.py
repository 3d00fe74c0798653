"""Pagination: limit/offset for definitions, cursors for runs (newest first)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class ResourcePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


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
