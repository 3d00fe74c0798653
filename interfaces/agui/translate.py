"""A run's stored events, as an AG-UI 1.0 stream that a strict client accepts.

The runtime already speaks AG-UI, so most events pass through. ``AGUITranslator`` adds what
only the AG-UI endpoint knows and enforces what the protocol requires of a whole stream:

- ``RUN_STARTED`` / ``RUN_FINISHED`` carry the client's ``threadId`` and ``runId`` (AsterOS run
  ids are UUIDs; an AG-UI ``runId`` may be any string), and ``STATE_SNAPSHOT`` of the thread's
  state follows ``RUN_STARTED``;
- ``RUN_FINISHED.outcome`` becomes the 1.0 object: ``{"type": "success"}``, with
  ``pendingToolCallIds`` when the run stopped on frontend tool calls (the runtime's
  ``"interrupt"``: AG-UI 1.0 reports that as a success, never as an interrupt), or
  ``{"type": "cancelled"}`` (without ``result``);
- a run that stops for people (the core's ``CUSTOM asteros.interrupt``, status ``pending``) ends
  its AG-UI run there: the ``CUSTOM`` event is relayed, then ``RUN_FINISHED`` with the
  ``{"type": "interrupt", "interrupts": [...]}`` outcome (``wire_interrupt``). The stored log
  has no ``RUN_FINISHED`` there; the AG-UI run that answers the interrupts (``resume``)
  streams what the same stored run does next;
- whatever the run left open (text messages, tool calls, steps, subagents) is closed before
  ``RUN_FINISHED``, and nothing is sent after the terminal event;
- ``SUBAGENT_*`` of star members and workflow steps get ``subagentRunId`` (the child run's id)
  and ``name``; an event type the 1.0 schema does not know becomes ``CUSTOM``;
- fields an event type does not define move under ``metadata.asteros``, so a 1.0 client strips
  nothing (and warns about nothing).

It also follows the run's own ``STATE_SNAPSHOT`` / ``STATE_DELTA`` (workflows send them), so
the endpoint can keep the thread's state afterwards.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from cosmos.runtime.interrupts import APPROVAL, DECISIONS, QUESTION, request_text
from cosmos.services.interrupts import is_pause_event

PROTOCOL_VERSION = "1.0"
TERMINAL_TYPES = frozenset({"RUN_FINISHED", "RUN_ERROR"})
# ``Interrupt.reason`` (an open string in AG-UI) for each kind of interrupt.
REASONS = {APPROVAL: "tool_approval", QUESTION: "question"}
ABANDONED_SUBAGENT = "The run ended before this subagent finished."

_BASE = ("type", "timestamp", "rawEvent", "metadata")
_ATTRIBUTABLE = (*_BASE, "subagentRunId")

# The fields each AG-UI 1.0 event type defines (@ag-ui/core 1.0 schemas).
FIELDS: dict[str, tuple[str, ...]] = {
    "TEXT_MESSAGE_START": (*_ATTRIBUTABLE, "messageId", "role", "name"),
    "TEXT_MESSAGE_CONTENT": (*_ATTRIBUTABLE, "messageId", "delta"),
    "TEXT_MESSAGE_END": (*_ATTRIBUTABLE, "messageId"),
    "TEXT_MESSAGE_CHUNK": (*_ATTRIBUTABLE, "messageId", "role", "delta", "name"),
    "TOOL_CALL_START": (*_ATTRIBUTABLE, "toolCallId", "toolCallName", "parentMessageId"),
    "TOOL_CALL_ARGS": (*_ATTRIBUTABLE, "toolCallId", "delta"),
    "TOOL_CALL_END": (*_ATTRIBUTABLE, "toolCallId"),
    "TOOL_CALL_CHUNK": (*_ATTRIBUTABLE, "toolCallId", "toolCallName", "parentMessageId", "delta"),
    "TOOL_CALL_RESULT": (*_ATTRIBUTABLE, "messageId", "toolCallId", "content", "role"),
    "STATE_SNAPSHOT": (*_ATTRIBUTABLE, "snapshot"),
    "STATE_DELTA": (*_ATTRIBUTABLE, "delta"),
    "MESSAGES_SNAPSHOT": (*_BASE, "messages"),
    "ACTIVITY_SNAPSHOT": (*_ATTRIBUTABLE, "messageId", "activityType", "content", "replace"),
    "ACTIVITY_DELTA": (*_ATTRIBUTABLE, "messageId", "activityType", "patch"),
    "RAW": (*_ATTRIBUTABLE, "event", "source"),
    "CUSTOM": (*_ATTRIBUTABLE, "name", "value"),
    "RUN_STARTED": (*_BASE, "threadId", "runId", "protocolVersion", "parentRunId", "input"),
    "RUN_FINISHED": (*_BASE, "threadId", "runId", "result", "outcome", "usage"),
    "RUN_ERROR": (*_BASE, "message", "code", "usage"),
    "STEP_STARTED": (*_ATTRIBUTABLE, "stepName"),
    "STEP_FINISHED": (*_ATTRIBUTABLE, "stepName"),
    "REASONING_START": (*_ATTRIBUTABLE, "messageId"),
    "REASONING_MESSAGE_START": (*_ATTRIBUTABLE, "messageId", "role"),
    "REASONING_MESSAGE_CONTENT": (*_ATTRIBUTABLE, "messageId", "delta"),
    "REASONING_MESSAGE_END": (*_ATTRIBUTABLE, "messageId"),
    "REASONING_MESSAGE_CHUNK": (*_ATTRIBUTABLE, "messageId", "delta"),
    "REASONING_END": (*_ATTRIBUTABLE, "messageId"),
    "REASONING_ENCRYPTED_VALUE": (*_ATTRIBUTABLE, "subtype", "entityId", "encryptedValue"),
    "SUBAGENT_STARTED": (
        *_BASE,
        "subagentRunId",
        "name",
        "description",
        "parentSubagentRunId",
        "parentToolCallId",
        "parentMessageId",
    ),
    "SUBAGENT_FINISHED": (*_BASE, "subagentRunId", "result", "outcome"),
    "SUBAGENT_ERROR": (*_BASE, "subagentRunId", "message", "code"),
}


def ends_stream(event: dict) -> bool:
    """The stored event after which an AG-UI run is over: the run's end, or a pause."""
    return event.get("type") in TERMINAL_TYPES or is_pause_event(event)


