"""OpenAI's error shape, on this door only: ``{"error": {"message", "type", "param", "code"}}``.

Every refusal is classified once by the edge (``interfaces.edge.errors.classify``) with the
status and code every door uses; ``render`` only writes it in OpenAI's shape, with ``type``
from the status (``invalid_request_error``, ``authentication_error``, ``permission_error``,
``not_found_error``, ``rate_limit_error``, ``server_error``) and ``param`` from the details.
``install`` (called by the interfaces app's ``ready()``) makes the edge answer in this shape too
for what it refuses before a view runs (a body over the limit) on this door's paths.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from interfaces.edge.errors import Refusal, register_edge_renderer

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class RunFailed(Exception):
    """The run ended in an error: the door answers 502 with the run's error code."""

    def __init__(self, error: dict, run_id: str) -> None:
        super().__init__(error["message"])
        self.error = error
        self.run_id = run_id


def error_object(refusal: Refusal) -> dict:
    param = refusal.details.get("param") if isinstance(refusal.details, dict) else None
    kind = ERROR_TYPES.get(refusal.status, "server_error" if refusal.status >= 500 else "invalid_request_error")
    return {"error": {"message": refusal.message, "type": kind, "param": param, "code": refusal.code}}


def render(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """A refusal in OpenAI's error shape, with the same status and headers as on every door."""
    if isinstance(refusal.error, RunFailed):
        refusal = Refusal(502, refusal.error.error["code"], refusal.error.error["message"])
    return JsonResponse(error_object(refusal), status=refusal.status, headers=dict(refusal.headers))


def prefix() -> str:
    return settings.ASTEROS.openai_prefix.strip("/")


def edge_render(request: HttpRequest, refusal: Refusal) -> HttpResponse | None:
    """Errors the edge answers before a view (a body over the limit) for this door's paths."""
    if settings.ASTEROS.enable_openai and request.path.strip("/").startswith(prefix() + "/"):
        return render(request, refusal)
    return None


def install() -> None:
    register_edge_renderer(edge_render)
