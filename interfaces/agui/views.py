"""AG-UI over HTTP: ``POST /agui/{collection}/{id}`` (a run kind's collection in ``cosmos.kinds``:
``agents``, ``stars``, ``workflows``) with a RunAgentInput answers ``text/event-stream``. The edge
pipeline (``interfaces.edge.pipeline``) checks the method, resolves the kind and authorizes the
caller; the views parse, start (``services.start_agui_run``) and stream. Every refusal is an HTTP
4xx in the one error shape before any stream opens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from cosmos.db import db_call
from cosmos.kinds import all_kinds, collection_of, find_kind
from cosmos.services.errors import Invalid, NotFound
from interfaces.agui.input import parse_run_agent_input
from interfaces.agui.interface import endpoint_path
from interfaces.agui.services import agui_events, start_agui_run
from interfaces.edge.auth import caller_of
from interfaces.edge.parsers import loads, require_json_body
from interfaces.edge.pipeline import Door
from interfaces.edge.runs import require_kind
from interfaces.edge.sse import format_event, parse_last_event_id, sse_response, stream_events
from interfaces.edge.targets import Target, resolve_kind


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


async def resolve(collection: str, object_id: str) -> Target:
    """The kind of ``/agui/{collection}/{id}``; the services look the definition up themselves
    (a disabled one is described, and refused a run with 422)."""
    kind = resolve_kind(collection, f"No AG-UI endpoint at /agui/{collection}/.")
    return Target(kind.collection, kind.name, object_id)


AGUI = Door("agui", resolve=resolve)


def _scope(request: HttpRequest) -> str:
    return "read" if request.method == "GET" else "run"


@AGUI.view(("GET", "POST"), _scope, method_message="POST a RunAgentInput here (GET describes it).")
async def run_endpoint(request: HttpRequest, target: Target, principal: Any) -> HttpResponse:
    if request.method == "GET":
        return await describe(target)
    parsed = parse_run_agent_input(_decode(request))
    try:
        after = parse_last_event_id(request.headers.get("Last-Event-ID")) or 0
    except ValueError:
        raise Invalid("Last-Event-ID must be the seq of an event.", code="invalid_last_event_id") from None
    require_kind(target.kind, find_kind(target.kind).label)  # type: ignore[union-attr]  (resolved)
    started = await db_call(start_agui_run, target.kind, target.id, parsed, caller=caller_of(principal))
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
            # Approvals and questions end a run with the interrupt outcome; resume answers them.
            "humanInTheLoop": {"supported": True, "approvals": True},
        },
    }


async def describe(target: Target) -> HttpResponse:
    row = await db_call(_definition, target.kind, target.id)
    return JsonResponse(_describe(target.kind, row))


def _catalogue() -> list[dict]:
    out = []
    for kind in all_kinds():
        if kind.target_model is None:
            continue
        rows = kind.target_model.objects.filter(enabled=True)  # type: ignore[attr-defined]
        rows = rows.order_by("id").values("id", "name", "description", "enabled")
        out += [_describe(kind.name, row) for row in rows[:500]]
    return out


@AGUI.view(("GET", "HEAD"), "read", resolve=False)
async def index(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    """Every AG-UI endpoint of this AsterOS: what a frontend can connect to."""
    return JsonResponse({"protocolVersion": "1.0", "endpoints": await db_call(_catalogue)})
