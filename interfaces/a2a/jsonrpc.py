"""The JSON-RPC 2.0 binding (A2A 1.0, section 9): one POST endpoint per agent, PascalCase methods.

``dispatch`` parses and validates one request and calls the shared operations. It returns the
``result`` of a unary method, or an async iterator of ``StreamResponse`` payloads for the two
streaming methods (the view frames those as SSE, each ``data:`` line one JSON-RPC response).
Errors are ``A2AError`` with the spec's codes; the view renders them with the request's id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from interfaces.a2a import push, services
from interfaces.a2a.errors import (
    A2AError,
    InvalidParamsError,
    InvalidRequestError,
    JSONParseError,
    MethodNotFoundError,
    PermissionDeniedError,
    UnsupportedOperationError,
)
from interfaces.a2a.protocol import (
    field_value,
    optional_int,
    parse_list_params,
    parse_push_config,
    parse_push_config_ref,
    parse_push_list_params,
    parse_send_params,
    require_params,
    task_id_param,
)
from interfaces.a2a.services import Caller
from interfaces.edge.auth import principal_allows
from interfaces.edge.parsers import loads
from interfaces.edge.targets import Target

Result = dict[str, Any] | AsyncIterator[dict[str, Any]]
Handler = Callable[[Target, Caller, Any], Awaitable[Result]]
READ_METHODS = frozenset(
    {"GetTask", "ListTasks", "SubscribeToTask", "GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs"}
)
STREAMING_METHODS = frozenset({"SendStreamingMessage", "SubscribeToTask"})


@dataclass(frozen=True)
class Call:
    """A parsed JSON-RPC request."""

    id: str | int | float | None
    method: str
    params: Any


def parse_body(body: bytes) -> Call:
    """Parse the HTTP body into one request; raise -32700 / -32600 with the id when known."""
    try:
        data = loads(body.decode("utf-8") if body else "")
    except (ValueError, UnicodeDecodeError) as exc:
        raise JSONParseError(f"Invalid JSON payload: {exc}") from None
    if isinstance(data, list):
        raise InvalidRequestError("Batch requests are not supported; send one request per HTTP request.")
    if not isinstance(data, dict):
        raise InvalidRequestError("The request must be a JSON-RPC 2.0 request object.")
    request_id = data.get("id")
    call = Call(request_id if _valid_id(request_id) else None, "", None)
    if data.get("jsonrpc") != "2.0":
        raise _with_id(InvalidRequestError("'jsonrpc' must be \"2.0\"."), call)
    if "id" not in data or not _valid_id(request_id):
        raise _with_id(InvalidRequestError("'id' is required and must be a string or a number."), call)
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise _with_id(InvalidRequestError("'method' must be a non-empty string."), call)
    return Call(request_id, method, data.get("params"))


def _valid_id(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _with_id(error: A2AError, call: Call) -> A2AError:
    error.request_id = call.id
    return error


def required_scope(method: str) -> str:
    return "read" if method in READ_METHODS else "run"


async def _send(target: Target, caller: Caller, params: Any) -> Result:
    return await services.send_message(target, caller, parse_send_params(params))


async def _stream(target: Target, caller: Caller, params: Any) -> Result:
    return await services.send_streaming_message(target, caller, parse_send_params(params))


async def _get(target: Target, caller: Caller, params: Any) -> Result:
    params = require_params(params)
    history = optional_int(field_value(params, "historyLength"), "historyLength")
    return await services.get_task(target, caller, task_id_param(params), history)


async def _list(target: Target, caller: Caller, params: Any) -> Result:
    return await services.list_tasks(target, caller, parse_list_params(params))


async def _cancel(target: Target, caller: Caller, params: Any) -> Result:
    params = require_params(params)
    return await services.cancel_task(target, caller, task_id_param(params))


async def _subscribe(target: Target, caller: Caller, params: Any) -> Result:
    params = require_params(params)
    return await services.subscribe(target, caller, task_id_param(params))


async def _push_create(target: Target, caller: Caller, params: Any) -> Result:
    config = parse_push_config(params)
    if not config.task_id:
        raise InvalidParamsError("'taskId' (the task id) is required.", field_violations=[("taskId", "is required")])
    return await push.create_config(target, caller, config.task_id, config)


async def _push_get(target: Target, caller: Caller, params: Any) -> Result:
    return await push.get_config(target, caller, parse_push_config_ref(params))


async def _push_list(target: Target, caller: Caller, params: Any) -> Result:
    return await push.list_configs(target, caller, parse_push_list_params(params))


async def _push_delete(target: Target, caller: Caller, params: Any) -> Result:
    return await push.delete_config(target, caller, parse_push_config_ref(params))


async def _extended_card(target: Target, caller: Caller, params: Any) -> Result:
    raise UnsupportedOperationError("This agent has no extended agent card (capabilities.extendedAgentCard is false).")


METHODS: dict[str, Handler] = {
    "SendMessage": _send,
    "SendStreamingMessage": _stream,
    "GetTask": _get,
    "ListTasks": _list,
    "CancelTask": _cancel,
    "SubscribeToTask": _subscribe,
    "GetExtendedAgentCard": _extended_card,
    "CreateTaskPushNotificationConfig": _push_create,
    "GetTaskPushNotificationConfig": _push_get,
    "ListTaskPushNotificationConfigs": _push_list,
    "DeleteTaskPushNotificationConfig": _push_delete,
}


async def dispatch(target: Target, caller: Caller, call: Call) -> Result:
    handler = METHODS.get(call.method)
    if handler is None:
        raise MethodNotFoundError(
            f"Method {call.method!r} not found; this agent answers {', '.join(sorted(METHODS))}.",
            metadata={"method": call.method},
        )
    scope = required_scope(call.method)
    if scope != "read" and not _allows(caller, scope):
        raise PermissionDeniedError(f"{call.method} needs an API key with the {scope!r} scope.")
    return await handler(target, caller, call.params)


def _allows(caller: Caller, scope: str) -> bool:
    return not settings.ASTEROS.enable_auth or principal_allows(caller.principal, scope)