def response_schema(kind: str, request: dict) -> dict:
    """The resume ``payload`` this interrupt takes, as JSON Schema, so a client can build a form."""
    decisions = list(DECISIONS.get(kind, ()))
    properties: dict[str, Any] = {"decision": {"enum": decisions}, "message": {"type": "string"}}
    if kind == APPROVAL:
        properties["arguments"] = {"type": "object"}
        return {"type": "object", "properties": properties, "required": ["decision"]}
    schema = request.get("schema")
    properties["answer"] = schema if isinstance(schema, dict) else {}
    return {"type": "object", "properties": properties}


def wire_interrupt(item: dict) -> dict:
    """One interrupt of the core's pause event as an AG-UI 1.0 ``Interrupt``. The schema is
    closed, so what AsterOS adds (its kind, the request itself) rides under ``metadata.asteros``."""
    kind = str(item.get("kind") or "")
    request = item.get("request") if isinstance(item.get("request"), dict) else {}
    wire: dict[str, Any] = {"id": str(item.get("id")), "reason": REASONS.get(kind, kind or "input")}
    if kind in (APPROVAL, QUESTION):
        wire["message"] = request_text(kind, request)
    if isinstance(request.get("toolCallId"), str):
        wire["toolCallId"] = request["toolCallId"]
    wire["responseSchema"] = response_schema(kind, request)
    if isinstance(item.get("expiresAt"), str):
        wire["expiresAt"] = item["expiresAt"]
    wire["metadata"] = {"asteros": {"kind": kind, "payload": request}}
    return wire


def conform(event: dict, fields: tuple[str, ...] | None = None) -> dict:
    """Keep the fields the event's type defines; the rest goes under ``metadata.asteros``."""
    allowed = fields if fields is not None else FIELDS.get(event.get("type", ""), _BASE)
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in event.items():
        if value is None:
            continue  # no nulls on the wire
        if key in allowed:
            out[key] = value
        else:
            extra[key] = value
    if extra:
        metadata = dict(out.get("metadata") or {})
        metadata["asteros"] = {**(metadata.get("asteros") or {}), **extra}
        out["metadata"] = metadata
    return out


