"""The Agent Protocol's HTTP endpoints, under ``ASTEROS_AGENT_PROTOCOL_PREFIX``.

Every view goes through the edge pipeline (``interfaces.edge.pipeline``): method check →
authorize (``x-api-key`` or ``Authorization: Bearer``; ``read`` to look, ``run`` to start,
change or cancel) → the handler, which parses, calls one service (``services``) and renders.
Errors are classified once and rendered as the protocol's ``{"detail": ...}`` together with the
one error shape ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.services.errors import Invalid
from cosmos.services.leases import next_seq
from cosmos.version import VERSION
from interfaces.agent_protocol import crons, services
from interfaces.agent_protocol.services import Started, Unprocessable
from interfaces.agent_protocol.translate import StreamTranslator
from interfaces.edge.auth import caller_of
from interfaces.edge.errors import AUTHENTICATE_HEADER, Refusal
from interfaces.edge.parsers import loads, require_json_body
from interfaces.edge.pipeline import Door
from interfaces.edge.runs import wait_for_run
from interfaces.edge.sse import format_event, parse_last_event_id, sse_response, stream_events

CANCEL_WAIT_SECONDS = 30.0


def render(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    """The protocol's error body (``detail``) with the one error shape beside it."""
    body = {
        "detail": refusal.message,
        "error": {"code": refusal.code, "message": refusal.message, "details": refusal.details},
    }
    response = JsonResponse(body, status=refusal.status, headers=dict(refusal.headers))
    if refusal.status == 401:
        response["WWW-Authenticate"] = AUTHENTICATE_HEADER
    return response


DOOR = Door("agent_protocol", render=render, sessions=False)


def render_edge(request: HttpRequest, refusal: Refusal) -> HttpResponse | None:
    """An edge refusal on the door's paths in the protocol's shape (None for other paths)."""
    if not settings.ASTEROS.enable_agent_protocol:
        return None
    base = _base()
    if request.path_info == base or request.path_info.startswith(base + "/"):
        return render(request, refusal)
    return None


def _body(request: HttpRequest) -> Any:
    """The JSON body (None when empty)."""
    if not request.body:
        return None
    require_json_body(request.content_type, request.body)
    try:
        return loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid(f"The body is not valid JSON: {exc}", code="malformed_request") from None


def _json(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False)


def _base() -> str:
    return "/" + settings.ASTEROS.agent_protocol_prefix.strip("/")


def _run_location(started: Started) -> str:
    if started.thread_id is None:
        return f"{_base()}/runs/{started.run_id}"
    return f"{_base()}/threads/{started.thread_id}/runs/{started.run_id}"


# --- streams


async def protocol_parts(started: Started, after: int = 0) -> AsyncIterator[tuple[int | None, tuple[str, Any]]]:
    """``(seq, (event, data))`` of a run's protocol stream, until it ends or pauses. Only the
    last part of a stored event carries its ``seq``; parts up to ``after`` are not yielded."""
    translator = StreamTranslator(started.modes, started.run_id, started.kind, started.before)
    if after <= started.after:
        for part in translator.open():
            yield None, part
    events = follow(started.run_id, after=started.after)
    try:
        async for seq, event in events:
            parts = translator.translate(event)
            paused = translator.status == "interrupted" and translator.error is None
            if paused and await db_call(next_seq, started.run_id) > seq:
                translator.resume()  # a pause answered since: read on, as the run did
            if translator.ended:
                final = None
                if translator.status == "success":
                    final = await db_call(services.thread_messages, started.thread_id)
                parts += translator.close(final)
            if seq > after:
                for index, part in enumerate(parts):
                    yield (seq if index == len(parts) - 1 else None), part
            if translator.ended:
                break
    finally:
        await events.aclose()


def _encode(seq: int | None, part: Any) -> bytes:
    event, data = part
    return format_event(seq, data, event=event)


def _stream(started: Started, after: int = 0) -> HttpResponse:
    stream = stream_events(protocol_parts(started, after), encode=_encode)  # type: ignore[arg-type]
    return sse_response(stream, headers={"Content-Location": _run_location(started)})


async def _wait(started: Started) -> dict:
    """The run's last values (or its error) once it ends or pauses."""
    values: Any = None
    waiting = Started(started.run_id, started.thread_id, started.kind, ("values",), started.before, started.after)
    async for _seq, (event, data) in protocol_parts(waiting):
        if event == "values":
            values = data
        elif event == "error":
            return {**(values or {}), "__error__": data}
    return values or {}


def _last_event_id(request: HttpRequest) -> int:
    try:
        return parse_last_event_id(request.headers.get("Last-Event-ID")) or 0
    except ValueError:
        raise Invalid(
            "Last-Event-ID must be the id of an event of this stream.", code="invalid_last_event_id"
        ) from None


