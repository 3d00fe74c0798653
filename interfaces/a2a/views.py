"""A2A views: cards, the directory, the JSON-RPC endpoint and the HTTP+JSON routes.

Thin by design: each view resolves the target, authenticates, checks ``A2A-Version``, parses,
calls one operation of ``interfaces.a2a.services`` and renders JSON or SSE. They are async
(streams are ``StreamingHttpResponse`` over async generators, served by Daphne or Uvicorn),
exempt from CSRF (API keys, never the session cookie, authenticate A2A calls), and accept a
trailing slash on every path, POST included.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from cosmos.db import db_call
from cosmos.services.errors import ServiceError
from interfaces.a2a import services
from interfaces.a2a.cards import CARD_MAX_AGE, PROTOCOL_VERSION, build_card, card_etag, directory_entry
from interfaces.a2a.edge import request_id_from, require_json
from interfaces.a2a.errors import (
    A2AError,
    AgentNotFoundError,
    InternalError,
    InvalidParamsError,
    JSONParseError,
    PermissionDeniedError,
    PushNotificationNotSupportedError,
    UnauthenticatedError,
    UnsupportedOperationError,
)
from interfaces.a2a.jsonrpc import STREAMING_METHODS, Call, dispatch, parse_body
from interfaces.a2a.protocol import check_version, optional_int, parse_list_params, parse_send_params, require_params
from interfaces.a2a.services import Caller
from interfaces.edge.auth import AccessDenied, require_access
from interfaces.edge.errors import AUTHENTICATE_HEADER
from interfaces.edge.parsers import loads
from interfaces.edge.sse import format_event, sse_response, stream_events
from interfaces.edge.targets import Target, all_targets, enabled, get_target

logger = logging.getLogger(__name__)

A2A_JSON = "application/a2a+json"


# --- shared steps


async def resolve(resource: str, object_id: str) -> Target:
    target = await db_call(get_target, resource, object_id) if enabled() else None
    if target is None:
        raise AgentNotFoundError(f"No A2A agent at /a2a/{resource}/{object_id}.")
    return target


async def authenticate(request: HttpRequest, target: Target, scope: str = "read") -> Caller:
    """The caller, or 401/403. Only API keys count: the session cookie is not accepted here."""
    try:
        principal = await db_call(
            require_access, request.headers, None, scope, resource=target.resource, object_id=target.id
        )
    except AccessDenied as exc:
        error_class = UnauthenticatedError if exc.status == 401 else PermissionDeniedError
        raise error_class(exc.message) from None
    return Caller.of(principal)


def _with_headers(response: HttpResponse, error: A2AError) -> HttpResponse:
    if error.http_status == 401:
        response["WWW-Authenticate"] = AUTHENTICATE_HEADER
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _unexpected(exc: Exception) -> A2AError:
    if isinstance(exc, A2AError):
        return exc
    if isinstance(exc, ServiceError):
        return services.a2a_error_for(exc)
    logger.exception("A2A request failed")
    return InternalError("Internal error; it has been logged.")


async def _frames(
    source: AsyncIterator[dict[str, Any]],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    render_error: Callable[[A2AError], tuple[str | None, dict[str, Any]]],
) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
    """(SSE event name, JSON) pairs; an error in the middle of a stream is its last frame."""
    try:
        async for payload in source:
            yield None, render(payload)
    except Exception as exc:
        yield render_error(_unexpected(exc))
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def _encode(name: str | None, data: dict[str, Any]) -> bytes:
    return format_event(None, data, event=name)


def event_stream(frames: AsyncIterator[tuple[str | None, dict[str, Any]]]) -> HttpResponse:
    return sse_response(stream_events(frames, encode=_encode))  # type: ignore[arg-type]


# --- cards and the directory (public)


@csrf_exempt
async def agent_card(request: HttpRequest, resource: str, object_id: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    if not enabled():
        return _status_response(AgentNotFoundError("The A2A interface is turned off (ASTEROS_ENABLE_A2A)."))
    target = await db_call(get_target, resource, object_id)
    if target is None:
        return _status_response(AgentNotFoundError(f"No A2A agent at /a2a/{resource}/{object_id}."))
    card = await db_call(build_card, request, target)
    etag = card_etag(card)
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponse(status=304)
    else:
        response = JsonResponse(card, json_dumps_params={"ensure_ascii": False})
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={CARD_MAX_AGE}"
    return response


def _directory(request: HttpRequest) -> list[dict[str, Any]]:
    return [directory_entry(request, target) for target in all_targets()]


def _cards(request: HttpRequest) -> list[dict[str, Any]]:
    return [build_card(request, target) for target in all_targets()]


@csrf_exempt
async def directory(request: HttpRequest) -> HttpResponse:
    """Every A2A agent of this server: kind, id, name, description, base URL and card URL."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    if not enabled():
        return _status_response(AgentNotFoundError("The A2A interface is turned off (ASTEROS_ENABLE_A2A)."))
    entries = await db_call(_directory, request)
    body = {"name": settings.ASTEROS.name, "protocolVersion": PROTOCOL_VERSION, "agents": entries}
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
async def cards(request: HttpRequest) -> HttpResponse:
    """The full agent card of every A2A agent of this server."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    if not enabled():
        return _status_response(AgentNotFoundError("The A2A interface is turned off (ASTEROS_ENABLE_A2A)."))
    return JsonResponse({"agentCards": await db_call(_cards, request)}, json_dumps_params={"ensure_ascii": False})


# --- JSON-RPC


def _rpc_error(error: A2AError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.jsonrpc_error()}


def _rpc_response(error: A2AError, request_id: Any = None) -> HttpResponse:
    # A2A and JSON-RPC errors travel in a 200 response; who-are-you and where-is-it errors keep
    # their HTTP status (401, 403, 404) so that any HTTP client sees them.
    status = error.http_status if error.keeps_http_status else 200
    response = JsonResponse(_rpc_error(error, request_id), status=status)
    return _with_headers(response, error)


@csrf_exempt
async def jsonrpc_endpoint(request: HttpRequest, resource: str, object_id: str) -> HttpResponse:
    """``POST <base>``: one JSON-RPC request. ``GET <base>`` answers the agent card."""
    if request.method == "GET":
        return await agent_card(request, resource, object_id)
    if request.method != "POST":
        return _method_not_allowed("GET, POST")
    call = Call(None, "", None)
    parsing = False
    try:
        target = await resolve(resource, object_id)
        caller = await authenticate(request, target)
        require_json(request)
        parsing = True  # from here, parse_body says which id (if any) its own errors carry
        call = parse_body(request.body)
        check_version(request.headers, request.GET)
        result = await dispatch(target, caller, call)
    except Exception as exc:
        error = _unexpected(exc)
        if error.request_id is not None:
            request_id = error.request_id
        elif call.id is not None or parsing:
            request_id = call.id
        else:  # refused before the body was parsed (401, 403, 404, 415): its id all the same
            request_id = request_id_from(request.body)
        return _rpc_response(error, request_id)
    if call.method in STREAMING_METHODS:
        stream: AsyncIterator[dict[str, Any]] = result  # type: ignore[assignment]
        frames = _frames(
            stream,
            lambda payload: {"jsonrpc": "2.0", "id": call.id, "result": payload},
            lambda error: (None, _rpc_error(error, call.id)),
        )
        return event_stream(frames)
    return JsonResponse({"jsonrpc": "2.0", "id": call.id, "result": result}, json_dumps_params={"ensure_ascii": False})


# --- HTTP+JSON


def _status_response(error: A2AError) -> HttpResponse:
    response = JsonResponse(error.status_body(), status=error.http_status, content_type=A2A_JSON)
    return _with_headers(response, error)


def _method_not_allowed(allowed: str) -> HttpResponse:
    body = {"error": {"code": 405, "status": "UNIMPLEMENTED", "message": f"Use {allowed}.", "details": []}}
    response = JsonResponse(body, status=405, content_type=A2A_JSON)
    response["Allow"] = allowed
    return response


def _json_body(request: HttpRequest, *, optional: bool = False) -> dict[str, Any]:
    if not request.body and optional:
        return {}
    try:
        data = loads(request.body.decode("utf-8") if request.body else "")
    except (ValueError, UnicodeDecodeError) as exc:
        raise JSONParseError(f"Invalid JSON payload: {exc}") from None
    return require_params(data)


RestHandler = Callable[..., Awaitable[HttpResponse]]


def rest(methods: tuple[str, ...], scope: str = "read") -> Callable[[RestHandler], RestHandler]:
    """An HTTP+JSON route: method check, target, auth, version; errors as google.rpc.Status."""

    def decorate(handler: RestHandler) -> RestHandler:
        @csrf_exempt
        @wraps(handler)
        async def view(request: HttpRequest, resource: str, object_id: str, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return _method_not_allowed(", ".join(methods))
            try:
                target = await resolve(resource, object_id)
                caller = await authenticate(request, target, scope)
                require_json(request)
                check_version(request.headers, request.GET)
                return await handler(request, target, caller, **kwargs)
            except Exception as exc:
                return _status_response(_unexpected(exc))

        return view

    return decorate


def _ok(body: dict[str, Any]) -> HttpResponse:
    return JsonResponse(body, content_type=A2A_JSON, json_dumps_params={"ensure_ascii": False})


def _rest_stream(source: AsyncIterator[dict[str, Any]]) -> HttpResponse:
    frames = _frames(source, lambda payload: payload, lambda error: ("error", error.status_body()))
    return event_stream(frames)


def _history_length(request: HttpRequest) -> int | None:
    return optional_int(request.GET.get("historyLength"), "historyLength")


@rest(("POST",), scope="run")
async def message_send(request: HttpRequest, target: Target, caller: Caller) -> HttpResponse:
    params = parse_send_params(_json_body(request))
    return _ok(await services.send_message(target, caller, params))


@rest(("POST",), scope="run")
async def message_stream(request: HttpRequest, target: Target, caller: Caller) -> HttpResponse:
    params = parse_send_params(_json_body(request))
    return _rest_stream(await services.send_streaming_message(target, caller, params))


@rest(("GET",))
async def tasks_list(request: HttpRequest, target: Target, caller: Caller) -> HttpResponse:
    params = parse_list_params({key: request.GET.get(key) for key in request.GET})
    return _ok(await services.list_tasks(target, caller, params))


@rest(("GET",))
async def task_get(request: HttpRequest, target: Target, caller: Caller, task_id: str) -> HttpResponse:
    return _ok(await services.get_task(target, caller, task_id, _history_length(request)))


@rest(("POST",), scope="run")
async def task_cancel(request: HttpRequest, target: Target, caller: Caller, task_id: str) -> HttpResponse:
    body = _json_body(request, optional=True)
    body_id = body.get("id")
    if body_id not in (None, "", task_id):
        raise InvalidParamsError("The task id in the body differs from the one in the path.")
    return _ok(await services.cancel_task(target, caller, task_id))


@rest(("GET", "POST"))
async def task_subscribe(request: HttpRequest, target: Target, caller: Caller, task_id: str) -> HttpResponse:
    return _rest_stream(await services.subscribe(target, caller, task_id))


@rest(("GET", "POST", "DELETE"))
async def push_configs(request: HttpRequest, target: Target, caller: Caller, **_ids: str) -> HttpResponse:
    raise PushNotificationNotSupportedError(
        "This agent does not send push notifications (capabilities.pushNotifications is false)."
    )


@rest(("GET",))
async def extended_card(request: HttpRequest, target: Target, caller: Caller) -> HttpResponse:
    raise UnsupportedOperationError("This agent has no extended agent card (capabilities.extendedAgentCard is false).")
