"""One error shape everywhere: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cosmos.services.errors import ServiceError

DRF_CODES = {
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


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(code: str, message: str, status_code: int, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler500 renders the same shape
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message, details = "The request is not valid.", response.data
    elif isinstance(exc, exceptions.ParseError):
        message, details = f"Malformed request body: {exc.detail}", None
    else:
        message, details = str(getattr(exc, "detail", exc)), None
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="asteros"'
    response.data = error_body(code, message, details)
    return response