def _not_implemented(what: str):
    async def handler(request: HttpRequest, target: None, principal: Any, **kwargs: Any) -> HttpResponse:
        await db_call(services.not_implemented, what)
        return HttpResponse(status=501)  # not reached

    handler.__name__ = handler.__qualname__ = "unsupported"
    return handler


def unsupported(what: str, methods: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE")):
    """A view that answers 501 for a part of the protocol this server leaves out."""
    return DOOR.view(methods, lambda r: "read" if r.method == "GET" else "run", resolve=False)(_not_implemented(what))


# --- info


@DOOR.view(("GET",), "read", resolve=False)
async def info(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(
        {
            "version": VERSION,
            "langgraph_py_version": None,
            "flags": {"assistants": True, "crons": True, "langsmith": False, "store": False},
        }
    )


# --- assistants


@DOOR.view(("POST",), "read", resolve=False)
async def assistants_search(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(services.search_assistants, _body(request), principal))


@DOOR.view(("POST",), "read", resolve=False)
async def assistants_count(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(services.count_assistants, _body(request), principal))


@DOOR.view(("GET", "PATCH", "DELETE"), lambda r: "read" if r.method == "GET" else "admin", resolve=False)
async def assistant(request: HttpRequest, target: None, principal: Any, assistant_id: str) -> HttpResponse:
    if request.method != "GET":
        await db_call(
            services.not_implemented,
            "Changing or deleting an assistant here (edit agents, stars and workflows through the REST API "
            "or the admin)",
        )
    return _json(await db_call(services.get_assistant, assistant_id, principal))


@DOOR.view(("GET",), "read", resolve=False)
async def assistant_graph(request: HttpRequest, target: None, principal: Any, assistant_id: str) -> HttpResponse:
    return _json(await db_call(services.assistant_graph, assistant_id, principal))


@DOOR.view(("GET",), "read", resolve=False)
async def assistant_schemas(request: HttpRequest, target: None, principal: Any, assistant_id: str) -> HttpResponse:
    return _json(await db_call(services.assistant_schemas, assistant_id, principal))


@DOOR.view(("GET",), "read", resolve=False)
async def assistant_subgraphs(
    request: HttpRequest, target: None, principal: Any, assistant_id: str, namespace: str = ""
) -> HttpResponse:
    await db_call(services.get_assistant, assistant_id, principal)
    return _json({})


@DOOR.view(("POST",), "admin", resolve=False)
async def assistant_latest(request: HttpRequest, target: None, principal: Any, assistant_id: str) -> HttpResponse:
    body = _body(request)
    return _json(
        await db_call(services.set_latest_version, assistant_id, body, caller=caller_of(principal), principal=principal)
    )


@DOOR.view(("POST",), "read", resolve=False)
async def assistant_versions(request: HttpRequest, target: None, principal: Any, assistant_id: str) -> HttpResponse:
    return _json(await db_call(services.assistant_versions, assistant_id, _body(request), principal))


# --- threads


@DOOR.view(("POST",), "run", resolve=False)
async def threads(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(services.create_thread, _body(request)))


@DOOR.view(("POST",), "read", resolve=False)
async def threads_search(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(services.search_threads, _body(request)))


@DOOR.view(("POST",), "read", resolve=False)
async def threads_count(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(services.count_threads, _body(request)))


@DOOR.view(("GET", "PATCH", "DELETE"), lambda r: "read" if r.method == "GET" else "run", resolve=False)
async def thread(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    if request.method == "PATCH":
        return _json(await db_call(services.update_thread, thread_id, _body(request)))
    if request.method == "DELETE":
        await db_call(services.delete_thread, thread_id)
        return HttpResponse(status=204)
    return _json(await db_call(services.get_thread, thread_id))


@DOOR.view(("POST",), "run", resolve=False)
async def thread_copy(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    return _json(await db_call(services.copy_thread, thread_id))


@DOOR.view(("GET", "POST"), lambda r: "read" if r.method == "GET" else "run", resolve=False)
async def thread_state(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    if request.method == "POST":
        return _json(await db_call(services.update_thread_state, thread_id, _body(request)))
    return _json(await db_call(services.thread_state, thread_id))


@DOOR.view(("GET", "POST"), "read", resolve=False)
async def thread_history(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    if request.method == "GET":
        body: Any = {}
        if "limit" in request.GET:
            try:
                body["limit"] = int(request.GET["limit"])
            except ValueError:
                raise Unprocessable("limit must be a whole number.") from None
    else:
        body = _body(request)
    return _json(await db_call(services.thread_history, thread_id, body))


# --- runs


async def _start(request: HttpRequest, principal: Any, thread_id: str | None) -> Started:
    return await db_call(
        services.create_run, thread_id, _body(request), caller=caller_of(principal), principal=principal
    )


@DOOR.view(("GET", "POST"), lambda r: "read" if r.method == "GET" else "run", resolve=False)
async def thread_runs(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    if request.method == "GET":
        return _json(await db_call(services.list_thread_runs, thread_id, request.GET.dict()))
    started = await _start(request, principal, thread_id)
    response = _json(await db_call(services.get_started_run, started.run_id))
    response["Content-Location"] = _run_location(started)
    return response


@DOOR.view(("POST",), "run", resolve=False)
async def thread_runs_stream(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    return _stream(await _start(request, principal, thread_id))


@DOOR.view(("POST",), "run", resolve=False)
async def thread_runs_wait(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    started = await _start(request, principal, thread_id)
    response = _json(await _wait(started))
    response["Content-Location"] = _run_location(started)
    return response


@DOOR.view(("GET", "DELETE"), lambda r: "read" if r.method == "GET" else "run", resolve=False)
async def thread_run(request: HttpRequest, target: None, principal: Any, thread_id: str, run_id: str) -> HttpResponse:
    if request.method == "DELETE":
        await db_call(services.delete_thread_run, thread_id, run_id)
        return HttpResponse(status=204)
    return _json(await db_call(services.get_thread_run, thread_id, run_id))


@DOOR.view(("GET",), "read", resolve=False)
async def thread_run_join(
    request: HttpRequest, target: None, principal: Any, thread_id: str, run_id: str
) -> HttpResponse:
    started = await db_call(services.join_info, thread_id, run_id)
    return _json(await _wait(started))


@DOOR.view(("GET",), "read", resolve=False)
async def thread_run_stream(
    request: HttpRequest, target: None, principal: Any, thread_id: str, run_id: str
) -> HttpResponse:
    modes = [m for m in request.GET.getlist("stream_mode") if m] or None
    after = _last_event_id(request)
    started = await db_call(services.join_info, thread_id, run_id, modes)
    return _stream(started, after)


def _flag(request: HttpRequest, name: str) -> bool:
    raw = request.GET.get(name, "0").strip().lower()
    if raw not in ("0", "1", "true", "false"):
        raise Unprocessable(f"{name} must be 0, 1, true or false.")
    return raw in ("1", "true")


@DOOR.view(("POST",), "run", resolve=False)
async def thread_run_cancel(
    request: HttpRequest, target: None, principal: Any, thread_id: str, run_id: str
) -> HttpResponse:
    wait = _flag(request, "wait")
    action = request.GET.get("action", "interrupt")
    cancelled = await db_call(services.cancel_thread_run, thread_id, run_id, action)
    if not wait and action != "rollback":
        return HttpResponse(status=202)
    await wait_for_run(cancelled, CANCEL_WAIT_SECONDS)
    if action == "rollback":
        await db_call(services.delete_ended_run, cancelled)
    return HttpResponse(status=204)


@DOOR.view(("POST",), "run", resolve=False)
async def runs(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    started = await _start(request, principal, None)
    response = _json(await db_call(services.get_started_run, started.run_id))
    response["Content-Location"] = _run_location(started)
    return response


@DOOR.view(("POST",), "run", resolve=False)
async def runs_stream(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _stream(await _start(request, principal, None))


@DOOR.view(("POST",), "run", resolve=False)
async def runs_wait(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    started = await _start(request, principal, None)
    response = _json(await _wait(started))
    response["Content-Location"] = _run_location(started)
    return response


@DOOR.view(("POST",), "run", resolve=False)
async def runs_cancel(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    action = request.GET.get("action", "interrupt")
    await db_call(services.cancel_runs, _body(request), action)
    return HttpResponse(status=204)


# --- crons (schedules)


@DOOR.view(("POST",), "admin", resolve=False)
async def crons_create(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    body = _body(request)
    return _json(await db_call(crons.create_cron, None, body, caller=caller_of(principal), principal=principal))


@DOOR.view(("POST",), "admin", resolve=False)
async def thread_crons(request: HttpRequest, target: None, principal: Any, thread_id: str) -> HttpResponse:
    body = _body(request)
    return _json(await db_call(crons.create_cron, thread_id, body, caller=caller_of(principal), principal=principal))


@DOOR.view(("POST",), "read", resolve=False)
async def crons_search(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(crons.search_crons, _body(request)))


@DOOR.view(("POST",), "read", resolve=False)
async def crons_count(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json(await db_call(crons.count_crons, _body(request)))


@DOOR.view(("PATCH", "DELETE"), "admin", resolve=False)
async def cron(request: HttpRequest, target: None, principal: Any, cron_id: str) -> HttpResponse:
    if request.method == "PATCH":
        await db_call(services.not_implemented, "Changing a cron (delete it and create another)")
    await db_call(crons.delete_cron, cron_id)
    return HttpResponse(status=204)
