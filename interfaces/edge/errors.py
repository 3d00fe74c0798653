"""One error shape everywhere: ``{"error": {"code", "message", "details"}}``.

DRF errors go through ``exception_handler`` (set in ``REST_FRAMEWORK``); errors Django answers
itself (404, 405, 413, 500 outside DRF) are rewritten into the same shape by
``interfaces.edge.middleware.RequestContextMiddleware`` and the root URLconf's handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cosmos.services.errors import Conflict, ServiceError

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


def service_error_headers(exc: Exception) -> dict[str, str]:
    """``Retry-After`` for an error that says when to retry (a quota), ``WWW-Authenticate`` for 401s."""
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if getattr(exc, "status", None) == 401:
        headers["WWW-Authenticate"] = AUTHENTICATE_HEADER
    return headers


def service_error_response(exc: ServiceError) -> JsonResponse:
    """A ServiceError outside DRF (AG-UI), in the one error shape with its headers."""
    return error_response(exc.code, exc.message, exc.status, exc.details, service_error_headers(exc))


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
EdgeRenderer = Callable[[HttpRequest, int, str, str, Any], HttpResponse | None]
_edge_renderers: list[EdgeRenderer] = []


def register_edge_renderer(renderer: EdgeRenderer) -> None:
    """``renderer(request, status, code, message, details)`` answers for the paths of its door
    (None for the others)."""
    if renderer not in _edge_renderers:
        _edge_renderers.append(renderer)


def edge_error_response(request: HttpRequest, status_code: int, code: str, message: str, details: Any = None):
    """An edge error in the shape of the door the request is for (the one error shape otherwise)."""
    for renderer in _edge_renderers:
        response = renderer(request, status_code, code, message, details)
        if response is not None:
            return response
    return error_response(code, message, status_code, details)


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


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return Response(error_body("unavailable", DATABASE_UNAVAILABLE), status=503, headers=headers)
    if isinstance(exc, IntegrityError):
        # A write a concurrent one beat, where no service turned it into a Conflict: still a 409.
        exc = Conflict("The write conflicts with a concurrent change; try again.")
    if isinstance(exc, ServiceError):
        return Response(
            error_body(exc.code, exc.message, exc.details), status=exc.status, headers=service_error_headers(exc)
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler500 (or the middleware) renders the same shape
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    details = None
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is not valid.", response.data
    elif isinstance(exc, exceptions.ParseError):
        code, message = _parse_message(exc)
    else:
        message = str(getattr(exc, "detail", exc))
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = AUTHENTICATE_HEADER
    response.data = error_body(code, message, details)
    return response
