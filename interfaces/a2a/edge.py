"""The A2A bindings' own shape for what the shared edge refuses before a view runs.

``interfaces.edge.middleware`` answers a body over ``ASTEROS_MAX_BODY_BYTES`` (413) or a bad
``Content-Length`` (400) before any view; on an A2A path that answer must be the binding's: a
JSON-RPC error carrying the request's id on the JSON-RPC endpoint, a ``google.rpc.Status`` on the
HTTP+JSON binding. ``install()`` (``InterfacesConfig.ready``) registers ``render`` for that.
A body without a JSON ``Content-Type`` (415) is refused by the views through ``require_json``.

The id of a JSON-RPC request whose body is too large is read from the body's first bytes only
(``ijson``, an incremental parser: the top-level ``"id"`` is found without reading the rest).
"""

from __future__ import annotations

import io
from typing import Any

import ijson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from interfaces.a2a.errors import A2AError, BadHTTPRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from interfaces.edge.errors import Refusal, register_edge_renderer
from interfaces.edge.parsers import is_json_media_type

JSONRPC_VIEW = "a2a-jsonrpc"
ID_SCAN_BYTES = 64 * 1024  # how much of an over-large body is read to find its id
EDGE_ERRORS: dict[int, type[A2AError]] = {413: PayloadTooLargeError, 400: BadHTTPRequestError}
A2A_JSON = "application/a2a+json"


def binding_of(request: HttpRequest) -> str | None:
    """``"jsonrpc"`` or ``"rest"`` for an A2A per-agent path, else None."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    name = match.url_name or ""
    if name == JSONRPC_VIEW:
        return "jsonrpc"
    if name.startswith("a2a-") and "resource" in match.kwargs:
        return "rest"
    return None


def request_id_from(data: bytes) -> Any:
    """The top-level ``"id"`` of a (possibly truncated) JSON-RPC body, or None."""
    expect_id = False
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(data[:ID_SCAN_BYTES])):
            if expect_id:
                if prefix == "id" and event == "string":
                    return value
                if prefix == "id" and event == "number":
                    return value if isinstance(value, int) else float(value)  # ijson gives Decimals
                return None
            expect_id = prefix == "" and event == "map_key" and value == "id"
    except Exception:  # truncated or not JSON at all: no id to give back
        return None
    return None


def read_prefix(request: HttpRequest) -> bytes:
    """Up to ``ID_SCAN_BYTES`` of the body, without reading the rest of it."""
    try:
        return request.read(ID_SCAN_BYTES)
    except Exception:
        return b""


def error_response(binding: str, error: A2AError, request_id: Any = None) -> HttpResponse:
    if binding == "jsonrpc":
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "error": error.jsonrpc_error()}
        return JsonResponse(body, status=error.http_status)
    return JsonResponse(error.status_body(), status=error.http_status, content_type=A2A_JSON)


def render(request: HttpRequest, refusal: Refusal) -> HttpResponse | None:
    binding = binding_of(request)
    error_class = EDGE_ERRORS.get(refusal.status)
    if binding is None or error_class is None:
        return None
    metadata = refusal.details if isinstance(refusal.details, dict) else None
    error = error_class(refusal.message, metadata=metadata)
    request_id = request_id_from(read_prefix(request)) if binding == "jsonrpc" else None
    return error_response(binding, error, request_id)


def require_json(request: HttpRequest) -> None:
    """415 (``UnsupportedMediaTypeError``) for a body sent without a JSON Content-Type."""
    if request.body and not is_json_media_type(request.content_type):
        shown = request.content_type or "none"
        raise UnsupportedMediaTypeError(
            f"Send the body as JSON (Content-Type: application/json or {A2A_JSON}); got {shown!r}."
        )


def install() -> None:
    register_edge_renderer(render)
