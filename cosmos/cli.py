"""``asteros run``: start an agent run and print its events as they arrive.

Embedded mode runs it on this process's own in-process worker; distributed mode enqueues it for the
workers and follows it through the bus, like any other reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TextIO

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
    # Ctrl-C cancels this task, whatever SIGINT handler a library (the in-process Celery worker)
    # installed meanwhile: a bare KeyboardInterrupt would skip the cancel below.
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, asyncio.current_task().cancel)
    starting = asyncio.ensure_future(
        db_call(run_services.start_run, "agent", agent_id, message, session_id=session_id, origin="cli")
    )
    last = 0
    try:
        run, _ = await asyncio.shield(starting)
        async for seq, event in follow(str(run.id)):
            last = seq
            render_event(event, out)
    except (asyncio.CancelledError, KeyboardInterrupt):
        run, _ = await starting  # a Ctrl-C during the start still cancels the run it created
        run_id = str(run.id)
        await db_call(run_services.request_cancel, run_id)
        out.write("\ncancelling...\n")
        out.flush()
        # In embedded mode this process is the worker: stay until the run has ended cancelled
        # (a second Ctrl-C stops waiting; the flagged run is then finished by the next reaper).
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                async for _seq, event in follow(run_id, after=last):
                    render_event(event, out)
        return 130
    status = await db_call(lambda: Run.objects.values_list("status", flat=True).get(id=run.id))
    return 0 if status == RunStatus.SUCCEEDED else 1
