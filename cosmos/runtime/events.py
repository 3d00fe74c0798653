"""The AG-UI 1.0 event vocabulary, plus the SUBAGENT_* events used for child runs.

Events are plain dicts with camelCase keys (the wire format), so they can be persisted and
published without a conversion step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    # Run lifecycle (owned by the durable executor, never by the agent loop)
    RUN_STARTED = "RUN_STARTED"
    RUN_FINISHED = "RUN_FINISHED"
    RUN_ERROR = "RUN_ERROR"
    STEP_STARTED = "STEP_STARTED"
    STEP_FINISHED = "STEP_FINISHED"
    # Text messages
    TEXT_MESSAGE_START = "TEXT_MESSAGE_START"
    TEXT_MESSAGE_CONTENT = "TEXT_MESSAGE_CONTENT"
    TEXT_MESSAGE_END = "TEXT_MESSAGE_END"
    TEXT_MESSAGE_CHUNK = "TEXT_MESSAGE_CHUNK"
    # Thinking
    THINKING_START = "THINKING_START"
    THINKING_END = "THINKING_END"
    THINKING_TEXT_MESSAGE_START = "THINKING_TEXT_MESSAGE_START"
    THINKING_TEXT_MESSAGE_CONTENT = "THINKING_TEXT_MESSAGE_CONTENT"
    THINKING_TEXT_MESSAGE_END = "THINKING_TEXT_MESSAGE_END"
    # Tool calls
    TOOL_CALL_START = "TOOL_CALL_START"
    TOOL_CALL_ARGS = "TOOL_CALL_ARGS"
    TOOL_CALL_END = "TOOL_CALL_END"
    TOOL_CALL_CHUNK = "TOOL_CALL_CHUNK"
    TOOL_CALL_RESULT = "TOOL_CALL_RESULT"
    # State and messages
    STATE_SNAPSHOT = "STATE_SNAPSHOT"
    STATE_DELTA = "STATE_DELTA"
    MESSAGES_SNAPSHOT = "MESSAGES_SNAPSHOT"
    ACTIVITY_SNAPSHOT = "ACTIVITY_SNAPSHOT"
    ACTIVITY_DELTA = "ACTIVITY_DELTA"
    # Escape hatches
    RAW = "RAW"
    CUSTOM = "CUSTOM"
    # AsterOS additions: a child run (star member, workflow step) seen from its parent
    SUBAGENT_STARTED = "SUBAGENT_STARTED"
    SUBAGENT_FINISHED = "SUBAGENT_FINISHED"
    SUBAGENT_ERROR = "SUBAGENT_ERROR"


TERMINAL_EVENT_TYPES: frozenset[str] = frozenset({EventType.RUN_FINISHED, EventType.RUN_ERROR})

Event = dict[str, Any]
Emit = Callable[[dict], Awaitable[None]]


def make_event(type_: str, **fields: Any) -> dict:
    """Build one wire event. Callers pass camelCase keys; None values are dropped (no nulls on the wire)."""
    event = {"type": str(type_)}  # plain str, not the enum, so every serializer treats it alike
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event


# What opens a stream inside a run, what closes it, and the key that pairs them.
_PAIRED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (EventType.TEXT_MESSAGE_START, (EventType.TEXT_MESSAGE_END,), "messageId"),
    (EventType.TOOL_CALL_START, (EventType.TOOL_CALL_END,), "toolCallId"),
    (EventType.STEP_STARTED, (EventType.STEP_FINISHED,), "stepName"),
    (EventType.SUBAGENT_STARTED, (EventType.SUBAGENT_FINISHED, EventType.SUBAGENT_ERROR), "runId"),
)
PAIRED_EVENT_TYPES: frozenset[str] = frozenset(
    str(kind) for opening, closing, _ in _PAIRED for kind in (opening, *closing)
)
ABANDONED_SUBAGENT = "The run ended before this subagent finished."


def closing_events(events: Iterable[dict]) -> list[dict]:
    """The END events for whatever ``events`` (a run's log, in order) left open: text messages,
    tool calls, steps and subagents. A log continued after a lost attempt, or ended by someone
    else than the attempt that opened them, appends these first so every stream is well formed."""
    open_items: dict[str, dict[str, None]] = {str(opening): {} for opening, _, _ in _PAIRED}
    closes = {str(kind): str(opening) for opening, closing, _ in _PAIRED for kind in closing}
    keys = {str(opening): key for opening, _, key in _PAIRED}
    for event in events:
        kind = event.get("type")
        opening = kind if kind in open_items else closes.get(kind)
        if opening is None:
            continue
        key = keys[opening]
        item = event.get(key) or (event.get("subagentRunId") if opening == EventType.SUBAGENT_STARTED else None)
        if not isinstance(item, str):
            continue
        if kind == opening:
            open_items[opening][item] = None
        else:
            open_items[opening].pop(item, None)
    out: list[dict] = []
    for item in open_items[EventType.TEXT_MESSAGE_START]:
        out.append(make_event(EventType.TEXT_MESSAGE_END, messageId=item))
    for item in open_items[EventType.TOOL_CALL_START]:
        out.append(make_event(EventType.TOOL_CALL_END, toolCallId=item))
    for item in open_items[EventType.STEP_STARTED]:
        out.append(make_event(EventType.STEP_FINISHED, stepName=item))
    for item in open_items[EventType.SUBAGENT_STARTED]:
        out.append(make_event(EventType.SUBAGENT_ERROR, runId=item, message=ABANDONED_SUBAGENT, code="abandoned"))
    return out
