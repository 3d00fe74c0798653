"""The OpenAI wire shapes, both ways, with no database: request bodies into run inputs, and a
run's stored AG-UI events into Chat Completions chunks and Responses API events.

The runtime's internal messages (``cosmos.runtime.loop``)::

    {"role": "system", "content": str}
    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [{"id", "name", "arguments": dict}]}
    {"role": "tool", "tool_call_id": str, "content": str, "is_error": bool}

Every translation of events here is a pure function of the stored events: reading a run again
from its first event gives the same wire events with the same ``sequence_number``, which is how
a Responses stream resumes after ``starting_after`` losing nothing and repeating nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cosmos.services.errors import Invalid
from interfaces.edge.parsers import loads

MAX_MESSAGES = 2_000
MAX_TOOLS = 128
MAX_NAME_CHARS = 128
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
UNANSWERED_TOOL_CALL = "No result was provided for this tool call."
EMPTY_PARAMETERS = {"type": "object", "properties": {}}


class InvalidBody(Invalid):
    """A request body the door refuses (400); ``param`` names the field, as OpenAI's errors do."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code or self.code, details={"param": param} if param else None)
        self.param = param


# --- requests


def require_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise InvalidBody("The body must be a JSON object.")
    return body


def model_of(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidBody("'model' is required: the id of an agent, star or workflow (GET /v1/models).", "model")
    if len(model) > 200:
        raise InvalidBody("'model' is too long.", "model")
    return model.strip()


def flag(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidBody(f"'{name}' must be true or false.", name)
    return value


def refuse_unsupported(body: dict) -> None:
    """What this door does not do is refused by name, not silently ignored."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidBody("Only n=1 is supported: a run has one answer.", "n", "unsupported_parameter")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise InvalidBody("logprobs are not supported.", "logprobs", "unsupported_parameter")
    if body.get("audio") is not None or body.get("modalities") not in (None, ["text"]):
        raise InvalidBody("Only text output is supported.", "modalities", "unsupported_parameter")


def text_of(content: Any, param: str) -> str:
    """Message content: a string, or a list of text parts (``text`` / ``input_text`` /
    ``output_text``); any other part (images, audio, files) is refused."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidBody("Message content must be a string or a list of text parts.", param)
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise InvalidBody(
                "Only text parts are supported (images, audio and files are not).",
                f"{param}[{index}]",
                "unsupported_content",
            )
        if part.get("type") not in ("text", "input_text", "output_text", None):
            raise InvalidBody(f"Content part type {part.get('type')!r} is not supported.", f"{param}[{index}].type")
        texts.append(part["text"])
    return "".join(texts)


def _arguments(raw: Any, param: str) -> dict:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise InvalidBody("Tool call arguments must be a JSON string.", param)
    try:
        value = loads(raw)  # the edge's parser: too deep, NaN or NUL is bad input, not a crash
    except ValueError:
        raise InvalidBody("Tool call arguments are not valid JSON.", param) from None
    if not isinstance(value, dict):
        raise InvalidBody("Tool call arguments must be a JSON object.", param)
    return value


class Conversation:
    """Builds the internal messages, checking that every tool result answers a call of the
    assistant message just before it; calls left unanswered get an error result."""

    def __init__(self) -> None:
        self.out: list[dict] = []
        self.pending: list[str] = []
        self.answered: set[str] = set()

    def settle(self) -> None:
        for call_id in self.pending:
            self.out.append(
                {"role": "tool", "tool_call_id": call_id, "content": UNANSWERED_TOOL_CALL, "is_error": True}
            )
            self.answered.add(call_id)
        self.pending.clear()

    def system(self, text: str) -> None:
        if text:
            self.out.append({"role": "system", "content": text})

    def user(self, text: str) -> None:
        self.settle()
        self.out.append({"role": "user", "content": text})

    def assistant(self, text: str, calls: list[dict]) -> None:
        self.settle()
        if not text and not calls:
            return
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
            self.pending = [call["id"] for call in calls]
        self.out.append(message)

    def tool(self, call_id: Any, text: str, param: str) -> None:
        if not isinstance(call_id, str) or not call_id:
            raise InvalidBody("A tool result needs the id of the call it answers.", param)
        if call_id in self.answered or call_id not in self.pending:
            raise InvalidBody(f"{call_id!r} is not an unanswered tool call of the assistant message before it.", param)
        self.out.append({"role": "tool", "tool_call_id": call_id, "content": text, "is_error": False})
        self.pending.remove(call_id)
        self.answered.add(call_id)

    def finish(self) -> list[dict]:
        self.settle()
        if not any(m["role"] in ("user", "tool") for m in self.out):
            raise InvalidBody("The conversation needs at least one user message.", "messages")
        return self.out


def chat_messages(body: dict) -> list[dict]:
    """Chat Completions ``messages`` as internal messages."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidBody("'messages' must be a non-empty list.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise InvalidBody(f"At most {MAX_MESSAGES} messages.", "messages")
    talk = Conversation()
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidBody("Each message must be an object.", param)
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise InvalidBody(f"Unknown role {role!r}; use one of {', '.join(CHAT_ROLES)}.", f"{param}.role")
        content = text_of(message.get("content"), f"{param}.content")
        if role in ("system", "developer"):
            talk.system(content)
        elif role == "user":
            talk.user(content)
        elif role == "assistant":
            calls = []
            raw_calls = message.get("tool_calls") or []
            if not isinstance(raw_calls, list):
                raise InvalidBody("'tool_calls' must be a list.", f"{param}.tool_calls")
            for number, call in enumerate(raw_calls):
                where = f"{param}.tool_calls[{number}]"
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(call.get("id"), str):
                    raise InvalidBody("A tool call needs an id and a function.", where)
                name = function.get("name")
                if not isinstance(name, str) or not name:
                    raise InvalidBody("A tool call needs a function name.", f"{where}.function.name")
                args = _arguments(function.get("arguments"), f"{where}.function.arguments")
                calls.append({"id": call["id"], "name": name, "arguments": args})
            talk.assistant(content, calls)
        else:
            talk.tool(message.get("tool_call_id"), content, f"{param}.tool_call_id")
    return talk.finish()


def _tool(name: Any, description: Any, parameters: Any, param: str) -> dict:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise InvalidBody(f"A tool needs a printable name of 1 to {MAX_NAME_CHARS} characters.", f"{param}.name")
    if description is not None and not isinstance(description, str):
        raise InvalidBody("A tool's description must be a string.", f"{param}.description")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidBody("A tool's parameters must be a JSON Schema object.", f"{param}.parameters")
    return {"name": name, "description": description or "", "parameters": parameters or EMPTY_PARAMETERS}


def client_tools(body: dict, *, flat: bool) -> list[dict]:
    """The request's function tools (the client runs them): Chat Completions nests each under
    ``function``, the Responses API does not (``flat``). ``tool_choice: "none"`` offers none."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise InvalidBody("Only tool_choice 'auto' and 'none' are supported.", "tool_choice", "unsupported_parameter")
    if tools is None or choice == "none":
        return []
    if not isinstance(tools, list):
        raise InvalidBody("'tools' must be a list.", "tools")
    if len(tools) > MAX_TOOLS:
        raise InvalidBody(f"At most {MAX_TOOLS} tools.", "tools")
    out, seen = [], set()
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidBody("Only function tools are supported.", f"{param}.type", "unsupported_tool")
        spec = tool if flat else tool.get("function")
        if not isinstance(spec, dict):
            raise InvalidBody("A function tool needs its 'function'.", f"{param}.function")
        item = _tool(spec.get("name"), spec.get("description"), spec.get("parameters"), param)
        if item["name"] in seen:
            raise InvalidBody(f"The tool {item['name']!r} is listed twice.", f"{param}.name")
        seen.add(item["name"])
        out.append(item)
    return out


def response_messages(body: dict, history: list[dict] | None = None) -> list[dict]:
    """Responses API ``instructions`` and ``input`` (a string, or a list of message items,
    ``function_call`` items and ``function_call_output`` items) as internal messages, after
    ``history`` (the conversation of ``previous_response_id``), whose last unanswered tool calls
    the input may answer."""
    talk = Conversation()
    for message in history or ():
        talk.out.append(message)
        if message.get("role") == "assistant":
            talk.pending = [call["id"] for call in message.get("tool_calls") or ()]
        elif message.get("role") == "tool" and message.get("tool_call_id") in talk.pending:
            talk.pending.remove(message["tool_call_id"])
            talk.answered.add(message["tool_call_id"])
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidBody("'instructions' must be a string.", "instructions")
    talk.system(instructions or "")
    items = body.get("input")
    if isinstance(items, str):
        if not items.strip():
            raise InvalidBody("'input' must not be empty.", "input")
        talk.user(items)
        return talk.finish()
    if not isinstance(items, list) or not items:
        raise InvalidBody("'input' must be a string or a non-empty list of items.", "input")
    if len(items) > MAX_MESSAGES:
        raise InvalidBody(f"At most {MAX_MESSAGES} input items.", "input")
    calls: list[dict] = []
    for index, item in enumerate(items):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidBody("Each input item must be an object.", param)
        kind = item.get("type", "message")
        if kind == "function_call":
            name = item.get("name")
            if not isinstance(name, str) or not name or not isinstance(item.get("call_id"), str):
                raise InvalidBody("A function_call item needs call_id and name.", param)
            calls.append({"id": item["call_id"], "name": name, "arguments": _arguments(item.get("arguments"), param)})
            continue
        if calls:
            talk.assistant("", calls)
            calls = []
        if kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
            talk.tool(item.get("call_id"), text, f"{param}.call_id")
        elif kind == "message":
            role = item.get("role")
            if role not in ("system", "developer", "user", "assistant"):
                raise InvalidBody(f"Unknown role {role!r}.", f"{param}.role")
            content = text_of(item.get("content"), f"{param}.content")
            if role == "assistant":
                talk.assistant(content, [])
            elif role == "user":
                talk.user(content)
            else:
                talk.system(content)
        else:
            raise InvalidBody(f"Input item type {kind!r} is not supported.", f"{param}.type", "unsupported_input")
    if calls:
        talk.assistant("", calls)
    return talk.finish()


def last_user_text(messages: list[dict]) -> str:
    """What a star or a workflow gets: the last user message."""
    for message in reversed(messages):
        if message["role"] == "user" and message["content"].strip():
            return message["content"]
    raise InvalidBody("A star or a workflow needs a user message with text.", "messages")


# --- events


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str = ""
    result: str | None = None


@dataclass
class Reading:
    """What a run's events said so far: its text, its tool calls, how it ended."""

    client_names: frozenset[str] = frozenset()
    text: str = ""
    calls: dict[str, ToolCall] = field(default_factory=dict)
    ended: str | None = None  # finished | error | cancelled | paused
    outcome: str | None = None
    error: dict | None = None

    def read(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "TEXT_MESSAGE_CONTENT":
            self.text += event.get("delta") or ""
        elif kind == "TOOL_CALL_START":
            call_id = event.get("toolCallId") or ""
            self.calls[call_id] = ToolCall(call_id, event.get("toolCallName") or "")
        elif kind == "TOOL_CALL_ARGS" and event.get("toolCallId") in self.calls:
            self.calls[event["toolCallId"]].arguments += event.get("delta") or ""
        elif kind == "TOOL_CALL_RESULT" and event.get("toolCallId") in self.calls:
            content = event.get("content")
            self.calls[event["toolCallId"]].result = content if isinstance(content, str) else json.dumps(content)
        elif kind == "RUN_FINISHED":
            outcome = event.get("outcome")
            self.outcome = outcome if isinstance(outcome, str) else None
            self.ended = "cancelled" if outcome == "cancelled" else "finished"
        elif kind == "RUN_ERROR":
            self.ended = "cancelled" if event.get("code") == "cancelled" else "error"
            self.error = {
                "code": event.get("code") or "run_failed",
                "message": event.get("message") or "The run failed.",
            }

    def is_client_call(self, call: ToolCall) -> bool:
        return call.name in self.client_names and call.result is None

    @property
    def client_calls(self) -> list[ToolCall]:
        """The calls the client must run: its own tools, not answered by the server."""
        if self.outcome != "interrupt":
            return []
        return [call for call in self.calls.values() if self.is_client_call(call)]

    @property
    def server_calls(self) -> list[dict]:
        """The agent's own tool calls: reported in the ``asteros`` extension, never as ``tool_calls``."""
        out = []
        for call in self.calls.values():
            if call.name in self.client_names and call.result is None:
                continue
            item = {"id": call.id, "name": call.name, "arguments": call.arguments}
            if call.result is not None:
                item["result"] = call.result
            out.append(item)
        return out


def wire_tool_calls(calls: list[ToolCall]) -> list[dict]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}} for c in calls
    ]


