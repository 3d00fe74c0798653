"""The AG-UI 1.0 event vocabulary, plus the SUBAGENT_* events used for child runs.

Events are plain dicts with camelCase keys (the wire format), so they can be persisted and
published without a conversion step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
