"""``asteros run``: start an agent run and print its events as they arrive.

Embedded mode runs it on this process's own in-process worker; distributed mode enqueues it for the
workers and follows it through the bus, like any other reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, TextIO

from django.conf import settings

from .db import db_call
from .embedded import start_embedded_worker
from .eventlog import follow
from .models import Run, RunStatus
from .runtime.events import EventType
from .services import runs as run_services

CANCEL_WAIT_SECONDS = 15


def render_event(event: dict, out: TextIO) -> None:
    kind = event.get("type")
    if kind == EventType.TEXT_MESSAGE_CONTENT:
        out.write(event.get("delta", ""))
    elif kind == EventType.TEXT_MESSAGE_END:
        out.write("\n")
    elif kind == EventType.TOOL_CALL_START:
        out.write(f"[tool {event.get('toolCallName')}(")
    elif kind == EventType.TOOL_CALL_ARGS:
        out.write(event.get("delta", ""))
    elif kind == EventType.TOOL_CALL_END:
        out.write(")]\n")
    elif kind == EventType.TOOL_CALL_RESULT:
        out.write(f"[result] {event.get('content')}\n")
    elif kind == EventType.RUN_ERROR:
        out.write(f"error: {event.get('code', 'failed')}: {event.get('message')}\n")
    elif kind == EventType.RUN_FINISHED and event.get("outcome") == "cancelled":
        out.write("cancelled\n")
    out.flush()


async def stream_run(agent_id: str, message: str, *, session_id: str | None, out: TextIO) -> int:
    """Run and print; returns the exit code (0 success, 1 failure, 130 cancelled by Ctrl-C)."""
    if not settings.ASTEROS.distributed:
        # Embedded: this process is the worker (a memory:// broker reaches no other process).
        start_embedded_worker(concurrency=8)
    # Ctrl-C sets an event that races the stream, rather than cancelling this task: the stream
    # stops whatever it is awaiting, and no library's SIGINT handler or swallowed cancel is in the way.
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
    run, _ = await db_call(run_services.start_run, "agent", agent_id, message, session_id=session_id, origin="cli")
    run_id = str(run.id)
    last = 0

    async def print_events() -> None:
        nonlocal last
        async for seq, event in follow(run_id):
            last = seq
            render_event(event, out)

    if not await _unless_interrupted(print_events(), interrupted):
        await db_call(run_services.request_cancel, run_id)
        out.write("\ncancelling...\n")
        out.flush()
        # In embedded mode this process is the worker: stay until the run has ended cancelled
        # (a second Ctrl-C stops waiting; the flagged run is then finished by the next reaper).
        interrupted.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                await _unless_interrupted(_print_rest(run_id, last, out), interrupted)
        return 130
    status = await db_call(lambda: Run.objects.values_list("status", flat=True).get(id=run.id))
    return 0 if status == RunStatus.SUCCEEDED else 1


async def _unless_interrupted(work: Coroutine[Any, Any, None], interrupted: asyncio.Event) -> bool:
    """Run ``work`` until it ends (True; its exception is raised) or ``interrupted`` is set (False)."""
    working = asyncio.ensure_future(work)
    waiting = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait({working, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if working.done():
        working.result()
        return True
    working.cancel()
    return False


async def _print_rest(run_id: str, after: int, out: TextIO) -> None:
    async for _seq, event in follow(run_id, after=after):
        render_event(event, out)
