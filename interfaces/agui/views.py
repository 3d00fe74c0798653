"""AG-UI over HTTP: ``POST /agui/{collection}/{id}`` (a run kind's collection in ``cosmos.kinds``:
``agents``, ``stars``, ``workflows``) with a RunAgentInput answers ``text/event-stream``. Parse,
authorize, start (``services.start_agui_run``), stream; every refusal is an HTTP 4xx in the one
error shape before any stream opens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from cosmos.db import db_call
from cosmos.kinds import all_kinds, collection_of, find_kind, kind_for_collection
from cosmos.services.errors import Invalid, NotFound, ServiceError
from interfaces.agui.input import parse_run_agent_input
from interfaces.agui.interface import endpoint_path
from interfaces.agui.services import agui_events, start_agui_run
from interfaces.edge.auth import AccessDenied, caller_of, kind_resource, require_access, session_user_with_csrf
from interfaces.edge.errors import error_response, service_error_response
from interfaces.edge.parsers import loads, require_json_body
from interfaces.edge.runs import require_kind
from interfaces.edge.sse import format_event, parse_last_event_id, sse_response, stream_events


def encode(seq: int | None, event: dict) -> bytes:
    """One SSE frame per event, LF only; ``id:`` only on frames that end a stored event."""
    return format_event(seq, event)


def _decode(request: HttpRequest) -> Any:
    require_json_body(request.content_type, request.body)  # text/plain is a 415, not a run
    if not request.body:
        raise Invalid("The body is empty: send an AG-UI RunAgentInput as JSON.", code="malformed_request")
    try:
        return loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(f"The body is not valid JSON: {exc}", code="malformed_request") from None


def _refusal(exc: Exception) -> JsonResponse:
    if isinstance(exc, AccessDenied):
        return error_response(exc.code, exc.message, exc.status)
    assert isinstance(exc, ServiceError)
    return service_error_response(exc)  # a quota's 429 with Retry-After, too


async def _principal(request: HttpRequest, scope: str, kind: str | None = None, object_id: str | None = None) -> Any:
    user = session_user_with_csrf(request, await request.auser())
    resource = kind_resource(kind) if kind else None
    return await db_call(require_access, request.headers, user, scope, resource=resource, object_id=object_id)


@csrf_exempt
async def run_endpoint(request: HttpRequest, collection: str, object_id: str) -> HttpResponse:
    found = kind_for_collection(collection)
    if found is None:
        return error_response("not_found", f"No AG-UI endpoint at /agui/{collection}/.", 404)
    kind = found.name
    if request.method == "GET":
        return await describe(request, kind, object_id)
    if request.method != "POST":
        response = error_response("method_not_allowed", "POST a RunAgentInput here (GET describes it).", 405)
        response["Allow"] = "GET, POST"
        return response
    try:
        principal = await _principal(request, "run", kind, object_id)
        parsed = parse_run_agent_input(_decode(request))
        try:
            after = parse_last_event_id(request.headers.get("Last-Event-ID")) or 0
        except ValueError:
            raise Invalid("Last-Event-ID must be the seq of an event.", code="invalid_last_event_id") from None
        require_kind(kind, found.label)
        started = await db_call(start_agui_run, kind, object_id, parsed, caller=caller_of(principal))
    except (AccessDenied, ServiceError) as exc:
        return _refusal(exc)
    stream = stream_events(agui_events(started, after), encode=encode)  # type: ignore[arg-type]
    return sse_response(stream, headers={"X-Run-ID": started.run_id})


def _definition(kind: str, object_id: str) -> dict:
    model = find_kind(kind).target_model  # type: ignore[union-attr]  (the view found the kind)
    if model is None:
        raise NotFound(f"No {kind} with id {object_id!r}.")
    row = model.objects.filter(pk=object_id).values("id", "name", "description", "enabled").first()
    if row is None:
        raise NotFound(f"No {kind} with id {object_id!r}.")
    return row


def _describe(kind: str, row: dict) -> dict:
    return {
        "kind": kind,
        "id": row["id"],
        "name": row["name"] or row["id"],
        "description": row["description"],
        "enabled": row["enabled"],
        "endpoint": endpoint_path(kind, row["id"]),
        "websocket": f"/ws/agui/{collection_of(kind)}/{row['id']}/",
        "protocolVersion": "1.0",
        "capabilities": {
            "transport": {"streaming": True, "websocket": True},
            "tools": {"supported": True, "clientProvided": kind == "agent"},
            "state": {"snapshots": True, "deltas": kind == "workflow", "persistentState": True},
            "multiAgent": {"supported": kind != "agent"},
        },
    }


async def describe(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    try:
        await _principal(request, "read", kind, object_id)
        row = await db_call(_definition, kind, object_id)
    except (AccessDenied, ServiceError) as exc:
        return _refusal(exc)
    return JsonResponse(_describe(kind, row))


def _catalogue() -> list[dict]:
    out = []
    for kind in all_kinds():
        if kind.target_model is None:
            continue
        rows = kind.target_model.objects.filter(enabled=True)  # type: ignore[attr-defined]
        rows = rows.order_by("id").values("id", "name", "description", "enabled")
        out += [_describe(kind.name, row) for row in rows[:500]]
    return out


async def index(request: HttpRequest) -> HttpResponse:
    """Every AG-UI endpoint of this AsterOS: what a frontend can connect to."""
    try:
        await _principal(request, "read")
        endpoints = await db_call(_catalogue)
    except (AccessDenied, ServiceError) as exc:
        return _refusal(exc)
    return JsonResponse({"protocolVersion": "1.0", "endpoints": endpoints})