class AGUITranslator:
    """Stateful: feed it a run's events in order with ``translate``; it returns the wire events."""

    def __init__(
        self,
        thread_id: str,
        run_id: str,
        *,
        state: Any = None,
        parent_run_id: str | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.parent_run_id = parent_run_id
        self.state: Any = copy.deepcopy(state) if state is not None else {}
        self.state_changed = False  # the run itself sent a snapshot or a delta
        self.usage: list[dict] | None = None  # set by the caller before the terminal event
        self.started = False
        self.closed = False
        self._texts: list[str] = []
        self._calls: list[str] = []
        self._started_calls: list[str] = []
        self._answered: set[str] = set()
        self._steps: list[str] = []
        self._subagents: list[str] = []
        self._finished_subagents: set[str] = set()

    # --- the one entry point

    def translate(self, event: dict) -> list[dict]:
        if self.closed:
            return []
        kind = event.get("type", "")
        handler = getattr(self, f"_on_{kind.lower()}", None)
        if not self.started and kind not in ("RUN_STARTED", "RUN_ERROR"):
            # A stream must open with RUN_STARTED; the engine always writes it first.
            self.started = True
            out = self._opening()
            return out + (handler(event) if handler else self._passthrough(event))
        if handler is not None:
            return handler(event)
        return self._passthrough(event)

    @property
    def pending_tool_call_ids(self) -> list[str]:
        """Tool calls this run started and did not answer (frontend tools), in call order."""
        return [call_id for call_id in self._started_calls if call_id not in self._answered]

    # --- run boundaries

    def _opening(self) -> list[dict]:
        started = {"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id}
        started["protocolVersion"] = PROTOCOL_VERSION
        if self.parent_run_id:
            started["parentRunId"] = self.parent_run_id
        return [started, {"type": "STATE_SNAPSHOT", "snapshot": copy.deepcopy(self.state)}]

    def open(self, internal_run_id: str | None = None) -> list[dict]:
        """``RUN_STARTED`` and the state, sent at once, before the worker has even claimed the
        run; the stored ``RUN_STARTED`` then adds nothing."""
        if self.started:
            return []
        self.started = True
        opening = self._opening()
        if internal_run_id:
            opening[0]["metadata"] = {"asteros": {"runId": internal_run_id}}
        return opening

    def _on_run_started(self, event: dict) -> list[dict]:
        return self.open(event.get("runId"))

    def _on_run_finished(self, event: dict) -> list[dict]:
        raw_outcome = event.get("outcome")
        result = None
        if raw_outcome == "cancelled" or (isinstance(raw_outcome, dict) and raw_outcome.get("type") == "cancelled"):
            outcome: dict[str, Any] = {"type": "cancelled"}
        else:
            outcome = {"type": "success"}
            pending = self.pending_tool_call_ids
            if pending:
                outcome["pendingToolCallIds"] = pending
            result = event.get("result")
        extra = {
            k: v
            for k, v in event.items()
            if k not in ("type", "threadId", "runId", "outcome", "result") and v is not None
        }
        if isinstance(raw_outcome, str) and raw_outcome not in ("cancelled", "interrupt"):
            extra["outcome"] = raw_outcome
        return self._finish(outcome, result=result, extra=extra)

    def _finish(self, outcome: dict, *, result: Any = None, extra: dict | None = None) -> list[dict]:
        """The one way an AG-UI run ends with ``RUN_FINISHED``: whatever is open is closed first,
        and nothing goes out after it. The run's own end and a pause both come through here."""
        out = self._close_all()
        finished: dict[str, Any] = {"type": "RUN_FINISHED", "threadId": self.thread_id, "runId": self.run_id}
        finished["outcome"] = outcome
        if result is not None:
            finished["result"] = result
        if self.usage:
            finished["usage"] = self.usage
        self.closed = True
        return [*out, conform({**finished, **(extra or {})})]

    def _on_run_error(self, event: dict) -> list[dict]:
        # RUN_ERROR ends whatever is open; nothing needs closing first. It may open a stream too.
        self.started = True
        self.closed = True
        error = dict(event)
        error.setdefault("message", "The run failed.")
        if self.usage:
            error["usage"] = self.usage
        return [conform(error)]

    def _close_all(self) -> list[dict]:
        out: list[dict] = []
        for message_id in self._texts:
            out.append({"type": "TEXT_MESSAGE_END", "messageId": message_id})
        for call_id in self._calls:
            out.append({"type": "TOOL_CALL_END", "toolCallId": call_id})
        for step in self._steps:
            out.append({"type": "STEP_FINISHED", "stepName": step})
        for subagent in self._subagents:
            out.append(
                {
                    "type": "SUBAGENT_ERROR",
                    "subagentRunId": subagent,
                    "message": ABANDONED_SUBAGENT,
                    "code": "abandoned",
                }
            )
            self._finished_subagents.add(subagent)
        self._texts.clear()
        self._calls.clear()
        self._steps.clear()
        self._subagents.clear()
        return out

    # --- messages and tool calls

    def _on_text_message_start(self, event: dict) -> list[dict]:
        message_id = event.get("messageId")
        if not message_id or message_id in self._texts:
            return []
        self._texts.append(message_id)
        return [conform(event)]

    def _on_text_message_content(self, event: dict) -> list[dict]:
        message_id = event.get("messageId")
        if not message_id or not event.get("delta"):
            return []
        out = []
        if message_id not in self._texts:
            self._texts.append(message_id)
            out.append({"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"})
        return [*out, conform(event)]

    def _on_text_message_end(self, event: dict) -> list[dict]:
        message_id = event.get("messageId")
        if message_id not in self._texts:
            return []
        self._texts.remove(message_id)
        return [conform(event)]

    def _on_tool_call_start(self, event: dict) -> list[dict]:
        call_id = event.get("toolCallId")
        if not call_id or call_id in self._calls or not event.get("toolCallName"):
            return []
        self._calls.append(call_id)
        if call_id not in self._started_calls:
            self._started_calls.append(call_id)
        return [conform(event)]

    def _on_tool_call_args(self, event: dict) -> list[dict]:
        if event.get("toolCallId") not in self._calls:
            return []
        return [conform(event)]

    def _on_tool_call_end(self, event: dict) -> list[dict]:
        call_id = event.get("toolCallId")
        if call_id not in self._calls:
            return []
        self._calls.remove(call_id)
        return [conform(event)]

    def _on_tool_call_result(self, event: dict) -> list[dict]:
        call_id = event.get("toolCallId")
        if not call_id or not event.get("messageId"):
            return self._custom(event)
        self._answered.add(call_id)
        return [conform(event)]

    # --- steps, subagents, state

    def _on_step_started(self, event: dict) -> list[dict]:
        name = event.get("stepName")
        if not isinstance(name, str) or name in self._steps:
            return []
        self._steps.append(name)
        return [conform(event)]

    def _on_step_finished(self, event: dict) -> list[dict]:
        name = event.get("stepName")
        if name not in self._steps:
            return []
        self._steps.remove(name)
        return [conform(event)]

    def _on_subagent_started(self, event: dict) -> list[dict]:
        child = event.get("subagentRunId") or event.get("runId")
        if not child or child in self._subagents or child in self._finished_subagents:
            return self._custom(event)
        self._subagents.append(child)
        name = (
            event.get("name")
            or event.get("member")
            or event.get("stepName")
            or event.get("agentId")
            or event.get("starId")
            or event.get("workflowId")
            or "subagent"
        )
        return [conform({**event, "subagentRunId": child, "name": str(name)})]

    def _end_subagent(self, event: dict) -> list[dict]:
        child = event.get("subagentRunId") or event.get("runId")
        if child not in self._subagents:
            return self._custom(event)
        self._subagents.remove(child)
        self._finished_subagents.add(child)
        wire = {**event, "subagentRunId": child}
        if isinstance(wire.get("outcome"), str):  # the 1.0 outcome is an object
            wire["asterosOutcome"] = wire.pop("outcome")
        return [conform(wire)]

    def _on_subagent_finished(self, event: dict) -> list[dict]:
        wire = dict(event)
        if "result" not in wire and wire.get("output") is not None:
            wire["result"] = wire.pop("output")
        return self._end_subagent(wire)

    def _on_subagent_error(self, event: dict) -> list[dict]:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        message = event.get("message") or error.get("message") or "The subagent failed."
        return self._end_subagent({**event, "message": str(message)})

    def _on_state_snapshot(self, event: dict) -> list[dict]:
        if "snapshot" not in event:
            return self._custom(event)
        self.state = copy.deepcopy(event["snapshot"])
        self.state_changed = True
        return [conform(event)]

    def _on_state_delta(self, event: dict) -> list[dict]:
        delta = event.get("delta")
        if not isinstance(delta, list):
            return self._custom(event)
        try:
            self.state = jsonpatch.apply_patch(self.state, delta)
            self.state_changed = True
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError):
            pass  # the client warns and skips it the same way
        return [conform(event)]

    def _on_custom(self, event: dict) -> list[dict]:
        out: list[dict] = []
        if event.get("name") == "asteros.retry":
            # A retried attempt starts its work again: close what the lost attempt left open.
            out = self._close_all()
        if not isinstance(event.get("name"), str):
            return [*out, *self._custom(event)]
        wire = dict(event)
        if wire.get("value") is None:
            wire["value"] = {}  # CUSTOM requires a value, and a null is not one
        if is_pause_event(event):
            # No nulls on the wire: an interrupt that never expires has no expiresAt.
            items = [{k: v for k, v in item.items() if v is not None} for item in event["value"]["interrupts"]]
            wire["value"] = {**event["value"], "interrupts": items}
        out.append(conform(wire))
        if is_pause_event(event):
            # The run waits for people: this AG-UI run ends here, and the one that answers
            # (``resume``) streams the continuation. The stored log goes on without a break.
            interrupts = [wire_interrupt(item) for item in event["value"]["interrupts"]]
            out += self._finish({"type": "interrupt", "interrupts": interrupts})
        return out

    # --- everything else

    def _passthrough(self, event: dict) -> list[dict]:
        if event.get("type") in FIELDS:
            return [conform(event)]
        return self._custom(event)

    def _custom(self, event: dict) -> list[dict]:
        """An event the protocol cannot carry as it is: sent as ``CUSTOM asteros.<type>``."""
        name = f"asteros.{str(event.get('type', 'event')).lower()}"
        value = {k: v for k, v in event.items() if v is not None}
        return [{"type": "CUSTOM", "name": name, "value": value}]
