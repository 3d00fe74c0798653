"""AG-UI 1.0 ``RunAgentInput``: parsing, validation, and translation into the runtime's messages.

Everything here is pure (no database): ``parse_run_agent_input`` turns a request body into a
``RunAgentInput`` or raises ``InvalidRunInput`` (an HTTP 400 before any stream opens), and
``to_internal_messages`` turns the AG-UI conversation into the internal format of
``cosmos.runtime.loop``::

    {"role": "system", "content": str}                    # system and developer messages, context, state
    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments": dict}]}
    {"role": "tool", "tool_call_id": str, "content": str, "is_error": bool}

Rules worth knowing (the AG-UI spec's, applied here):

- user and tool content may be a list of parts; text parts are joined, media parts the models
  behind AsterOS cannot take are dropped (the spec says a producer MUST NOT fail for them);
- every tool call of an assistant message is answered before the conversation moves on: a call
  the client left unanswered gets an error result saying so (providers reject dangling calls);
- a tool message naming no earlier tool call, or answering one twice, is a 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import RunAgentInput as SpecRunAgentInput
from pydantic import ValidationError

from cosmos.services.errors import Invalid
from interfaces.edge.parsers import loads

MAX_ID_CHARS = 128
MAX_TOOLS = 128
MAX_RESUME_ENTRIES = 64
MAX_TOOL_NAME_CHARS = 128  # the spec sets no limit on a tool's name; any printable one is taken
ROLES = ("developer", "system", "assistant", "user", "tool", "activity", "reasoning")
IGNORED_ROLES = ("activity", "reasoning")  # client-side material the model never sees
STATE_ONLY_TURN = "(No new message: act on the application's current state and context above.)"
UNANSWERED_TOOL_CALL = "No result was provided for this tool call."
EMPTY_PARAMETERS = {"type": "object", "properties": {}}


class InvalidRunInput(Invalid):
    """The body is not a valid RunAgentInput. ``details["problems"]`` lists each problem."""

    code = "invalid_input"


@dataclass(frozen=True)
class RunAgentInput:
    thread_id: str
    run_id: str
    messages: list[dict]
    tools: list[dict] = field(default_factory=list)
    context: list[dict] = field(default_factory=list)
    state: Any = None
    has_state: bool = False  # "state" was sent, and is neither null nor {} (a client with no state yet)
    forwarded_props: Any = None
    parent_run_id: str | None = None
    protocol_version: str | None = None
    # Answers to the interrupts the thread's run is waiting for: ``{"interruptId", "status",
    # "payload"?}`` each (``interfaces.agui.services.resume_agui_run``).
    resume: list[dict] = field(default_factory=list)


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"field": path, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            more = f" (and {len(self.items) - 1} more problem(s))" if len(self.items) > 1 else ""
            raise InvalidRunInput(
                f"Invalid RunAgentInput: {first['field']}: {first['message']}{more}",
                details={"problems": self.items},
            )


def _identifier(body: dict, key: str, problems: _Problems, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            problems.add(key, "is required (a string).")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(key, "must be a non-empty string.")
        return None
    if len(value) > MAX_ID_CHARS or not value.isprintable():
        problems.add(key, f"must be printable and at most {MAX_ID_CHARS} characters.")
        return None
    return value


def parse_run_agent_input(body: Any) -> RunAgentInput:
    """Validate a decoded JSON body as an AG-UI 1.0 RunAgentInput (camelCase keys)."""
    if not isinstance(body, dict):
        raise InvalidRunInput("The body must be a JSON object (an AG-UI RunAgentInput).")
    problems = _Problems()
    thread_id = _identifier(body, "threadId", problems, required=True)
    run_id = _identifier(body, "runId", problems, required=True)
    parent_run_id = _identifier(body, "parentRunId", problems, required=False)
    protocol_version = body.get("protocolVersion")
    if protocol_version is not None and not isinstance(protocol_version, str):
        problems.add("protocolVersion", "must be a string.")
    messages = body.get("messages")
    if messages is None:
        problems.add("messages", "is required (a list of messages).")
        messages = []
    elif not isinstance(messages, list):
        problems.add("messages", "must be a list.")
        messages = []
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]", problems)
    tools = _check_tools(body.get("tools"), problems)
    context = _check_context(body.get("context"), problems)
    problems.raise_if_any()
    _check_against_the_spec(body, problems)
    problems.raise_if_any()
    resume = _check_resume(body.get("resume"), problems)
    problems.raise_if_any()
    assert thread_id is not None and run_id is not None
    state = body.get("state")
    return RunAgentInput(
        thread_id=thread_id,
        run_id=run_id,
        messages=messages,
        tools=tools,
        context=context,
        state=state,
        has_state=state is not None and state != {},
        forwarded_props=body.get("forwardedProps"),
        parent_run_id=parent_run_id,
        protocol_version=protocol_version,
        resume=resume,
    )


def _check_resume(resume: Any, problems: _Problems) -> list[dict]:
    """The spec has checked each entry's shape; AsterOS adds bounded ids, each named once."""
    if not resume:
        return []
    if len(resume) > MAX_RESUME_ENTRIES:
        problems.add("resume", f"at most {MAX_RESUME_ENTRIES} entries.")
        return []
    out: list[dict] = []
    seen: set[str] = set()
    for index, entry in enumerate(resume):
        interrupt_id = entry["interruptId"]
        if not interrupt_id or len(interrupt_id) > MAX_ID_CHARS or not interrupt_id.isprintable():
            problems.add(f"resume[{index}].interruptId", f"must be printable, 1 to {MAX_ID_CHARS} characters.")
        elif interrupt_id in seen:
            problems.add(f"resume[{index}].interruptId", f"the interrupt {interrupt_id!r} is answered twice.")
        else:
            seen.add(interrupt_id)
            out.append({"interruptId": interrupt_id, "status": entry["status"], "payload": entry.get("payload")})
    return out


