"""Starting a run from a RunAgentInput, and its AG-UI event stream. Used by the SSE view and the
websocket consumer alike: one pipeline, two transports.

- ``threadId`` is the ``Session`` (created on first use); ``runId`` is the ``Run``: a UUID
  ``runId`` is the run's id, any other string is kept in ``metadata["agui"]``. Posting the same
  ``runId`` again attaches to that run instead of starting another (idempotency key
  ``agui:<runId>`` per caller), so a client that lost its stream can read it again.
- The thread's state: the input's ``state`` when sent (and neither null nor ``{}``, which is
  what a client with no state yet sends) is the truth and is saved on the session; otherwise
  the session's saved state is used, so a reloaded page gets its thread's state back. It opens the stream as
  ``STATE_SNAPSHOT``; whatever the run's own ``STATE_SNAPSHOT`` / ``STATE_DELTA`` make of it
  is saved on the session when the run ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, Sum

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.models import Run, Session
from cosmos.services.errors import Conflict
from cosmos.services.runs import start_run
from interfaces.agui.input import RunAgentInput, to_internal_messages
from interfaces.agui.translate import TERMINAL_TYPES, AGUITranslator

ORIGIN = "agui"
MAX_DEPTH = 8  # how far down child runs are counted for usage


@dataclass(frozen=True)
class AGUIRun:
    """A started (or re-attached) run and what its AG-UI stream needs to know."""

    run_id: str  # the AsterOS run (a UUID)
    thread_id: str
    agui_run_id: str  # the client's runId
    parent_run_id: str | None
    state: Any  # the thread state the stream opens with
    created: bool


def _as_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def saved_state(thread_id: str) -> Any:
    state = Session.objects.filter(id=thread_id).values_list("state", flat=True).first()
    return {} if state is None else state


def save_state(thread_id: str, state: Any) -> None:
    Session.objects.filter(id=thread_id).update(state=state)


def workflow_state(state: Any) -> Any:
    """A workflow reads ``input["state"]`` as its own state. A client that sends back the
    document the workflow published (``{"input", "state", "steps"}``) means its ``state`` part."""
    if isinstance(state, dict) and {"state", "steps"} <= state.keys() and isinstance(state["state"], dict):
        return state["state"]
    return state


def start_agui_run(kind: str, target: str, parsed: RunAgentInput, *, caller: str) -> AGUIRun:
    """Create the run (or find the one this ``runId`` already started). Raises ServiceError."""
    state = parsed.state if parsed.has_state else saved_state(parsed.thread_id)
    raw_input: dict[str, Any] = {
        "messages": to_internal_messages(parsed, state),
        "tools": parsed.tools,
        "state": workflow_state(state) if kind == "workflow" else state,
    }
    agui: dict[str, Any] = {"threadId": parsed.thread_id, "runId": parsed.run_id}
    if parsed.parent_run_id:
        agui["parentRunId"] = parsed.parent_run_id
    if parsed.context:
        agui["context"] = parsed.context
    if parsed.forwarded_props not in (None, {}):
        agui["forwardedProps"] = parsed.forwarded_props
    run, created = start_run(
        kind,
        target,
        raw_input,
        session_id=parsed.thread_id,
        origin=ORIGIN,
        caller=caller,
        run_id=_as_uuid(parsed.run_id),
        idempotency_key=f"agui:{parsed.run_id}",
        metadata={"agui": agui},
    )
    if not created:
        return attach(run, parsed, kind, target)
    if parsed.has_state:
        save_state(parsed.thread_id, state)
    return AGUIRun(str(run.id), parsed.thread_id, parsed.run_id, parsed.parent_run_id, state, True)


def attach(run: Run, parsed: RunAgentInput, kind: str, target: str) -> AGUIRun:
    """The same ``runId`` again: its stream, if it is the same thread's run of the same target."""
    agui = (run.metadata or {}).get("agui") or {}
    if run.origin != ORIGIN or agui.get("threadId") != parsed.thread_id or (run.kind, run.target) != (kind, target):
        raise Conflict(
            f"runId {parsed.run_id!r} already names another run; send a new runId for a new run.",
            code="run_id_in_use",
        )
    state = (run.input or {}).get("state", {})
    return AGUIRun(str(run.id), parsed.thread_id, parsed.run_id, agui.get("parentRunId"), state, False)


def run_usage(run_id: str) -> list[dict]:
    """Token usage of the run and its child runs (subagents' calls are the run's), 1.0 shape."""
    ids = [run_id]
    frontier = [run_id]
    for _ in range(MAX_DEPTH):
        frontier = [str(i) for i in Run.objects.filter(parent_id__in=frontier).values_list("id", flat=True)]
        if not frontier:
            break
        ids += frontier
    totals = Run.objects.filter(Q(id__in=ids)).aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"))
    input_tokens, output_tokens = totals["i"] or 0, totals["o"] or 0
    if not input_tokens and not output_tokens:
        return []  # no counts at all: say nothing rather than report zeros we do not know
    return [{"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}]


async def agui_events(started: AGUIRun, after: int = 0) -> AsyncIterator[tuple[int | None, dict]]:
    """``(seq, event)`` of the run's AG-UI stream, live until its terminal event.

    ``RUN_STARTED`` and ``STATE_SNAPSHOT`` go out at once, whether or not a worker has claimed
    the run yet. One stored event may become several wire events; only the last of them carries
    the stored ``seq`` (the others ``None``), so resuming after a ``seq`` repeats nothing and
    loses nothing. Events up to ``after`` are still translated (the translator needs them) but
    not yielded.
    """
    translator = AGUITranslator(
        started.thread_id, started.agui_run_id, state=started.state, parent_run_id=started.parent_run_id
    )
    if after == 0:
        for item in translator.open(started.run_id):
            yield None, item
    async for seq, event in follow(started.run_id, after=0):
        if event.get("type") in TERMINAL_TYPES:
            translator.usage = await db_call(run_usage, started.run_id) or None
        wire = translator.translate(event)
        if seq <= after:
            continue
        for index, item in enumerate(wire):
            yield (seq if index == len(wire) - 1 else None), item
    if translator.state_changed:
        await db_call(save_state, started.thread_id, translator.state)