def chat_usage(usage: dict | None) -> dict | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage["prompt"],
        "completion_tokens": usage["completion"],
        "total_tokens": usage["prompt"] + usage["completion"],
        "prompt_tokens_details": {"cached_tokens": usage["cached"]},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def responses_usage(usage: dict | None) -> dict | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage["prompt"],
        "input_tokens_details": {"cached_tokens": usage["cached"]},
        "output_tokens": usage["completion"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage["prompt"] + usage["completion"],
    }


def finish_reason(reading: Reading) -> str:
    return "tool_calls" if reading.client_calls else "stop"


class ResponsesTranslator:
    """A run's stored events as Responses API stream events, numbered from 0.

    Text messages become ``message`` output items; the client's own tools' calls become
    ``function_call`` items; the agent's server-side tool calls produce no item (the client would
    try to run them) and are listed in the final response's ``asteros`` extension.
    """

    def __init__(self, reading: Reading, base: dict) -> None:
        self.reading = reading
        self.base = base  # the response object without output/status/usage
        self.number = -1
        self.output: list[dict] = []
        self.open_text: dict[str, dict] = {}  # messageId -> its item
        self.open_calls: dict[str, dict] = {}  # toolCallId -> its item
        self.started = False

    def _event(self, kind: str, **fields: Any) -> dict:
        self.number += 1
        return {"type": kind, "sequence_number": self.number, **fields}

    def snapshot(self, status: str, usage: dict | None = None, error: dict | None = None) -> dict:
        response = {**self.base, "status": status, "output": [dict(item) for item in self.output]}
        response["usage"] = responses_usage(usage)
        response["error"] = error
        if status in ("cancelled", "incomplete"):
            response["incomplete_details"] = {"reason": "cancelled" if status == "cancelled" else "interrupted"}
        server_calls = self.reading.server_calls
        if server_calls:
            response["asteros"] = {**response.get("asteros", {}), "server_tool_calls": server_calls}
        return response

    def open(self) -> list[dict]:
        if self.started:
            return []
        self.started = True
        return [
            self._event("response.created", response=self.snapshot("queued")),
            self._event("response.in_progress", response=self.snapshot("in_progress")),
        ]

    def translate(self, event: dict) -> list[dict]:
        """Wire events for one stored event (before the run's end; ``close`` ends the stream)."""
        out = self.open()
        self.reading.read(event)
        kind = event.get("type")
        if kind == "TEXT_MESSAGE_START":
            item = {
                "type": "message",
                "id": f"msg_{event.get('messageId', '')}",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self.open_text[event.get("messageId", "")] = item
            index = len(self.output)
            self.output.append(item)
            part = {"type": "output_text", "text": "", "annotations": []}
            out.append(self._event("response.output_item.added", output_index=index, item=dict(item)))
            item["content"] = [part]
            out.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=dict(part),
                )
            )
        elif kind == "TEXT_MESSAGE_CONTENT" and event.get("messageId") in self.open_text:
            item = self.open_text[event["messageId"]]
            delta = event.get("delta") or ""
            item["content"][0]["text"] += delta
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=self.output.index(item),
                    content_index=0,
                    delta=delta,
                    logprobs=[],
                )
            )
        elif kind == "TEXT_MESSAGE_END" and event.get("messageId") in self.open_text:
            out += self._close_text(event["messageId"])
        elif kind == "TOOL_CALL_START" and event.get("toolCallName") in self.reading.client_names:
            call_id = event.get("toolCallId", "")
            item = {
                "type": "function_call",
                "id": f"fc_{call_id}",
                "call_id": call_id,
                "name": event["toolCallName"],
                "arguments": "",
                "status": "in_progress",
            }
            self.open_calls[call_id] = item
            self.output.append(item)
            out.append(self._event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item)))
        elif kind == "TOOL_CALL_ARGS" and event.get("toolCallId") in self.open_calls:
            item = self.open_calls[event["toolCallId"]]
            item["arguments"] += event.get("delta") or ""
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self.output.index(item),
                    delta=event.get("delta") or "",
                )
            )
        elif kind == "TOOL_CALL_END" and event.get("toolCallId") in self.open_calls:
            out += self._close_call(event["toolCallId"])
        elif kind == "TOOL_CALL_RESULT" and event.get("toolCallId") in self.open_calls:
            # A server tool of the same name answered it: it is not the client's after all.
            item = self.open_calls.pop(event["toolCallId"])
            self.output.remove(item)
        return out

    def _close_text(self, message_id: str) -> list[dict]:
        item = self.open_text.pop(message_id)
        item["status"] = "completed"
        index = self.output.index(item)
        part = item["content"][0]
        return [
            self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            ),
            self._event(
                "response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=dict(part)
            ),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _close_call(self, call_id: str) -> list[dict]:
        item = self.open_calls[call_id]
        if item["status"] == "completed":
            return []
        item["status"] = "completed"
        item["arguments"] = item["arguments"] or "{}"
        index = self.output.index(item)
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def close(self, status: str, usage: dict | None, error: dict | None, fallback_text: str = "") -> list[dict]:
        """The last events: whatever is open is closed, then the terminal event with the response."""
        out = self.open()
        for message_id in list(self.open_text):
            out += self._close_text(message_id)
        for call_id in list(self.open_calls):
            out += self._close_call(call_id)
        if fallback_text and not any(item["type"] == "message" for item in self.output):
            # A star's or a workflow's answer that came as no text message of the run itself.
            out += self.translate({"type": "TEXT_MESSAGE_START", "messageId": "output"})
            out += self.translate({"type": "TEXT_MESSAGE_CONTENT", "messageId": "output", "delta": fallback_text})
            out += self.translate({"type": "TEXT_MESSAGE_END", "messageId": "output"})
        # Calls the server answered are not the client's: dropped from the output.
        self.output = [item for item in self.output if item["type"] != "function_call" or self._is_client(item)]
        terminal = {
            "completed": "response.completed",
            "failed": "response.failed",
            "cancelled": "response.incomplete",
            "incomplete": "response.incomplete",
        }
        out.append(self._event(terminal[status], response=self.snapshot(status, usage, error)))
        return out

    def _is_client(self, item: dict) -> bool:
        call = self.reading.calls.get(item["call_id"])
        return call is not None and self.reading.is_client_call(call)
