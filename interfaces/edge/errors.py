"""Errors, classified once and rendered by each door: ``classify`` and the one error shape.

``classify(exc)`` turns anything a request can raise into a ``Refusal``: HTTP status, stable
error code, message, details and headers (``Retry-After``, ``WWW-Authenticate``). It knows
``ServiceError`` (quota refusals included), ``AccessDenied``, database outages (503), integrity
races (409), DRF's and Django's exceptions (parse errors, validation), a door's own protocol
errors (``DoorError``: A2A's) and anything unexpected (logged, 500, nothing of it shown).

Each door only renders a ``Refusal`` in its wire shape: REST and AG-UI the one error shape
``{"error": {"code", "message", "details"}}`` (``refusal_response``; DRF through
``exception_handler``, set in ``REST_FRAMEWORK``), A2A a ``google.rpc.Status`` or a JSON-RPC
error, websockets an error frame and a close code. Errors Django answers itself (404, 405, 413,
500 outside any view) are rewritten into the one shape by
``interfaces.edge.middleware.RequestContextMiddleware`` and the root URLconf's handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from cosmos.services.errors import Conflict, ServiceError
from interfaces.edge.auth import AccessDenied

logger = logging.getLogger(__name__)

DRF_CODES: dict[type[Exception], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
}

# Codes for statuses Django produces outside DRF.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is not valid."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You may not do this."),
    404: ("not_found", "Nothing is here."),
    405: ("method_not_allowed", "This method is not allowed here."),
    406: ("not_acceptable", "No acceptable representation for the Accept header."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    500: ("internal_error", "Something went wrong on our side; it has been logged."),
    501: ("not_implemented", "This is not implemented."),
    503: ("unavailable", "The service is unavailable."),
}

AUTHENTICATE_HEADER = 'Bearer realm="asteros"'


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    code: str, message: str, status_code: int, details: Any = None, headers: dict[str, str] | None = None
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status_code, headers=headers)
    if status_code == 401:
        response["WWW-Authenticate"] = AUTHENTICATE_HEADER
    return response


# A database that cannot be reached (restarting, a network cut) or refuses for a moment (no
# connection free in the pool, a deadlock): the client should retry soon; it is not our bug.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE = "The database cannot be reached right now; try again in a few seconds."
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable_response() -> JsonResponse:
    """The 503 for a database error outside DRF (``RequestContextMiddleware.process_exception``)."""
    return error_response(
        "unavailable", DATABASE_UNAVAILABLE, 503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    )


def status_error_response(status_code: int, message: str | None = None, details: Any = None) -> JsonResponse:
    """The error shape for a bare HTTP status (used for Django's own 404/405/413/500)."""
    code, default = STATUS_CODES.get(status_code, ("error", "The request failed."))
    return error_response(code, message or default, status_code, details)


# Errors the edge answers before any view runs (a body over the limit, a bad Content-Length):
# each door whose protocol has its own error shape (A2A) registers a renderer for its paths.
EdgeRenderer = Callable[[HttpRequest, "Refusal"], HttpResponse | None]
_edge_renderers: list[EdgeRenderer] = []


def register_edge_renderer(renderer: EdgeRenderer) -> None:
    """``renderer(request, refusal)`` answers for the paths of its door (None for the others)."""
    if renderer not in _edge_renderers:
        _edge_renderers.append(renderer)


def edge_error_response(request: HttpRequest, status_code: int, code: str, message: str, details: Any = None):
    """An edge error in the shape of the door the request is for (the one error shape otherwise)."""
    refusal = Refusal(status_code, code, message, details, refusal_headers(status_code))
    for renderer in _edge_renderers:
        response = renderer(request, refusal)
        if response is not None:
            return response
    return refusal_response(refusal)


def payload_too_large(request: HttpRequest, limit: int):
    return edge_error_response(
        request,
        413,
        "payload_too_large",
        f"The request body is larger than the limit of {limit} bytes (ASTEROS_MAX_BODY_BYTES).",
        {"limit_bytes": limit},
    )


def _parse_message(exc: exceptions.ParseError) -> tuple[str, str]:
    detail = str(exc.detail)
    if detail.startswith("JSON parse error"):
        reason = detail.split(" - ", 1)[-1]
        return "malformed_json", f"The request body is not valid JSON: {reason}"
    return "malformed_request", f"The request body could not be parsed: {detail}"


# --- classification: every exception, once, for every door

INTERNAL_ERROR = STATUS_CODES[500][1]


@dataclass(frozen=True)
class Refusal:
    """What went wrong, independent of any wire shape."""

    status: int
    code: str
    message: str
    details: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # What was raised: a door whose protocol says more than status and code (A2A) reads it.
    error: BaseException | None = None
    unexpected: bool = False  # a bug or an outage of ours: a 500 that shows nothing of it


class MethodNotAllowed(ServiceError):
    """405 with ``Allow``: the method is not one the view answers."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, allowed: tuple[str, ...], message: str | None = None) -> None:
        self.allow = ", ".join(allowed)
        super().__init__(message or f"Use {self.allow}.")


class DoorError(Exception):
    """An error raised in a door's own protocol terms (A2A's errors): it classifies itself."""

    def refusal(self) -> Refusal:
        raise NotImplementedError


def refusal_headers(status_code: int, retry_after: Any = None) -> dict[str, str]:
    """``Retry-After`` for an error that says when to retry (a quota), ``WWW-Authenticate`` for 401s."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status_code == 401:
        headers["WWW-Authenticate"] = AUTHENTICATE_HEADER
    return headers


