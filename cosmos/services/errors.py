"""Service errors. Each carries a stable code and maps to one HTTP status at the edges."""

from __future__ import annotations

from typing import Any


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