def _check_against_the_spec(body: dict, problems: _Problems) -> None:
    """What the AG-UI spec itself allows, as ``ag-ui-protocol``'s own types decide: a message
    without ``id``, a ``resume`` entry without ``interruptId`` or with an unknown ``status``, a
    tool without ``description`` are refused here; the checks below add only what AsterOS
    needs on top (bounded ids, tool names a model provider takes, tool-call pairing)."""
    try:
        SpecRunAgentInput.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            problems.add(_path(error["loc"]), error["msg"] + ".")


def _path(loc: tuple) -> str:
    """``("messages", 0, "user", "id")`` -> ``messages[0].id`` (the union tag dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ROLES or "[" in str(part) or "-" in str(part):
            continue  # pydantic names the union member it tried: not a field of the body
        else:
            out += ("." if out else "") + _camel(str(part))
    return out or "body"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _check_content(content: Any, path: str, problems: _Problems, *, required: bool = True) -> None:
    if content is None:
        if required:
            problems.add(path, "is required (a string or a list of content parts).")
        return
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        problems.add(path, "must be a string or a list of content parts.")
        return
    for index, part in enumerate(content):
        part_path = f"{path}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            problems.add(part_path, 'must be an object with a "type".')
        elif part["type"] == "text" and not isinstance(part.get("text"), str):
            problems.add(f"{part_path}.text", "must be a string.")


def _check_message(message: Any, path: str, problems: _Problems) -> None:
    if not isinstance(message, dict):
        problems.add(path, "must be an object.")
        return
    role = message.get("role")
    if role not in ROLES:
        problems.add(f"{path}.role", f"must be one of {', '.join(ROLES)}.")
        return
    if "id" in message and not isinstance(message["id"], str):
        problems.add(f"{path}.id", "must be a string.")
    if role in IGNORED_ROLES:
        return
    if role in ("system", "developer"):
        if not isinstance(message.get("content"), str):
            problems.add(f"{path}.content", "must be a string.")
    elif role == "user":
        _check_content(message.get("content"), f"{path}.content", problems)
    elif role == "tool":
        if not isinstance(message.get("toolCallId"), str) or not message["toolCallId"]:
            problems.add(f"{path}.toolCallId", "is required (the id of the tool call this answers).")
        _check_content(message.get("content"), f"{path}.content", problems, required=False)
        if message.get("error") is not None and not isinstance(message["error"], str):
            problems.add(f"{path}.error", "must be a string.")
    elif role == "assistant":
        if message.get("content") is not None and not isinstance(message["content"], str):
            problems.add(f"{path}.content", "must be a string.")
        calls = message.get("toolCalls")
        if calls is None:
            return
        if not isinstance(calls, list):
            problems.add(f"{path}.toolCalls", "must be a list.")
            return
        for index, call in enumerate(calls):
            _check_tool_call(call, f"{path}.toolCalls[{index}]", problems)


def _check_tool_call(call: Any, path: str, problems: _Problems) -> None:
    if not isinstance(call, dict):
        problems.add(path, "must be an object.")
        return
    if not isinstance(call.get("id"), str) or not call["id"]:
        problems.add(f"{path}.id", "is required (a string).")
    function = call.get("function")
    if not isinstance(function, dict):
        problems.add(f"{path}.function", 'is required: {"name": ..., "arguments": "<JSON text>"}.')
        return
    if not isinstance(function.get("name"), str) or not function["name"]:
        problems.add(f"{path}.function.name", "is required (a string).")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        problems.add(f"{path}.function.arguments", "must be a string of JSON.")
        return
    if arguments.strip():
        try:
            value = loads(arguments)
        except ValueError:
            problems.add(f"{path}.function.arguments", "is not valid JSON.")
            return
        if not isinstance(value, dict):
            problems.add(f"{path}.function.arguments", "must be a JSON object.")


def _check_tools(tools: Any, problems: _Problems) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        problems.add("tools", "must be a list.")
        return []
    if len(tools) > MAX_TOOLS:
        problems.add("tools", f"at most {MAX_TOOLS} tools.")
        return []
    out: list[dict] = []
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        path = f"tools[{index}]"
        if not isinstance(tool, dict):
            problems.add(path, "must be an object.")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOOL_NAME_CHARS or not name.isprintable():
            problems.add(f"{path}.name", f"must be a printable name of 1 to {MAX_TOOL_NAME_CHARS} characters.")
            continue
        if name in seen:
            problems.add(f"{path}.name", f"the tool {name!r} is listed twice.")
            continue
        seen.add(name)
        description = tool.get("description", "")
        if not isinstance(description, str):
            problems.add(f"{path}.description", "must be a string.")
            continue
        parameters = tool.get("parameters")
        if parameters is None:
            parameters = EMPTY_PARAMETERS
        elif not isinstance(parameters, dict):
            problems.add(f"{path}.parameters", "must be a JSON Schema object.")
            continue
        out.append({"name": name, "description": description, "parameters": parameters})
    return out


def _check_context(context: Any, problems: _Problems) -> list[dict]:
    if context is None:
        return []
    if not isinstance(context, list):
        problems.add("context", "must be a list.")
        return []
    out = []
    for index, item in enumerate(context):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("description"), str)
            or not isinstance(item.get("value"), str)
        ):
            problems.add(f"context[{index}]", 'must be {"description": string, "value": string}.')
            continue
        out.append({"description": item["description"], "value": item["value"]})
    return out


# --- AG-UI messages -> internal messages


def content_text(content: Any) -> str:
    """A string, or the text parts of a list of parts joined in order (media parts dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


def preamble(context: list[dict], state: Any) -> str:
    """What the application tells the model beside the conversation: its context and its state."""
    lines: list[str] = []
    if context:
        lines.append("Context from the application:")
        lines += [f"- {item['description']}: {item['value']}" for item in context]
    if state not in (None, {}, [], ""):
        if lines:
            lines.append("")
        lines.append("The application's current shared state (JSON):")
        lines.append(json.dumps(state, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines)


def to_internal_messages(parsed: RunAgentInput, state: Any = None) -> list[dict]:
    """The conversation in the runtime's format; raises ``InvalidRunInput`` for broken pairings."""
    problems = _Problems()
    out: list[dict] = []
    intro = preamble(parsed.context, state)
    if intro:
        out.append({"role": "system", "content": intro})
    known: set[str] = set()  # tool calls of earlier assistant messages
    pending: list[str] = []  # calls of the last assistant message not answered yet
    answered: set[str] = set()

    def settle() -> None:
        # The conversation moves on: every call still unanswered gets an error result.
        for call_id in pending:
            out.append({"role": "tool", "tool_call_id": call_id, "content": UNANSWERED_TOOL_CALL, "is_error": True})
            answered.add(call_id)
        pending.clear()

    for index, message in enumerate(parsed.messages):
        role = message["role"]
        path = f"messages[{index}]"
        if role in IGNORED_ROLES:
            continue
        if role in ("system", "developer"):
            out.append({"role": "system", "content": message["content"]})
        elif role == "user":
            settle()
            text = content_text(message["content"])
            if text:  # only media the models cannot take: dropped with it, as the spec asks
                out.append({"role": "user", "content": text})
        elif role == "assistant":
            settle()
            calls = []
            for call in message.get("toolCalls") or ():
                arguments = call["function"].get("arguments") or ""
                calls.append(
                    {
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "arguments": json.loads(arguments) if arguments.strip() else {},
                    }
                )
            text = message.get("content") or ""
            if not text and not calls:
                continue  # nothing a model could read
            assistant: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                assistant["tool_calls"] = calls
                known.update(call["id"] for call in calls)
                pending[:] = [call["id"] for call in calls]
            out.append(assistant)
        elif role == "tool":
            call_id = message["toolCallId"]
            if call_id in answered:
                problems.add(f"{path}.toolCallId", f"the tool call {call_id!r} is already answered.")
                continue
            if call_id not in known or call_id not in pending:
                problems.add(
                    f"{path}.toolCallId",
                    f"{call_id!r} is not a tool call of the assistant message just before it.",
                )
                continue
            error = message.get("error")
            text = content_text(message.get("content"))
            out.append(
                {"role": "tool", "tool_call_id": call_id, "content": text or error or "", "is_error": bool(error)}
            )
            pending.remove(call_id)
            answered.add(call_id)
    settle()
    if not any(m["role"] in ("user", "tool") for m in out) and intro:
        # The spec allows a run on state (or context) alone, with no message: the model still
        # needs a turn to answer, so it is asked to act on what the preamble gave it.
        out.append({"role": "user", "content": STATE_ONLY_TURN})
    if not any(m["role"] in ("user", "tool") for m in out):
        problems.add("messages", "must contain at least one user message (or tool results to continue from).")
    problems.raise_if_any()
    return out