def _api_exception_refusal(exc: exceptions.APIException) -> Refusal:
    """DRF's exceptions (raised by the REST door: parsing, validation, its auth classes)."""
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    details = None
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is not valid."
        details = exc.detail if isinstance(exc.detail, list | dict) else [exc.detail]
    elif isinstance(exc, exceptions.ParseError):
        code, message = _parse_message(exc)
    else:
        message = str(exc.detail)
    wait = getattr(exc, "wait", None)  # Throttled: whole seconds, as DRF's own handler says it
    headers = refusal_headers(exc.status_code, int(wait) if wait else None)
    return Refusal(exc.status_code, code, message, details, headers, error=exc)


def classify(exc: BaseException, *, log: bool = True) -> Refusal:
    """The one classification of an exception met while serving a request.

    ``log``: an unexpected exception is logged with its traceback here, unless the caller lets
    it propagate to Django, which logs it itself (the REST door).
    """
    if isinstance(exc, DoorError):
        return exc.refusal()
    if isinstance(exc, AccessDenied):
        return Refusal(exc.status, exc.code, exc.message, exc.details, refusal_headers(exc.status), error=exc)
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return Refusal(503, "unavailable", DATABASE_UNAVAILABLE, headers=headers, error=exc)
    if isinstance(exc, IntegrityError):
        # A write a concurrent one beat, where no service turned it into a Conflict: still a 409.
        exc = Conflict("The write conflicts with a concurrent change; try again.")
    if isinstance(exc, ServiceError):  # QuotaExceeded too (it is also a DRF APIException)
        headers = refusal_headers(exc.status, getattr(exc, "retry_after", None))
        if isinstance(exc, MethodNotAllowed):
            headers["Allow"] = exc.allow
        return Refusal(exc.status, exc.code, exc.message, exc.details, headers, error=exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, exceptions.APIException):
        return _api_exception_refusal(exc)
    if log:
        logger.error("request failed: %s", exc.__class__.__name__, exc_info=exc)
    return Refusal(500, "internal_error", INTERNAL_ERROR, error=exc, unexpected=True)


def refusal_response(refusal: Refusal) -> JsonResponse:
    """A refusal in the one error shape (the AG-UI door, and views outside DRF)."""
    return error_response(refusal.code, refusal.message, refusal.status, refusal.details, dict(refusal.headers))


def exception_handler(exc, context):
    """DRF's exception handler (the REST door): the classification, in the one error shape."""
    refusal = classify(exc, log=False)
    if refusal.unexpected:
        return None  # a 500: Django logs it and its handler500 renders the same shape
    if isinstance(refusal.error, exceptions.APIException) and not isinstance(refusal.error, ServiceError):
        set_rollback()  # as DRF's own handler does for the exceptions it handles
    return Response(
        error_body(refusal.code, refusal.message, refusal.details), status=refusal.status, headers=refusal.headers
    )
