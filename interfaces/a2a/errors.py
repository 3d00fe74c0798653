"""A2A errors and how each binding renders them (A2A 1.0, sections 3.3.2, 5.4, 9.5 and 11.6).

Every error carries its JSON-RPC code, HTTP status, gRPC status name and ``google.rpc.ErrorInfo``
reason. JSON-RPC answers ``{"jsonrpc", "id", "error": {"code", "message", "data": [ErrorInfo]}}``;
HTTP+JSON answers the ``google.rpc.Status`` JSON ``{"error": {"code", "status", "message",
"details": [ErrorInfo]}}`` with the HTTP status. A2A-specific errors use the domain
``a2a-protocol.org``; authentication errors are ours (domain ``asteros``).

An ``A2AError`` classifies itself for the shared edge (``DoorError.refusal``); ``a2a_error``
renders any classified error (``interfaces.edge.errors.classify``) as the A2A error a client
understands.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from interfaces.edge.errors import DoorError, Refusal, classify, refusal_headers
from interfaces.edge.targets import UnknownTarget

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
A2A_DOMAIN = "a2a-protocol.org"
OUR_DOMAIN = "asteros"


class A2AError(DoorError):
    """Base class: subclasses set the codes; ``metadata`` goes into ErrorInfo (string values)."""

    jsonrpc_code: ClassVar[int] = -32603
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"
    reason: ClassVar[str] = "INTERNAL_ERROR"
    domain: ClassVar[str] = A2A_DOMAIN
    default_message: ClassVar[str] = "Internal error"
    # JSON-RPC errors travel in HTTP 200 responses, except these HTTP-level ones (401, 403, 404).
    keeps_http_status: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.metadata = {key: str(value) for key, value in (metadata or {}).items() if value is not None}
        self.field_violations = field_violations or []
        self.request_id: str | int | float | None = None  # JSON-RPC: the id of the failing request

    def refusal(self) -> Refusal:
        headers = refusal_headers(self.http_status, getattr(self, "retry_after", None))
        return Refusal(self.http_status, self.reason.lower(), self.message, self.metadata or None, headers, error=self)

    def details(self) -> list[dict[str, Any]]:
        metadata = {**self.metadata, "timestamp": now_iso()}
        details: list[dict[str, Any]] = [
            {"@type": ERROR_INFO_TYPE, "reason": self.reason, "domain": self.domain, "metadata": metadata}
        ]
        if self.field_violations:
            details.append(
                {
                    "@type": BAD_REQUEST_TYPE,
                    "fieldViolations": [{"field": f, "description": d} for f, d in self.field_violations],
                }
            )
        return details

    def jsonrpc_error(self) -> dict[str, Any]:
        return {"code": self.jsonrpc_code, "message": self.message, "data": self.details()}

    def status_body(self) -> dict[str, Any]:
        """The ``google.rpc.Status`` JSON of the HTTP+JSON binding."""
        return {
            "error": {
                "code": self.http_status,
                "status": self.grpc_status,
                "message": self.message,
                "details": self.details(),
            }
        }


# --- JSON-RPC standard errors


class JSONParseError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32700, 400, "INVALID_ARGUMENT", "JSON_PARSE"
    default_message = "Invalid JSON payload"


class InvalidRequestError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32600, 400, "INVALID_ARGUMENT", "INVALID_REQUEST"
    default_message = "Request payload validation error"


class MethodNotFoundError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32601, 404, "NOT_FOUND", "METHOD_NOT_FOUND"
    default_message = "Method not found"


class InvalidParamsError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32602, 400, "INVALID_ARGUMENT", "INVALID_PARAMS"
    default_message = "Invalid parameters"


class InternalError(A2AError):
    default_message = "Internal error"


# --- A2A errors (section 5.4)


class TaskNotFoundError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32001, 404, "NOT_FOUND", "TASK_NOT_FOUND"
    default_message = "Task not found"


class TaskNotCancelableError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32002, 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"
    default_message = "Task cannot be canceled"


class PushNotificationNotSupportedError(A2AError):
    jsonrpc_code, http_status, grpc_status = -32003, 400, "FAILED_PRECONDITION"
    reason = "PUSH_NOTIFICATION_NOT_SUPPORTED"
    default_message = "Push notifications are not supported by this agent"


class UnsupportedOperationError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32004, 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION"
    default_message = "This operation is not supported"


class ContentTypeNotSupportedError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32005, 400, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED"
    default_message = "Incompatible content types"


class InvalidAgentResponseError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32006, 500, "INTERNAL", "INVALID_AGENT_RESPONSE"
    default_message = "Invalid agent response"


class ExtendedAgentCardNotConfiguredError(A2AError):
    jsonrpc_code, http_status, grpc_status = -32007, 400, "FAILED_PRECONDITION"
    reason = "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    default_message = "The extended agent card is not configured"


class ExtensionSupportRequiredError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32008, 400, "FAILED_PRECONDITION", "EXTENSION_SUPPORT_REQUIRED"
    default_message = "Extension support required"


class VersionNotSupportedError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32009, 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED"
    default_message = "Version not supported"


# --- HTTP-level errors (not A2A errors): 404, 401 and 403 on every binding


class AgentNotFoundError(A2AError):
    """Nothing is served at this base URL (no such agent, or it is disabled)."""

    jsonrpc_code, http_status, grpc_status, reason = -32601, 404, "NOT_FOUND", "AGENT_NOT_FOUND"
    domain = OUR_DOMAIN
    keeps_http_status = True
    default_message = "No A2A agent here."


class UnauthenticatedError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32000, 401, "UNAUTHENTICATED", "UNAUTHENTICATED"
    domain = OUR_DOMAIN
    keeps_http_status = True
    default_message = "Authentication credentials were not provided."


class PermissionDeniedError(A2AError):
    jsonrpc_code, http_status, grpc_status, reason = -32000, 403, "PERMISSION_DENIED", "PERMISSION_DENIED"
    domain = OUR_DOMAIN
    keeps_http_status = True
    default_message = "You may not do this."


class PayloadTooLargeError(A2AError):
    """The body is over ASTEROS_MAX_BODY_BYTES: refused by the edge before anything reads it."""

    jsonrpc_code, http_status, grpc_status, reason = -32600, 413, "INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE"
    domain = OUR_DOMAIN
    default_message = "The request body is too large."
    keeps_http_status = True


class UnsupportedMediaTypeError(A2AError):
    """A body sent without a JSON ``Content-Type`` (``application/json`` or ``application/a2a+json``)."""

    jsonrpc_code, http_status, grpc_status, reason = -32600, 415, "INVALID_ARGUMENT", "UNSUPPORTED_MEDIA_TYPE"
    domain = OUR_DOMAIN
    default_message = "Send the body as JSON (Content-Type: application/json)."
    keeps_http_status = True


class BadHTTPRequestError(A2AError):
    """A request the edge refuses before the binding reads it (a bad Content-Length, a NUL in the URL)."""

    jsonrpc_code, http_status, grpc_status, reason = -32600, 400, "INVALID_ARGUMENT", "BAD_REQUEST"
    domain = OUR_DOMAIN
    default_message = "The request is not valid."
    keeps_http_status = True


class QuotaExceededError(A2AError):
    """A quota of the caller's API key is used up (``interfaces.keys.quotas``): HTTP 429 with
    ``Retry-After`` on both bindings; ErrorInfo names the quota and limit, RetryInfo the delay."""

    jsonrpc_code, http_status, grpc_status, reason = -32000, 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"
    domain = OUR_DOMAIN
    keeps_http_status = True
    default_message = "A quota of this API key is used up."

    def __init__(self, message: str | None = None, *, quota: str, limit: int, retry_after: int) -> None:
        super().__init__(message, metadata={"quota": quota, "limit": limit, "retryAfterSeconds": retry_after})
        self.retry_after = retry_after

    def details(self) -> list[dict[str, Any]]:
        return [*super().details(), {"@type": RETRY_INFO_TYPE, "retryDelay": f"{self.retry_after}s"}]


def a2a_error(refusal: Refusal) -> A2AError:
    """A classified error as the A2A error a client understands (the same on both bindings)."""
    error = refusal.error
    if isinstance(error, A2AError):
        return error
    if refusal.unexpected or refusal.status == 503:  # a bug or an outage of ours: nothing of it shown
        return InternalError("Internal error; it has been logged.")
    status, code, message = refusal.status, refusal.code, refusal.message
    if isinstance(error, UnknownTarget):
        return AgentNotFoundError(message)
    if status == 401:
        return UnauthenticatedError(message)
    if status == 403:
        return PermissionDeniedError(message)
    if code == "quota_exceeded":
        quota = refusal.details
        return QuotaExceededError(message, quota=quota["quota"], limit=quota["limit"], retry_after=quota["retry_after"])
    if status == 400:
        return InvalidParamsError(message, metadata={"code": code})
    if status == 404:
        return TaskNotFoundError(message)
    if status in (409, 422):
        return UnsupportedOperationError(message, metadata={"code": code})
    return InternalError(message, metadata={"code": code})


def as_a2a_error(exc: BaseException) -> A2AError:
    """Any exception met while serving A2A, classified and rendered as an A2A error."""
    return a2a_error(classify(exc))


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z`` suffix (section 5.6.1)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
