"""The Agent Protocol's vocabulary, translated to and from ours. Pure: no database.

- Messages: the runtime's (``{"role", "content", "tool_calls"?, "tool_call_id"?}``) and
  LangChain's message dicts (``{"type": "human" | "ai" | "tool" | "system", "content", ...}``),
  both ways (``to_langchain``, ``from_langchain``).
- Run statuses: ours in the protocol's names (``protocol_status``).
- The run's AG-UI events as the protocol's stream parts (``StreamTranslator``): one
  ``(event, data)`` pair per part, for the stream modes the client asked for.
"""

from __future__ import annotations

import json
from typing import Any

from cosmos.models import RunStatus
from cosmos.runtime.events import EventType
from cosmos.services.interrupts import is_pause_event

STREAM_MODES = ("values", "messages", "messages-tuple", "updates", "events", "custom", "debug", "tasks", "checkpoints")
# Accepted so that clients asking for them work; nothing is sent for them (docs/agent-protocol.md).
SILENT_MODES = ("debug", "tasks", "checkpoints")
INTERRUPT_KEY = "__interrupt__"

_STATUS = {
    RunStatus.QUEUED: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.SUCCEEDED: "success",
    RunStatus.FAILED: "error",
    RunStatus.CANCELLED: "interrupted",
    RunStatus.INTERRUPTED: "interrupted",
}
PROTOCOL_STATUSES = ("pending", "running", "success", "error", "interrupted", "timeout")


def protocol_status(status: str, error: Any = None) -> str:
    """A run's status in the protocol's names; a failure whose code says time ran out is ``timeout``."""
    if status == RunStatus.FAILED and isinstance(error, dict) and "timeout" in str(error.get("code", "")):
        return "timeout"
    return _STATUS.get(status, "pending")


def our_statuses(status: str) -> list[str]:
    """The stored statuses behind one protocol status (a filter)."""
    if status == "timeout":
        return [RunStatus.FAILED]
    return [ours for ours, theirs in _STATUS.items() if theirs == status]


# --- messages


