"""A ``tools/call``: a normal run (origin ``mcp``) through the run service, followed to its end.

- The run starts like every door's (``cosmos.services.runs.start_run``: the key's run quotas,
  the session's turn), and the call follows its events (``cosmos.eventlog.follow``): every text token
  is sent as a progress notification (``message`` holds the token, ``progress`` counts them)
  when the client asked for progress.
- The result is the final answer as text, with ``structuredContent`` (and ``_meta``) holding the
  run id, its status and its links. A failed or cancelled run is an ``isError`` result with the
  reason; a run that waits for a person is a result saying so, with the link to resume it.
- The call being cancelled (the client closed the stream) cancels the run
  (``cosmos.services.runs.request_cancel``); a handshake-era ``notifications/cancelled`` arrives
  on a request of its own (``cancel_by_request_id``, called by the gate).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
from django.urls import reverse

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.kinds import find_kind
from cosmos.models import ACTIVE_STATUSES, Run, RunStatus
from cosmos.runtime.events import TERMINAL_EVENT_TYPES
from cosmos.services.interrupts import is_pause_event
from cosmos.services.runs import get_run, request_cancel, start_run
from interfaces.edge.auth import caller_of
from interfaces.edge.links import API_NAMESPACE, base_urls, run_links
from interfaces.edge.runs import require_kind
from interfaces.mcp.catalogue import MCPTool

ORIGIN = "mcp"
RUN_META_KEY = "dev.asteros/run"  # where ``_meta`` carries the run of a result
Progress = Callable[[float, str], Awaitable[None]]


class Site:
    """What the link helpers read of a request (``scheme``, ``get_host``), from an ASGI scope."""

    def __init__(self, scheme: str, host: str) -> None:
        self.scheme = scheme
        self._host = host

    def get_host(self) -> str:
        return self._host


async def call_tool(
    tool: MCPTool,
    arguments: dict[str, Any],
    principal: Any,
    *,
    site: Site,
    request_id: Any = None,
    progress: Progress | None = None,
) -> types.CallToolResult:
    run_input, session_id = tool.run_input(arguments)
    kind = find_kind(tool.target.kind)
    require_kind(tool.target.kind, kind.label if kind else tool.target.kind)
    metadata = {"mcp": {"tool": tool.name, **({"requestId": str(request_id)} if request_id is not None else {})}}
    run, _ = await db_call(
        start_run,
        tool.target.kind,
        tool.target.id,
        run_input,
        session_id=session_id,
        origin=ORIGIN,
        caller=caller_of(principal),
        metadata=metadata,
    )
    run_id = str(run.id)
    try:
        paused = await _follow(run_id, progress)
    except BaseException:
        # The client went away or cancelled: the run must not go on for nobody.
        with anyio.CancelScope(shield=True):
            await db_call(request_cancel, run_id)
        raise
    return result_of(await db_call(get_run, run_id), site, paused=paused)


async def _follow(run_id: str, progress: Progress | None) -> bool:
    """Follow the run to its end (False) or to a pause for people (True), sending its tokens."""
    tokens = 0
    async for _seq, event in follow(run_id):
        if event.get("type") == "TEXT_MESSAGE_CONTENT" and progress is not None and event.get("delta"):
            tokens += 1
            await progress(tokens, event["delta"])
        if is_pause_event(event):
            return True
        if event.get("type") in TERMINAL_EVENT_TYPES:
            return False
    return False


def cancel_by_request_id(caller: str, request_id: Any) -> int:
    """A handshake-era client's ``notifications/cancelled``. Stateless, it arrives on a request of
    its own, maybe at another process than the call: the call's run is found by the caller and the
    request id it recorded (a caller cancels only its own calls). Runs ORM queries."""
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        return 0
    ids = Run.objects.filter(
        origin=ORIGIN, caller=caller, status__in=ACTIVE_STATUSES, metadata__mcp__requestId=str(request_id)
    ).values_list("id", flat=True)
    return sum(request_cancel(run_id) for run_id in list(ids))


def answer_text(output: Any) -> str:
    if output is None:
        return ""
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)


def reason_of(run: Run) -> str:
    error = run.error
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    return str(error or run.status)


def result_of(run: Run, site: Site, *, paused: bool = False) -> types.CallToolResult:
    """The ``CallToolResult`` of a run that is over, or that ``paused`` for a person (it may be
    going on already, if someone answered at once: the call says where to read it)."""
    http, _ = base_urls(site)
    links = run_links(site, run.id)
    summary: dict[str, Any] = {"run_id": str(run.id), "status": run.status, "links": links}
    if run.status == RunStatus.SUCCEEDED:
        text, is_error = answer_text(run.output), False
        summary["output"] = run.output
    elif paused or run.status == RunStatus.INTERRUPTED:
        links["resume"] = http + reverse(f"{API_NAMESPACE}:runs-resume", kwargs={"id": str(run.id)})
        text, is_error = (
            f"Run {run.id} is waiting for a person (an approval or an answer). "
            f"Resolve it with POST {links['resume']}, then read the answer at {links['self']}.",
            False,
        )
    elif run.status == RunStatus.CANCELLED:
        text, is_error = f"Run {run.id} was cancelled.", True
    else:
        summary["error"] = run.error
        text, is_error = f"Run {run.id} failed: {reason_of(run)}", True
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=summary,
        is_error=is_error,
        _meta={RUN_META_KEY: {"id": str(run.id), "status": run.status, "links": links}},
    )


def refused(code: str, message: str, details: Any = None) -> types.CallToolResult:
    """A call the server would not start (bad arguments, a quota, a disabled definition): an
    ``isError`` result, so a model calling the tool reads why and can do better."""
    error = {"code": code, "message": message, **({"details": details} if details is not None else {})}
    return types.CallToolResult(
        content=[types.TextContent(text=message)], structured_content={"error": error}, is_error=True
    )
