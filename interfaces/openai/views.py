"""The OpenAI-compatible door under ``ASTEROS_OPENAI_PREFIX`` (default ``/v1``): models, Chat
Completions and the Responses API. The edge pipeline checks the method and authorizes the
caller (keys only: ``read`` for GETs, ``run`` for POSTs; the key's quota counts every request);
the views parse, call one service and render. Every refusal is in OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}`` (``errors.render``), on this door only.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from cosmos.db import db_call
from cosmos.services.errors import Invalid, NotFound
from interfaces.edge.auth import caller_of
from interfaces.edge.params import parse_whole_number
from interfaces.edge.parsers import loads, require_json_body
from interfaces.edge.pipeline import Door
from interfaces.edge.runs import require_kind, wait_for_run
from interfaces.edge.sse import format_event, sse_response, stream_events
from interfaces.openai import chat, services
from interfaces.openai.errors import render
from interfaces.openai.translate import (
    InvalidBody,
    chat_messages,
    client_tools,
    flag,
    model_of,
    refuse_unsupported,
    require_object,
    response_messages,
)

OPENAI = Door("openai", render=render, sessions=False)


def _scope(request: HttpRequest) -> str:
    return "read" if request.method in ("GET", "HEAD") else "run"


def _body(request: HttpRequest) -> dict:
    require_json_body(request.content_type, request.body)
    if not request.body:
        raise InvalidBody("The body is empty: send a JSON object.")
    try:
        return require_object(loads(request.body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidBody(f"The body is not valid JSON: {exc}", code="malformed_json") from None


def _json(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _encode(seq: Any, item: Any) -> bytes:
    return format_event(None, item)


def _encode_named(seq: Any, item: Any) -> bytes:
    return format_event(None, item, event=item.get("type") if isinstance(item, dict) else None)


# --- models


@OPENAI.view(("GET", "HEAD"), "read", resolve=False)
async def models(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    return _json({"object": "list", "data": await db_call(services.list_models, principal)})


@OPENAI.view(("GET", "HEAD"), "read", resolve=False)
async def model(request: HttpRequest, target: None, principal: Any, model: str) -> HttpResponse:
    return _json(await db_call(services.model_object_for, model, principal))


# --- chat completions


def _start_chat(body: dict, principal: Any, session_header: str | None):
    name = model_of(body)
    refuse_unsupported(body)
    stream = flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidBody("'stream_options' must be an object.", "stream_options")
    include_usage = bool(stream and options and options.get("include_usage") is True)
    messages = chat_messages(body)
    tools = client_tools(body, flat=False)
    session_id = services.session_name(body.get("user"), "user") or services.session_name(
        session_header, "X-Session-Id"
    )
    found = services.find_model(name, principal)
    services.may_run(principal, found)
    require_kind(found.kind.name, found.kind.label)
    run = services.start(
        found, messages, tools, caller=caller_of(principal), session_id=session_id, api="chat.completions"
    )
    return run, name, stream, include_usage


@OPENAI.view(("POST",), "run", resolve=False)
async def chat_completions(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    body = _body(request)
    run, name, stream, include_usage = await db_call(_start_chat, body, principal, request.headers.get("X-Session-Id"))
    if stream:
        frames = stream_events(chat.chunks(run, name, include_usage), encode=_encode)  # type: ignore[arg-type]
        return sse_response(frames, headers={"X-Run-ID": str(run.id)})
    return _json(await chat.completion(run, name))


# --- responses


def _start_response(body: dict, principal: Any, session_header: str | None):
    name = model_of(body)
    refuse_unsupported(body)
    stream = flag(body, "stream")
    background = flag(body, "background")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidBody("'metadata' must be an object.", "metadata")
    tools = client_tools(body, flat=True)
    found = services.find_model(name, principal)
    services.may_run(principal, found)
    require_kind(found.kind.name, found.kind.label)
    caller = caller_of(principal)
    previous_id = body.get("previous_response_id")
    session_id = services.session_name(body.get("user"), "user") or services.session_name(
        session_header, "X-Session-Id"
    )
    if previous_id is not None:
        if not isinstance(previous_id, str):
            raise InvalidBody("'previous_response_id' must be a string.", "previous_response_id")
        try:
            previous = services.find_response(previous_id, principal, caller)
        except NotFound as exc:
            raise InvalidBody(str(exc.message), "previous_response_id", "previous_response_not_found") from None
        session_id, history = services.continue_from(previous)
        messages = response_messages(body, history)
    else:
        messages = response_messages(body)
    if session_id is None:
        # Every response has a session, so that a later previous_response_id finds its conversation.
        session_id = f"resp_{services.uuid.uuid4().hex}"
    extra = {
        "background": background,
        "previous_response_id": previous_id,
        "instructions": body.get("instructions"),
        "metadata": metadata or {},
    }
    run = services.start(found, messages, tools, caller=caller, session_id=session_id, api="responses", metadata=extra)
    return run, stream, background


@OPENAI.view(("POST",), "run", resolve=False)
async def responses(request: HttpRequest, target: None, principal: Any) -> HttpResponse:
    body = _body(request)
    run, stream, background = await db_call(_start_response, body, principal, request.headers.get("X-Session-Id"))
    if stream:
        return _response_stream(run, -1)
    if background:
        return _json(await services.response_snapshot(run))
    return _json(await services.final_response(run))


async def _numbered(run, starting_after: int):
    async for item in services.response_events(run, starting_after):
        yield item["sequence_number"], item


def _response_stream(run, starting_after: int) -> HttpResponse:
    frames = stream_events(_numbered(run, starting_after), encode=_encode_named)
    return sse_response(frames, headers={"X-Run-ID": str(run.id)})


def _starting_after(request: HttpRequest) -> int:
    raw = request.GET.get("starting_after")
    if raw is None or raw == "":
        return -1
    try:
        return parse_whole_number(raw)
    except ValueError:
        raise InvalidBody("starting_after must be a sequence number.", "starting_after") from None


@OPENAI.view(("GET", "DELETE"), _scope, resolve=False)
async def response(request: HttpRequest, target: None, principal: Any, response_id: str) -> HttpResponse:
    if request.method == "DELETE":
        raise Invalid("Responses are runs and are kept; they cannot be deleted here.", code="unsupported_operation")
    run = await db_call(services.find_response, response_id, principal, caller_of(principal))
    stream = request.GET.get("stream", "").lower()
    if stream not in ("", "true", "false"):
        raise InvalidBody("stream must be true or false.", "stream")
    if stream == "true":
        return _response_stream(run, _starting_after(request))
    return _json(await services.response_snapshot(run))


@OPENAI.view(("POST",), "run", resolve=False)
async def cancel_response(request: HttpRequest, target: None, principal: Any, response_id: str) -> HttpResponse:
    run = await db_call(services.find_response, response_id, principal, caller_of(principal))
    run = await db_call(services.cancel, run)
    await wait_for_run(str(run.id), 10.0)
    run = await db_call(services.run_row, str(run.id))
    return _json(await services.response_snapshot(run))


@OPENAI.view(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"), "read", resolve=False)
async def not_found(request: HttpRequest, target: None, principal: Any, rest: str = "") -> HttpResponse:
    """Anything else under the prefix (embeddings, images, audio, files...): 404 in this door's shape."""
    raise NotFound(f"{request.path} is not served: this door serves models, chat completions and responses.")
