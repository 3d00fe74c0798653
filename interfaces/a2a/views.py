"""A2A views: cards, the directory, the JSON-RPC endpoint and the HTTP+JSON routes.

Thin by design: the HTTP+JSON routes run the shared edge pipeline (``interfaces.edge.pipeline``:
method check, resolve the target, authenticate, then A2A's own checks, ``A2A-Version`` and a JSON
body), parse, call one operation of ``interfaces.a2a.services`` and render JSON or SSE; the
JSON-RPC endpoint calls the same steps itself. Every error is classified once
(``interfaces.edge.errors.classify``) and rendered as the binding's error (``a2a_error``). They are async
(streams are ``StreamingHttpResponse`` over async generators, served by Daphne or Uvicorn),
exempt from CSRF (API keys, never the session cookie, authenticate A2A calls), and accept a
trailing slash on every path, POST included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from cosmos.db import db_call
from interfaces.a2a import push, services
from interfaces.a2a.cards import (
    CARD_MAX_AGE,
    PROTOCOL_VERSION,
    build_card,
    card_etag,
    default_target,
    directory_entry,
)
from interfaces.a2a.edge import request_id_from, require_json
from interfaces.a2a.errors import (
    A2AError,
    AgentNotFoundError,
    InvalidParamsError,
    JSONParseError,
    UnsupportedOperationError,
    a2a_error,
    as_a2a_error,
)
from interfaces.a2a.jsonrpc import STREAMING_METHODS, Call, dispatch, parse_body
from interfaces.a2a.protocol import (
    check_version,
    optional_int,
    parse_list_params,
    parse_push_config,
    parse_push_config_ref,
    parse_push_list_params,
    parse_send_params,
    require_params,
)
from interfaces.a2a.services import Caller
from interfaces.edge.auth import authorize_request
from interfaces.edge.errors import Refusal
from interfaces.edge.parsers import loads
from interfaces.edge.pipeline import Door
from interfaces.edge.sse import format_event, sse_response, stream_events
from interfaces.edge.targets import Target, UnknownTarget, all_targets, enabled, get_target, resolve_target

A2A_JSON = "application/a2a+json"


# --- the steps every A2A call shares


async def resolve(resource: str, object_id: str) -> Target:
    """The enabled target at ``/a2a/<resource>/<id>`` (none while the interface is turned off)."""
    missing = f"No A2A agent at /a2a/{resource}/{object_id}."
    if not enabled():
        raise UnknownTarget(missing)
    return await resolve_target(resource, object_id, missing)


async def authenticate(request: HttpRequest, target: Target, scope: str = "read") -> Caller:
    """The caller, or 401/403. Only API keys count: the session cookie is not accepted here."""
    return Caller.of(await authorize_request(request, scope, target=target, sessions=False))


def _a2a_checks(request: HttpRequest) -> None:
    require_json(request)
    check_version(request.headers, request.GET)


def _with_headers(response: HttpResponse, error: A2AError) -> HttpResponse:
    """The classification's headers: ``WWW-Authenticate`` on a 401, ``Retry-After`` on a quota."""
    for name, value in error.refusal().headers.items():
        response[name] = value
    return response


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
        yield render_error(as_a2a_error(exc))
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
    return await _card_response(request, target)


@csrf_exempt
async def root_card(request: HttpRequest) -> HttpResponse:
    """``/.well-known/agent-card.json``: the card of ``ASTEROS_A2A_DEFAULT`` (unset: the first
    agent by id), the same card as at its own base URL."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    if not enabled():
        return _status_response(AgentNotFoundError("The A2A interface is turned off (ASTEROS_ENABLE_A2A)."))
    target, problem = await db_call(default_target, settings.ASTEROS.a2a_default)
    if target is None:
        return _status_response(AgentNotFoundError(problem))
    return await _card_response(request, target)


async def _card_response(request: HttpRequest, target: Target) -> HttpResponse:
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
        error = as_a2a_error(exc)
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


def render_status(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """A classified error on the HTTP+JSON binding: its ``google.rpc.Status``."""
    if refusal.status == 405:
        return _method_not_allowed(refusal.headers["Allow"])
    return _status_response(a2a_error(refusal))


# The HTTP+JSON binding's door: keys only, A2A's own checks after auth, handlers get a Caller.
A2A = Door(
    "a2a",
    render=render_status,
    resolve=resolve,
    address=("resource", "object_id"),
    sessions=False,
    check=_a2a_checks,
    as_caller=Caller.of,
)
rest = A2A.view


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


def _read_or_run(request: HttpRequest) -> str:
    return "read" if request.method == "GET" else "run"


@rest(("GET", "POST", "DELETE"), scope=_read_or_run)
async def push_configs(
    request: HttpRequest, target: Target, caller: Caller, task_id: str, config_id: str | None = None
) -> HttpResponse:
    """``<base>/tasks/{id}/pushNotificationConfigs``: POST creates, GET lists; with ``/{configId}``,
    GET gets and DELETE deletes."""
    if config_id is None:
        if request.method == "DELETE":
            return _method_not_allowed("GET, POST")
        if request.method == "POST":
            return _ok(await push.create_config(target, caller, task_id, parse_push_config(_json_body(request))))
        query = {key: request.GET.get(key) for key in request.GET} | {"taskId": task_id}
        return _ok(await push.list_configs(target, caller, parse_push_list_params(query)))
    if request.method == "POST":
        return _method_not_allowed("GET, DELETE")
    ref = parse_push_config_ref({"taskId": task_id, "id": config_id})
    if request.method == "DELETE":
        return _ok(await push.delete_config(target, caller, ref))
    return _ok(await push.get_config(target, caller, ref))


@rest(("GET",))
async def extended_card(request: HttpRequest, target: Target, caller: Caller) -> HttpResponse:
    raise UnsupportedOperationError("This agent has no extended agent card (capabilities.extendedAgentCard is false).")
