"""AG-UI run events -> A2A tasks and stream responses: a translation, not a second pipeline.

``TaskProjection`` folds a run's events (``cosmos.eventlog``) into an A2A ``Task`` and, for each
event, returns the ``StreamResponse`` payloads a streaming client receives:

- ``RUN_STARTED`` -> a status update ``TASK_STATE_WORKING``;
- each assistant text message is an artifact (``artifactId`` = the AG-UI ``messageId``, named
  ``response``): every ``TEXT_MESSAGE_CONTENT`` delta is an artifact update (``append`` false
  for the first chunk, true after), and ``TEXT_MESSAGE_END`` sends an empty chunk with
  ``lastChunk: true``;
- ``TOOL_CALL_END`` (with the call's arguments), ``TOOL_CALL_RESULT``, ``STEP_*`` and
  ``SUBAGENT_*`` -> ``TASK_STATE_WORKING`` status updates whose message carries a text part for
  people and a ``data`` part for programs;
- the ``asteros.interrupt`` event of a pause (``value.status`` ``pending``) ->
  ``TASK_STATE_INPUT_REQUIRED``, whose message asks the person (a text part) and carries the
  interrupts (a ``data`` part: id, kind, request, the decisions it takes); it ends the stream. Its
  ``resumed`` event (every interrupt resolved, the run goes on) -> ``TASK_STATE_WORKING``;
- ``RUN_FINISHED`` -> ``TASK_STATE_COMPLETED`` (``TASK_STATE_CANCELED`` for outcome
  ``cancelled``, ``TASK_STATE_INPUT_REQUIRED`` for ``interrupt``); ``RUN_ERROR`` ->
  ``TASK_STATE_FAILED`` with the error as the status message. Either one ends the stream.

The same fold builds the task that GetTask, ListTasks and the first event of a subscription
return, so a stream and a later GetTask always agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cosmos.runtime.events import EventType
from cosmos.runtime.interrupts import APPROVAL, DECISIONS, request_text
from cosmos.services.interrupts import INTERRUPT_EVENT
from interfaces.a2a.errors import now_iso
from interfaces.a2a.protocol import (
    CANCELED,
    COMPLETED,
    FAILED,
    INPUT_REQUIRED,
    INTERRUPTED_STATES,
    ROLE_AGENT,
    SUBMITTED,
    TERMINAL_STATES,
    WORKING,
)

ARTIFACT_NAME = "response"
TEXT_CONTENT = (EventType.TEXT_MESSAGE_CONTENT, EventType.TEXT_MESSAGE_CHUNK)
RUN_STATUS_STATES = {
    "queued": SUBMITTED,
    "running": WORKING,
    "succeeded": COMPLETED,
    "failed": FAILED,
    "cancelled": CANCELED,
    "interrupted": INPUT_REQUIRED,
}
JSON_MEDIA_TYPE = "application/json"
MAX_SHOWN_CHARS = 500


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 1] + "…"


def _as_json_value(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return raw


def _ask(interrupt: dict[str, Any]) -> str:
    """What a person reads: the question, or which call waits for approval."""
    request = interrupt.get("request") if isinstance(interrupt.get("request"), dict) else {}
    kind = str(interrupt.get("kind") or "")
    text = request_text(kind, request, limit=MAX_SHOWN_CHARS)
    return f"{text} (yes or no)" if kind == APPROVAL else text


@dataclass
class TaskProjection:
    task_id: str
    context_id: str
    state: str = SUBMITTED
    status_message: dict[str, Any] | None = None
    timestamp: str | None = None
    texts: dict[str, list[str]] = field(default_factory=dict)  # messageId -> chunks, in start order
    ended: set[str] = field(default_factory=set)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumes: int = 0  # pauses resolved so far: the person's replies come between the turns
    turn_of: dict[str, int] = field(default_factory=dict)  # messageId -> resumes before it started
    _status_count: int = 0

    @property
    def final(self) -> bool:
        """A terminal or interrupted state: the stream closes after it."""
        return self.state in TERMINAL_STATES or self.state in INTERRUPTED_STATES

    # --- the fold

    def apply(self, event: dict[str, Any], *, timestamp: str | None = None) -> list[dict[str, Any]]:
        """Fold one AG-UI event in; return the StreamResponse payloads it translates to."""
        kind = event.get("type")
        when = timestamp or now_iso()
        if kind == EventType.RUN_STARTED:
            if self.state != SUBMITTED:
                return []
            return [self._status(WORKING, None, when)]
        if kind == EventType.TEXT_MESSAGE_START:
            self._text_start(str(event.get("messageId")))
            return []
        if kind in TEXT_CONTENT:
            return self._text_chunk(event)
        if kind == EventType.TEXT_MESSAGE_END:
            return self._text_end(str(event.get("messageId")))
        if kind == EventType.TOOL_CALL_START:
            call_id = str(event.get("toolCallId"))
            self.tool_calls[call_id] = {"name": event.get("toolCallName") or "", "args": []}
            return []
        if kind == EventType.TOOL_CALL_ARGS:
            call = self.tool_calls.get(str(event.get("toolCallId")))
            if call is not None:
                call["args"].append(str(event.get("delta") or ""))
            return []
        if kind == EventType.TOOL_CALL_END:
            return self._tool_call(str(event.get("toolCallId")), when)
        if kind == EventType.TOOL_CALL_RESULT:
            return self._tool_result(event, when)
        if kind in (EventType.STEP_STARTED, EventType.STEP_FINISHED):
            return self._step(event, when)
        if kind in (EventType.SUBAGENT_STARTED, EventType.SUBAGENT_FINISHED, EventType.SUBAGENT_ERROR):
            return self._subagent(event, when)
        if kind == EventType.CUSTOM and event.get("name") == INTERRUPT_EVENT:
            return self._interrupt(event.get("value"), when)
        if kind == EventType.RUN_FINISHED:
            return self._finished(event, when)
        if kind == EventType.RUN_ERROR:
            message = str(event.get("message") or "The run failed.")
            code = str(event.get("code") or "failed")
            status = self._agent_message(f"error-{self.task_id}", [{"text": message}], {"code": code})
            return [self._status(FAILED, status, when)]
        return []  # state, custom, thinking and raw events have no A2A counterpart

    def reconcile(self, run_status: str, error: dict[str, Any] | None, timestamp: str) -> None:
        """Trust the run row where the events are silent (e.g. a run reaped without events)."""
        self.timestamp = timestamp
        if self.final:
            return
        state = RUN_STATUS_STATES.get(run_status, self.state)
        if state == FAILED:
            message = str((error or {}).get("message") or "The run failed.")
            self.status_message = self._agent_message(f"error-{self.task_id}", [{"text": message}])
        if state != SUBMITTED or self.state == SUBMITTED:
            self.state = state

    # --- text -> artifacts

    def _text_start(self, message_id: str) -> list[str]:
        self.turn_of.setdefault(message_id, self.resumes)
        return self.texts.setdefault(message_id, [])

    def _text_chunk(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        message_id = str(event.get("messageId"))
        delta = str(event.get("delta") or "")
        if not delta or message_id in self.ended:
            return []
        chunks = self._text_start(message_id)
        append = bool(chunks)
        chunks.append(delta)
        return [self._artifact_update(message_id, delta, append=append, last_chunk=False)]

    def _text_end(self, message_id: str) -> list[dict[str, Any]]:
        if message_id in self.ended:
            return []
        self.ended.add(message_id)
        if not self.texts.get(message_id):
            self.texts.pop(message_id, None)  # an empty message is no artifact
            return []
        return [self._artifact_update(message_id, "", append=True, last_chunk=True)]

    def _artifact_update(self, artifact_id: str, text: str, *, append: bool, last_chunk: bool) -> dict[str, Any]:
        return {
            "artifactUpdate": {
                "taskId": self.task_id,
                "contextId": self.context_id,
                "artifact": {"artifactId": artifact_id, "name": ARTIFACT_NAME, "parts": [{"text": text}]},
                "append": append,
                "lastChunk": last_chunk,
            }
        }

    # --- tools, steps, sub-agents -> working status updates

    def _tool_call(self, call_id: str, when: str) -> list[dict[str, Any]]:
        call = self.tool_calls.get(call_id, {"name": "", "args": []})
        arguments = _as_json_value("".join(call["args"]))
        name = call["name"]
        shown = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        parts = [
            {"text": f"Calling tool {name}({_shorten(shown)})"},
            {"data": {"toolCall": {"id": call_id, "name": name, "arguments": arguments}}, "mediaType": JSON_MEDIA_TYPE},
        ]
        message = self._agent_message(f"tool-call-{call_id}", parts, {"event": EventType.TOOL_CALL_END})
        return [self._status(WORKING, message, when)]

    def _tool_result(self, event: dict[str, Any], when: str) -> list[dict[str, Any]]:
        call_id = str(event.get("toolCallId"))
        name = self.tool_calls.get(call_id, {}).get("name", "")
        content = event.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        result: dict[str, Any] = {"toolCallId": call_id, "name": name, "content": content}
        parts = [
            {"text": f"Tool {name} returned: {_shorten(text)}"},
            {"data": {"toolResult": result}, "mediaType": JSON_MEDIA_TYPE},
        ]
        message_id = str(event.get("messageId") or f"tool-result-{call_id}")
        message = self._agent_message(message_id, parts, {"event": EventType.TOOL_CALL_RESULT})
        return [self._status(WORKING, message, when)]

    def _step(self, event: dict[str, Any], when: str) -> list[dict[str, Any]]:
        name = str(event.get("stepName") or "")
        what = "started" if event["type"] == EventType.STEP_STARTED else "finished"
        self._status_count += 1
        parts = [
            {"text": f"Step {name} {what}"},
            {"data": {"step": {"name": name, "event": what}}, "mediaType": JSON_MEDIA_TYPE},
        ]
        message = self._agent_message(f"step-{self.task_id}-{self._status_count}", parts, {"event": event["type"]})
        return [self._status(WORKING, message, when)]

    def _subagent(self, event: dict[str, Any], when: str) -> list[dict[str, Any]]:
        # "kind" is renamed: in A2A 1.0 payloads a "kind" field reads as the 0.3 discriminator.
        fields = {("runKind" if key == "kind" else key): value for key, value in event.items() if key != "type"}
        who = (
            fields.get("member") or fields.get("stepName") or fields.get("agent") or fields.get("runId") or "sub-agent"
        )
        what = {
            EventType.SUBAGENT_STARTED: "started",
            EventType.SUBAGENT_FINISHED: "finished",
            EventType.SUBAGENT_ERROR: "failed",
        }[event["type"]]
        self._status_count += 1
        parts = [
            {"text": f"{who} {what}"},
            {"data": {"subagent": {**fields, "event": what}}, "mediaType": JSON_MEDIA_TYPE},
        ]
        message = self._agent_message(f"subagent-{self.task_id}-{self._status_count}", parts, {"event": event["type"]})
        return [self._status(WORKING, message, when)]

    # --- a person in the loop

    def _interrupt(self, value: Any, when: str) -> list[dict[str, Any]]:
        value = value if isinstance(value, dict) else {}
        interrupts = [i for i in value.get("interrupts") or () if isinstance(i, dict)]
        if value.get("status") == "pending":
            shown = [self._shown_interrupt(i) for i in interrupts]
            return [self._status(INPUT_REQUIRED, self._pause_message(shown), when)]
        if value.get("status") == "resumed":
            self.resumes += 1
            decided = ", ".join(f"{i.get('decision') or i.get('status')}" for i in interrupts) or "resolved"
            parts = [
                {"text": f"Resumed ({decided})"},
                {"data": {"interrupts": interrupts}, "mediaType": JSON_MEDIA_TYPE},
            ]
            metadata = {"event": INTERRUPT_EVENT, "status": "resumed"}
            message = self._agent_message(f"resumed-{self.task_id}-{self.resumes}", parts, metadata)
            return [self._status(WORKING, message, when)]
        return []

    def _pause_message(self, shown: list[dict[str, Any]]) -> dict[str, Any]:
        asking = [_ask(i) for i in shown if i["status"] == "pending"]
        parts = [
            {"text": "\n".join(asking) or "The agent is waiting for a person."},
            {"data": {"interrupts": shown}, "mediaType": JSON_MEDIA_TYPE},
        ]
        first = shown[0]["id"] if shown else self.task_id
        return self._agent_message(f"interrupt-{first}", parts, {"event": INTERRUPT_EVENT, "status": "pending"})

    def refresh_pause(self, statuses: dict[str, str]) -> None:
        """A pause partly resolved: show each interrupt's status now, and ask only what still waits."""
        if self.state != INPUT_REQUIRED or not self.status_message:
            return
        parts = self.status_message.get("parts") or []
        data = next((p["data"] for p in parts if isinstance(p.get("data"), dict) and "interrupts" in p["data"]), None)
        if data is None:
            return  # a client-side tool's input-required
        shown = [{**i, "status": statuses.get(str(i.get("id")), i.get("status"))} for i in data["interrupts"]]
        self.status_message = self._pause_message(shown)

    def _shown_interrupt(self, interrupt: dict[str, Any]) -> dict[str, Any]:
        kind = str(interrupt.get("kind") or "")
        return {
            "id": interrupt.get("id"),
            "taskId": self.task_id,
            "kind": kind,
            "request": interrupt.get("request") or {},
            "status": interrupt.get("status") or "pending",
            "expiresAt": interrupt.get("expiresAt"),
            "decisions": list(DECISIONS.get(kind, ())),
        }

    # --- the end

    def _finished(self, event: dict[str, Any], when: str) -> list[dict[str, Any]]:
        outcome = event.get("outcome")
        if outcome == "cancelled":
            return [self._status(CANCELED, None, when)]
        if outcome == "interrupt":
            text = "The agent is waiting for input (a client-side tool call) before it can go on."
            message = self._agent_message(f"input-{self.task_id}", [{"text": text}], {"outcome": "interrupt"})
            return [self._status(INPUT_REQUIRED, message, when)]
        return [self._status(COMPLETED, None, when)]

    # --- building blocks

    def _agent_message(
        self, message_id: str, parts: list[dict[str, Any]], metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "messageId": message_id,
            "contextId": self.context_id,
            "taskId": self.task_id,
            "role": ROLE_AGENT,
            "parts": parts,
        }
        if metadata:
            message["metadata"] = {key: str(value) for key, value in metadata.items()}
        return message

    def _status(self, state: str, message: dict[str, Any] | None, when: str) -> dict[str, Any]:
        self.state = state
        self.status_message = message
        self.timestamp = when
        status: dict[str, Any] = {"state": state, "timestamp": when}
        if message is not None:
            status["message"] = message
        return {"statusUpdate": {"taskId": self.task_id, "contextId": self.context_id, "status": status}}

    # --- the task

    def artifacts(self) -> list[dict[str, Any]]:
        return [
            {"artifactId": message_id, "name": ARTIFACT_NAME, "parts": [{"text": "".join(chunks)}]}
            for message_id, chunks in self.texts.items()
            if chunks
        ]

    def agent_messages(self, turn: int | None = None) -> list[dict[str, Any]]:
        """Completed assistant text messages (of one turn between pauses, or all), for the history."""
        return [
            self._agent_message(message_id, [{"text": "".join(chunks)}])
            for message_id, chunks in self.texts.items()
            if chunks and message_id in self.ended and (turn is None or self.turn_of.get(message_id, 0) == turn)
        ]

    def history(
        self, user_message: dict[str, Any] | None, replies: list[tuple[int, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """The first message, then each turn's answers followed by the replies to its pause."""
        history = [user_message] if user_message else []
        for turn in range(self.resumes + 1):
            history += self.agent_messages(turn)
            history += [reply for pause, reply in replies if pause == turn]
        return history

    def task(
        self,
        *,
        user_message: dict[str, Any] | None,
        history_length: int | None = None,
        include_artifacts: bool = True,
        metadata: dict[str, Any] | None = None,
        replies: list[tuple[int, dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state}
        if self.status_message is not None:
            status["message"] = self.status_message
        if self.timestamp:
            status["timestamp"] = self.timestamp
        task: dict[str, Any] = {"id": self.task_id, "contextId": self.context_id, "status": status}
        if include_artifacts:
            artifacts = self.artifacts()
            if artifacts:
                task["artifacts"] = artifacts
        if history_length != 0:
            history = self.history(user_message, replies or [])
            if history_length is not None:
                history = history[-history_length:]
            if history:
                task["history"] = history
        if metadata:
            task["metadata"] = metadata
        return task
