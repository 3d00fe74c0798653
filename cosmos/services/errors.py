"""Service errors. Each carries a stable code and maps to one HTTP status at the edges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class Invalid(ServiceError):
    status = 400
    code = "invalid"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class NotRunnable(ServiceError):
    status = 422
    code = "not_runnable"


class NotImplementedYet(ServiceError):
    status = 501
    code = "not_implemented"


def is_unique_violation(exc: IntegrityError) -> bool:
    """A unique constraint refused the write (PostgreSQL's SQLSTATE 23505, SQLite's message)."""
    return getattr(exc.__cause__, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(exc)


@contextmanager
def conflict_on_integrity(duplicate_message: str, *, details: Any = None) -> Iterator[None]:
    """A write that a constraint refuses is a 409, never a 500.

    The one place where a create (or an update) racing another write becomes an answer: two
    concurrent creates of one id both pass any "does it exist?" check, and the database's unique
    constraint decides. Code ``already_exists`` (with ``duplicate_message``) for a unique
    constraint, ``conflict`` for the others (e.g. a row it refers to was deleted meanwhile).
    It opens no transaction (``on_commit`` callbacks of the write keep their timing): inside an
    ``atomic`` block, the Conflict leaves it, which rolls it back.
    """
    try:
        yield
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict(duplicate_message, code="already_exists", details=details) from None
        raise Conflict("The write conflicts with a concurrent change; try again.", details=details) from None
