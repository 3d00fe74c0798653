"""Pagination: limit/offset for definitions, cursors for runs (newest first).

What a client sends is checked here, before it reaches a query: ``offset`` and ``limit`` are
bounded whole numbers (``interfaces.edge.params``), and a cursor is decoded defensively (a
truncated or edited one is a 400, never a bad value in a ``WHERE``).
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework.pagination import CursorPagination, LimitOffsetPagination

from cosmos.services.errors import Invalid
from interfaces.edge.params import MAX_OFFSET, whole_number


class ResourcePagination(LimitOffsetPagination):
    """Limit/offset pages; the last page is counted from its rows, without a ``COUNT`` query."""

    default_limit = 50
    max_limit = 500

    def get_offset(self, request):
        raw = request.query_params.get(self.offset_query_param)
        return whole_number(raw, self.offset_query_param, default=0, high=MAX_OFFSET)

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

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model  # decode_cursor checks the position against its field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """DRF's decoding, then the position checked as a value of the ordering field: a cursor
        that is not one this API gave out is a 400 (``invalid_cursor``)."""
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            cursor = super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound; base64 and parse errors are ValueErrors
            raise invalid_cursor(encoded) from exc
        if cursor is None or cursor.position is None:
            return cursor
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
            field.to_python(cursor.position)
        except (FieldDoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
            raise invalid_cursor(encoded) from None
        return cursor


def invalid_cursor(encoded: str | None) -> Invalid:
    return Invalid(
        "The cursor is not one this API gave out; start again from the first page.",
        code="invalid_cursor",
        details={"cursor": encoded},
    )


def cursor_pagination(ordering: str) -> type[CursorPagination]:
    """A cursor paginator ordered by ``ordering`` (a unique-enough, immutable field)."""
    if ordering == RunCursorPagination.ordering:
        return RunCursorPagination
    return type("ResourceCursorPagination", (RunCursorPagination,), {"ordering": ordering})