def _text(content: Any) -> str:
    """LangChain content (text, or a list of parts) as text; parts that are not text are dropped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    return json.dumps(content, ensure_ascii=False)


def _base(kind: str, content: Any, message_id: str) -> dict:
    return {
        "type": kind,
        "content": content,
        "id": message_id,
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {},
    }


def ai_message(content: str, message_id: str, tool_calls: list[dict] | None = None) -> dict:
    return {
        **_base("ai", content, message_id),
        "tool_calls": tool_calls or [],
        "invalid_tool_calls": [],
        "usage_metadata": None,
        "example": False,
    }


def tool_message(content: Any, message_id: str, tool_call_id: str, *, error: bool = False) -> dict:
    return {
        **_base("tool", _text(content), message_id),
        "tool_call_id": tool_call_id,
        "status": "error" if error else "success",
        "artifact": None,
    }


def tool_call(name: str, args: Any, call_id: str) -> dict:
    return {"name": name, "args": args if isinstance(args, dict) else {}, "id": call_id, "type": "tool_call"}


def to_langchain(message: dict, message_id: str) -> dict:
    """One runtime message as a LangChain message dict."""
    role = message.get("role")
    content = message.get("content")
    if role == "assistant":
        calls = [
            tool_call(str(call.get("name", "")), call.get("arguments"), str(call.get("id", "")))
            for call in message.get("tool_calls") or ()
            if isinstance(call, dict)
        ]
        return ai_message(_text(content), message_id, calls)
    if role == "tool":
        return tool_message(
            content, message_id, str(message.get("tool_call_id", "")), error=bool(message.get("is_error"))
        )
    kind = {"user": "human", "system": "system"}.get(str(role), "human")
    return {**_base(kind, _text(content), message_id), "example": False}


def messages_to_langchain(messages: list, prefix: str) -> list[dict]:
    """The runtime's messages as LangChain's, ids ``<prefix>-<index>`` (stable for a thread)."""
    return [to_langchain(m, f"{prefix}-{index}") for index, m in enumerate(messages) if isinstance(m, dict)]


_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
}


class InvalidMessage(ValueError):
    """A message the door cannot take (the service turns it into a 422)."""


def from_langchain(message: Any) -> dict:
    """A message as a client sends it (LangChain dict, ``[role, content]`` pair or text) as a
    runtime message. Raises ``InvalidMessage``."""
    if isinstance(message, str):
        return {"role": "user", "content": message}
    if isinstance(message, list | tuple) and len(message) == 2 and isinstance(message[0], str):
        message = {"role": message[0], "content": message[1]}
    if not isinstance(message, dict):
        raise InvalidMessage("A message is an object with role (or type) and content, a [role, content] pair or text.")
    kind = message.get("role", message.get("type"))
    role = _ROLES.get(kind) if isinstance(kind, str) else None
    if role is None:
        raise InvalidMessage(f"Unknown message role {kind!r}; use one of {', '.join(sorted(_ROLES))}.")
    content = _text(message.get("content"))
    if role == "assistant":
        calls = []
        for call in message.get("tool_calls") or ():
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise InvalidMessage("A tool call has a name, args and an id.")
            args = call.get("args", call.get("arguments", {}))
            calls.append({"id": str(call.get("id") or ""), "name": call["name"], "arguments": args or {}})
        out: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            out["tool_calls"] = calls
        return out
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidMessage("A tool message needs tool_call_id.")
        return {
            "role": "tool",
            "tool_call_id": call_id,
            "content": content,
            "is_error": message.get("status") == "error",
        }
    return {"role": role, "content": content}


# --- interrupts


def interrupt_value(interrupt: dict) -> dict:
    """One of our interrupts (``interrupts.describe`` or the pause event's entry) as the
    protocol's ``{"value", "id"}``."""
    value = {"kind": interrupt.get("kind"), **(interrupt.get("request") or {})}
    if interrupt.get("runId"):
        value["run_id"] = interrupt["runId"]
    if interrupt.get("expiresAt"):
        value["expires_at"] = interrupt["expiresAt"]
    return {"value": value, "id": str(interrupt.get("id"))}


# --- the stream


def _node(kind: str) -> str:
    return kind


class StreamTranslator:
    """A run's stored AG-UI events as the protocol's stream parts.

    It also keeps the thread's values as the run makes them (``values``): the messages before
    the run, then each message as it completes. ``final`` is set by the caller at the end (the
    thread's saved messages), when the run belongs to a thread."""

    def __init__(self, modes: tuple[str, ...], run_id: str, kind: str, before: list[dict]) -> None:
        self.modes = modes
        self.run_id = run_id
        self.node = _node(kind)
        self.messages: list[dict] = list(before)
        self.texts: dict[str, str] = {}
        self.calls: dict[str, dict] = {}  # toolCallId -> {"name", "args", "parent"}
        self.announced: set[str] = set()
        self.interrupts: list[dict] = []
        self.error: dict | None = None
        self.result: Any = None
        self.ended = False  # the terminal event or a pause: this protocol run is over
        self.status: str | None = None

    @property
    def metadata(self) -> dict:
        return {"run_id": self.run_id, "langgraph_node": self.node, "langgraph_step": 1}

    def values(self) -> dict:
        values: dict[str, Any] = {"messages": list(self.messages)}
        if self.interrupts:
            values[INTERRUPT_KEY] = list(self.interrupts)
        return values

    def open(self) -> list[tuple[str, Any]]:
        parts: list[tuple[str, Any]] = [("metadata", {"run_id": self.run_id, "attempt": 1})]
        if "values" in self.modes:
            parts.append(("values", self.values()))
        return parts

    def close(self, final_messages: list[dict] | None = None) -> list[tuple[str, Any]]:
        """The parts that end the stream: the last values (the thread's, when given)."""
        if final_messages is not None:
            self.messages = list(final_messages)
        parts: list[tuple[str, Any]] = []
        if self.error is not None:
            parts.append(("error", self.error))
        elif "values" in self.modes:
            parts.append(("values", self.values()))
        return parts

    def resume(self) -> None:
        """A pause that was answered (its run went on): the stream goes on with it."""
        self.ended = False
        self.status = None
        self.interrupts = []

    def _want(self, mode: str) -> bool:
        return mode in self.modes

    def _complete(self, message: dict, node: str) -> list[tuple[str, Any]]:
        self.messages.append(message)
        parts: list[tuple[str, Any]] = []
        if self._want("messages"):
            parts.append(("messages/complete", [message]))
        if self._want("updates"):
            parts.append(("updates", {node: {"messages": [message]}}))
        return parts

    def translate(self, event: dict) -> list[tuple[str, Any]]:
        kind = event.get("type")
        parts: list[tuple[str, Any]] = []
        if self._want("events"):
            parts.append(("events", self._as_event(event)))
        if kind == EventType.TEXT_MESSAGE_START:
            mid = str(event.get("messageId"))
            self.texts.setdefault(mid, "")
            if self._want("messages") and mid not in self.announced:
                self.announced.add(mid)
                parts.append(("messages/metadata", {mid: {"metadata": self.metadata}}))
        elif kind in (EventType.TEXT_MESSAGE_CONTENT, EventType.TEXT_MESSAGE_CHUNK):
            mid = str(event.get("messageId"))
            delta = event.get("delta") or ""
            self.texts[mid] = self.texts.get(mid, "") + delta
            if self._want("messages-tuple"):
                chunk = {**ai_message(delta, mid), "type": "AIMessageChunk", "tool_call_chunks": []}
                parts.append(("messages", [chunk, self.metadata]))
            if self._want("messages"):
                parts.append(("messages/partial", [ai_message(self.texts[mid], mid)]))
        elif kind == EventType.TEXT_MESSAGE_END:
            mid = str(event.get("messageId"))
            if not any(c["parent"] == mid for c in self.calls.values()):
                parts += self._complete(ai_message(self.texts.get(mid, ""), mid), self.node)
        elif kind == EventType.TOOL_CALL_START:
            call_id = str(event.get("toolCallId"))
            parent = str(event.get("parentMessageId") or call_id)
            self.calls[call_id] = {"name": event.get("toolCallName", ""), "args": "", "parent": parent}
        elif kind == EventType.TOOL_CALL_ARGS:
            call = self.calls.get(str(event.get("toolCallId")))
            if call is not None:
                call["args"] += event.get("delta") or ""
        elif kind == EventType.TOOL_CALL_END:
            call_id = str(event.get("toolCallId"))
            call = self.calls.get(call_id)
            if call is not None:
                try:
                    args = json.loads(call["args"]) if call["args"] else {}
                except ValueError:
                    args = {}
                made = tool_call(call["name"], args, call_id)
                message = ai_message(self.texts.get(call["parent"], ""), call["parent"], [made])
                if self._want("messages-tuple"):
                    chunk = {**message, "type": "AIMessageChunk", "content": "", "tool_call_chunks": []}
                    parts.append(("messages", [chunk, self.metadata]))
                earlier = next((m for m in self.messages if m.get("type") == "ai" and m["id"] == call["parent"]), None)
                if earlier is None:
                    parts += self._complete(message, self.node)
                else:  # another call of the same AI message: one message with every call
                    earlier["tool_calls"] = [*earlier["tool_calls"], made]
                    if self._want("updates"):
                        parts.append(("updates", {self.node: {"messages": [earlier]}}))
        elif kind == EventType.TOOL_CALL_RESULT:
            call_id = str(event.get("toolCallId"))
            message = tool_message(event.get("content"), str(event.get("messageId") or f"{call_id}-result"), call_id)
            if self._want("messages-tuple"):
                parts.append(("messages", [message, {**self.metadata, "langgraph_node": "tools"}]))
            parts += self._complete(message, "tools")
        elif kind == EventType.CUSTOM:
            if is_pause_event(event):
                self.interrupts = [interrupt_value(i) for i in event["value"]["interrupts"]]
                self.ended = True
                self.status = "interrupted"
                if self._want("updates"):
                    parts.append(("updates", {INTERRUPT_KEY: list(self.interrupts)}))
            elif self._want("custom"):
                parts.append(("custom", event.get("value")))
        elif kind == EventType.RUN_FINISHED:
            self.ended = True
            self.status = "success"
            self.result = event.get("result")
            if not any(m.get("type") == "ai" for m in self.messages) and self.result not in (None, ""):
                text = self.result if isinstance(self.result, str) else json.dumps(self.result, ensure_ascii=False)
                parts += self._complete(ai_message(text, f"{self.run_id}-result"), self.node)
        elif kind == EventType.RUN_ERROR:
            self.ended = True
            code = str(event.get("code") or "error")
            self.status = "interrupted" if code == "cancelled" else "error"
            self.error = {"error": code, "message": str(event.get("message") or "The run failed.")}
        return parts

    def _as_event(self, event: dict) -> dict:
        """An AG-UI event in the shape of LangChain's ``astream_events`` (v2)."""
        kind = str(event.get("type"))
        names = {
            EventType.RUN_STARTED: "on_chain_start",
            EventType.RUN_FINISHED: "on_chain_end",
            EventType.RUN_ERROR: "on_chain_error",
            EventType.TEXT_MESSAGE_START: "on_chat_model_start",
            EventType.TEXT_MESSAGE_CONTENT: "on_chat_model_stream",
            EventType.TEXT_MESSAGE_END: "on_chat_model_end",
            EventType.TOOL_CALL_START: "on_tool_start",
            EventType.TOOL_CALL_RESULT: "on_tool_end",
        }
        data: dict[str, Any] = {"agui": event}
        if kind == EventType.TEXT_MESSAGE_CONTENT:
            data["chunk"] = {
                **ai_message(event.get("delta") or "", str(event.get("messageId"))),
                "type": "AIMessageChunk",
            }
        return {
            "event": names.get(kind, "on_custom_event"),
            "name": self.node if kind.startswith("RUN_") else kind,
            "run_id": self.run_id,
            "tags": [],
            "metadata": self.metadata,
            "data": data,
        }
