"""The agent loop: stream a model turn, run the tools it asked for, repeat until it answers.

Internal messages (also what sessions store)::

    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [{"id": str, "name": str, "arguments": dict}]}
    {"role": "tool", "tool_call_id": str, "content": str, "is_error": bool}

The loop emits TEXT_MESSAGE_* and TOOL_CALL_* events only; the durable executor owns RUN_STARTED,
RUN_FINISHED and RUN_ERROR. Every START it emits is closed by its END, also on errors and on
cancellation. It never calls ``emit`` concurrently, even while tools run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import tracing
from .agent import RuntimeAgent
from .errors import MAX_TURNS_EXCEEDED, RunFailed
from .events import Emit, EventType, make_event
from .interrupts import (
    APPROVE,
    ASK_HUMAN,
    EDIT,
    NEVER,
    REJECT,
    Decision,
    InterruptRequest,
    Resume,
    RunInterrupted,
    answer_content,
    needs_approval,
    refusal,
)
from .providers import Finish, ModelRequest, Provider, TextDelta, ToolCallArgsDelta, ToolCallEnd, ToolCallStart, Usage
from .tools import Tool, ToolContext

_EMPTY: Mapping[str, Any] = {}
_DEFAULT_MODELS = {"scripted": "scripted-offline"}


@dataclass(slots=True)
class AgentOutcome:
    text: str  # the final assistant message's text
    new_messages: list[dict]  # assistant and tool messages produced by this run, in order
    input_tokens: int = 0  # the prompts' uncached part, as the APIs bill it
    output_tokens: int = 0
    stop_reason: Literal["completed", "client_tool"] = "completed"
    pending_tool_calls: list[dict] = field(default_factory=list)  # client tool calls awaiting results
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model: str = ""  # the model the calls asked for (what the run is priced by)

    @property
    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens)


# The checkpoint's names of the four token counts, in Usage's order.
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _add(total: Usage, used: Usage) -> None:
    total.input_tokens += used.input_tokens
    total.output_tokens += used.output_tokens
    total.cache_read_tokens += used.cache_read_tokens
    total.cache_write_tokens += used.cache_write_tokens


def _outcome(text: str, new_messages: list[dict], used: Usage, model: str, **more: Any) -> AgentOutcome:
    return AgentOutcome(
        text,
        new_messages,
        used.input_tokens,
        used.output_tokens,
        cache_read_tokens=used.cache_read_tokens,
        cache_write_tokens=used.cache_write_tokens,
        model=model,
        **more,
    )


# Why a resumed call waited: for a person's decision, or for runs it started that paused.
PERSON = "person"
CHILDREN = "children"


class _Call:
    __slots__ = ("args", "arguments", "error", "id", "name", "waits")

    def __init__(self, call_id: str, name: str, arguments: dict | None = None, waits: str = "") -> None:
        self.id = call_id
        self.name = name
        self.args: list[str] = []
        self.arguments: dict = arguments if arguments is not None else {}
        self.error: str | None = None
        self.waits = waits  # PERSON or CHILDREN, for a call that waited

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    def parse(self) -> None:
        raw = "".join(self.args).strip()
        if not raw:
            return
        try:
            value = json.loads(raw)
        except ValueError as exc:
            self.error = f"Invalid JSON arguments for tool {self.name!r}: {exc}. Send one JSON object."
            return
        except RecursionError:  # a model may nest brackets thousands deep
            self.error = f"Invalid JSON arguments for tool {self.name!r}: nested too deeply. Send one JSON object."
            return
        if isinstance(value, dict):
            self.arguments = value
        else:
            self.error = f"Arguments for tool {self.name!r} must be a JSON object, not {type(value).__name__}."


class _Ids:
    """Unique ids without a syscall each: a random per-process prefix plus a counter.

    uuid4() reads os.urandom for every id, which dominated the loop's own overhead. The prefix is
    drawn again in forked children (Celery's prefork pool), so siblings never share it.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = uuid.uuid4().hex[:20]
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self.counter):x}"


_new_id = _Ids()
os.register_at_fork(after_in_child=_new_id.reset)


def _client_schemas(client_tools: Sequence[dict], server: Mapping[str, Tool]) -> tuple[list[dict], set[str]]:
    schemas: list[dict] = []
    names: set[str] = set()
    for item in client_tools:
        name = item.get("name")
        if not name or name in server or name in names:  # a server tool of the same name wins
            continue
        names.add(name)
        schemas.append(
            {
                "name": name,
                "description": item.get("description") or "",
                "parameters": item.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return schemas, names


def model_name(agent: RuntimeAgent) -> str:
    """The model an agent's calls ask for (a provider's default when its spec names none)."""
    return agent.spec.model or _DEFAULT_MODELS.get(agent.spec.provider, "")


async def run_agent(
    agent: RuntimeAgent,
    messages: list[dict],
    emit: Emit,
    *,
    client_tools: Sequence[dict] = (),
    context_metadata: Mapping | None = None,
    run_id: str | None = None,
    resume: Resume | None = None,
    journal: ToolJournal | None = None,
) -> AgentOutcome:
    """Run the agent on a conversation until it answers, asks a client tool, or hits max_turns.

    Raises ``RunInterrupted`` when a call waits for a person; ``resume`` continues from there.
    ``journal``: the run's tool calls beyond this attempt (a retry's stored results; see ``ToolJournal``).
    A ``RunFailed`` carries in ``usage`` what the model calls before the failure used (they are
    paid for all the same): the four token counts, ``provider`` and ``model``."""
    if agent.error is not None:
        raise agent.error
    used = Usage(0, 0)
    try:
        return await _run_agent(agent, messages, emit, client_tools, context_metadata, run_id, resume, used, journal)
    except RunFailed as failed:
        if failed.usage is None:
            usage = {name: getattr(used, name) for name in TOKEN_FIELDS}
            failed.usage = usage | {"provider": agent.spec.provider, "model": model_name(agent)}
        raise


def _call_key(name: str, arguments: Mapping) -> str:
    return json.dumps([name, arguments], sort_keys=True, ensure_ascii=False, default=str)


CUT_OFF = (
    "Tool {name!r} was cut off when the worker running it was lost, and it runs at most once: "
    "it may have taken effect. Check before calling it again."
)


class ToolJournal:
    """What a run knows of its tool calls beyond this attempt.

    On a retry after a lost worker (``from_events``): the results the lost attempt stored, by
    tool and arguments, so a call asked again gets its result back and the tool does not run
    again; and the calls it started without a result (cut off). Calls with the same tool and
    arguments are matched in order, each at most once. ``durable`` (awaited before a tool that
    runs at most once) returns when every event emitted so far is stored: the call's start is on
    record before the tool acts, so a retry knows it may have run."""

    def __init__(
        self,
        results: dict[str, list[tuple[str, bool]]] | None = None,
        cut_off: dict[str, int] | None = None,
        durable: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._results = results or {}
        self._cut_off = cut_off or {}
        self.durable = durable

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping],
        durable: Callable[[], Awaitable[None]] | None = None,
        exclude: Iterable[str] = (),
    ) -> ToolJournal:
        """From a run's stored tool events, in seq order: each call's name and arguments (its
        ``TOOL_CALL_START`` and ``TOOL_CALL_ARGS``) with its ``TOOL_CALL_RESULT``, if any.
        Calls of the tools in ``exclude`` are left out (they run again)."""
        excluded = set(exclude)
        calls: dict[str, _Call] = {}
        answered: dict[str, tuple[str, bool]] = {}
        for event in events:
            kind, call_id = event.get("type"), event.get("toolCallId")
            if kind == EventType.TOOL_CALL_START:
                calls[call_id] = _Call(call_id, event.get("toolCallName", ""))
            elif kind == EventType.TOOL_CALL_ARGS and call_id in calls:
                calls[call_id].args.append(event.get("delta") or "")
            elif kind == EventType.TOOL_CALL_RESULT and isinstance(event.get("content"), str):
                answered[call_id] = (event["content"], bool(event.get("isError")))
        results: dict[str, list[tuple[str, bool]]] = {}
        cut_off: dict[str, int] = {}
        for call_id, call in calls.items():
            call.parse()
            if call.error is not None or call.name in excluded:
                continue
            key = _call_key(call.name, call.arguments)
            if call_id in answered:
                results.setdefault(key, []).append(answered[call_id])
            else:
                cut_off[key] = cut_off.get(key, 0) + 1
        return cls(results, cut_off, durable)

    def take(self, name: str, arguments: Mapping) -> tuple[str, bool] | None:
        """The stored (content, is_error) of the oldest such call not yet taken, if any."""
        found = self._results.get(_call_key(name, arguments))
        return found.pop(0) if found else None

    def take_cut_off(self, name: str, arguments: Mapping) -> bool:
        """Whether a call like this one was started and never answered (once per such call)."""
        key = _call_key(name, arguments)
        if self._cut_off.get(key, 0) <= 0:
            return False
        self._cut_off[key] -= 1
        return True

    def __len__(self) -> int:
        return sum(len(found) for found in self._results.values())


async def _run_agent(
    agent: RuntimeAgent,
    messages: list[dict],
    emit: Emit,
    client_tools: Sequence[dict],
    context_metadata: Mapping | None,
    run_id: str | None,
    resume: Resume | None,
    used: Usage,  # filled in as the calls report (the caller reads it when a call fails)
    journal: ToolJournal | None = None,
) -> AgentOutcome:
    spec = agent.spec
    provider: Provider = agent.provider  # type: ignore[assignment]  # set whenever error is None
    offered: Sequence[dict] = agent.tool_schemas
    client_names: set[str] = set()
    if client_tools:
        extra, client_names = _client_schemas(client_tools, agent.tool_map)
        offered = [*offered, *extra]
    model = model_name(agent)
    metadata = context_metadata if context_metadata is not None else _EMPTY
    max_turns = max(1, spec.max_turns)
    history = list(messages)
    new_messages: list[dict] = []
    first_turn = 0

    if resume is not None:
        point = resume.checkpoint
        history, new_messages = list(point["history"]), list(point["new_messages"])
        _add(used, Usage(*(int(point.get(name) or 0) for name in TOKEN_FIELDS)))
        first_turn = point["turn"] + 1
        waited = [_Call(c["id"], c["name"], c["arguments"], c.get("waits", PERSON)) for c in point["waiting"]]
        results = await _run_tools(agent, waited, emit, run_id, metadata, client_names, resume.decisions, journal)
        held = _record_results(waited, results, history, new_messages)
        if held:  # a run a call started paused again
            _interrupt(history, new_messages, used, point["turn"], [], held, point.get("client_calls") or [])
        if point.get("client_calls"):
            text = next((m.get("content", "") for m in reversed(history) if m.get("role") == "assistant"), "")
            return _asks_the_client(text, new_messages, used, model, list(point["client_calls"]))
        if first_turn >= max_turns:
            raise RunFailed(MAX_TURNS_EXCEEDED, f"The agent used its last allowed model turn (max_turns={max_turns}).")

    for turn in range(first_turn, max_turns):
        request = ModelRequest(model, spec.system_prompt, history, offered, spec.parameters, emit)
        if tracing.enabled:
            text, calls, turn_usage = await _traced_turn(spec.provider, provider, request, emit)
        else:
            text, calls, turn_usage = await _stream_turn(provider, request, emit)
        _add(used, turn_usage)
        assistant: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            assistant["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
        history.append(assistant)
        new_messages.append(assistant)
        if not calls:
            return _outcome(text, new_messages, used, model)

        pending = [c for c in calls if c.name in client_names and c.error is None]
        if not pending and turn == max_turns - 1:
            raise RunFailed(
                MAX_TURNS_EXCEEDED,
                f"The agent still wanted to call tools after its last allowed model turn (max_turns={max_turns}).",
            )
        to_run = [c for c in calls if c not in pending]
        waiting = [c for c in to_run if _waits_for_a_person(agent, c)]
        free = [c for c in to_run if c not in waiting]
        results = await _run_tools(agent, free, emit, run_id, metadata, client_names, journal=journal)
        held = _record_results(free, results, history, new_messages)
        if waiting or held:
            client_calls = [c.as_dict() for c in pending]
            _interrupt(history, new_messages, used, turn, waiting, held, client_calls)
        if pending:
            calls_for_client = [c.as_dict() for c in pending]
            return _asks_the_client(text, new_messages, used, model, calls_for_client)
    raise AssertionError("unreachable: the last turn returns or raises")


def _asks_the_client(text: str, new_messages: list[dict], used: Usage, model: str, calls: list[dict]) -> AgentOutcome:
    """The run ends for now: the client runs these tools (AG-UI) and sends their results."""
    return _outcome(text, new_messages, used, model, stop_reason="client_tool", pending_tool_calls=calls)


def _record_results(
    calls: Sequence[_Call],
    results: Sequence[tuple[str, bool] | RunInterrupted],
    history: list[dict],
    new_messages: list[dict],
) -> list[tuple[_Call, RunInterrupted]]:
    """Append the tool results to the conversation; returns the calls whose child run paused."""
    held: list[tuple[_Call, RunInterrupted]] = []
    for call, result in zip(calls, results, strict=True):
        if isinstance(result, RunInterrupted):
            held.append((call, result))
            continue
        content, is_error = result
        tool_message = {"role": "tool", "tool_call_id": call.id, "content": content, "is_error": is_error}
        history.append(tool_message)
        new_messages.append(tool_message)
    return held


def _interrupt(
    history: list[dict],
    new_messages: list[dict],
    used: Usage,
    turn: int,
    waiting: Sequence[_Call],
    held: Sequence[tuple[_Call, RunInterrupted]],
    client_calls: list[dict],
) -> None:
    """Pause the run: ``waiting`` calls need a person, ``held`` calls wait for runs they started
    (a star member's delegation) that paused themselves. Raises ``RunInterrupted``."""
    checkpoint = {
        "history": history,
        "new_messages": new_messages,
        **{name: getattr(used, name) for name in TOKEN_FIELDS},
        "turn": turn,
        "waiting": [c.as_dict() | {"waits": PERSON} for c in waiting]
        + [c.as_dict() | {"waits": CHILDREN} for c, _ in held],
        "client_calls": client_calls,
    }
    requests = [InterruptRequest.for_call(c.id, c.name, c.arguments) for c in waiting]
    children = [child for _, paused in held for child in paused.children]
    raise RunInterrupted(requests, checkpoint, children=children)


def _waits_for_a_person(agent: RuntimeAgent, call: _Call) -> bool:
    if call.error is not None:
        return False
    tool = agent.tool_map.get(call.name)
    if tool is None:
        return False
    if call.name == ASK_HUMAN:
        return True
    approvals = agent.spec.approvals
    rule = approvals.get(call.name) or approvals.get(tool.listed_as) or tool.requires_approval or NEVER
    return needs_approval(rule, call.arguments)


async def _traced_turn(
    provider_name: str, provider: Provider, request: ModelRequest, emit: Emit
) -> tuple[str, list[_Call], Usage]:
    """``_stream_turn`` in a ``chat <model>`` span (tracing on): its usage, or why it failed."""
    with tracing.chat_span(provider_name, request.model) as span:
        try:
            text, calls, used = await _stream_turn(provider, request, emit)
        except RunFailed as exc:
            tracing.chat_failed(span, exc.code, exc.message)
            raise
        tracing.end_chat(
            span,
            used.input_tokens,
            used.output_tokens,
            ["tool_calls" if calls else "stop"],
            cache_read_tokens=used.cache_read_tokens,
            cache_write_tokens=used.cache_write_tokens,
        )
        return text, calls, used


async def _stream_turn(provider: Provider, request: ModelRequest, emit: Emit) -> tuple[str, list[_Call], Usage]:
    """One model call, relayed as AG-UI events while it streams."""
    message_id = _new_id()  # the assistant message; tool calls point at it as their parent
    text_id: str | None = None  # the text message being streamed, if any
    first_text = True
    parts: list[str] = []
    calls: list[_Call] = []
    open_calls: dict[str, _Call] = {}
    used = Usage(0, 0)

    async def close_open() -> None:
        nonlocal text_id
        if text_id is not None:
            closing, text_id = text_id, None
            await emit(make_event(EventType.TEXT_MESSAGE_END, messageId=closing))
        while open_calls:
            call_id, _ = open_calls.popitem()
            await emit(make_event(EventType.TOOL_CALL_END, toolCallId=call_id))

    try:
        async with contextlib.aclosing(provider.stream(request)) as events:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    if not event.text:
                        continue
                    if text_id is None:
                        text_id = message_id if first_text else _new_id()
                        first_text = False
                        await emit(make_event(EventType.TEXT_MESSAGE_START, messageId=text_id, role="assistant"))
                    parts.append(event.text)
                    await emit(make_event(EventType.TEXT_MESSAGE_CONTENT, messageId=text_id, delta=event.text))
                elif kind is ToolCallArgsDelta:
                    call = open_calls.get(event.id)
                    if call is not None and event.delta:
                        call.args.append(event.delta)
                        await emit(make_event(EventType.TOOL_CALL_ARGS, toolCallId=event.id, delta=event.delta))
                elif kind is ToolCallStart:
                    if text_id is not None:  # AG-UI clients want the text closed before a tool call opens
                        closing, text_id = text_id, None
                        await emit(make_event(EventType.TEXT_MESSAGE_END, messageId=closing))
                    call = _Call(event.id, event.name)
                    calls.append(call)
                    open_calls[event.id] = call
                    await emit(
                        make_event(
                            EventType.TOOL_CALL_START,
                            toolCallId=event.id,
                            toolCallName=event.name,
                            parentMessageId=message_id,
                        )
                    )
                elif kind is ToolCallEnd:
                    if open_calls.pop(event.id, None) is not None:
                        await emit(make_event(EventType.TOOL_CALL_END, toolCallId=event.id))
                elif kind is Usage:
                    _add(used, event)
                elif kind is Finish:
                    pass
    except BaseException:
        # Provider error or cancellation: close what is open, then let the original error through.
        with contextlib.suppress(Exception):
            await close_open()
        raise
    await close_open()
    for call in calls:
        call.parse()
    return "".join(parts), calls, used


async def _run_tools(
    agent: RuntimeAgent,
    calls: list[_Call],
    emit: Emit,
    run_id: str | None,
    metadata: Mapping,
    client_names: set[str],
    decisions: Mapping[str, Decision] | None = None,
    journal: ToolJournal | None = None,
) -> list[tuple[str, bool] | RunInterrupted]:
    """Run one turn's tool calls in parallel; each result is emitted as soon as it is ready.
    With ``decisions`` (a resumed run) each call is carried out as a person decided. A call
    whose tool started a run that paused gives that ``RunInterrupted`` instead of a result.
    A call the ``journal`` has a result for (a retry) gets that result, and its tool does not run;
    a tool that runs at most once runs only once its call's start is stored, and not again on a
    retry that finds it cut off."""
    if not calls:
        return []
    out = _serialized(emit)  # parallel tools, and tools that fan out themselves, share one emit

    async def one(call: _Call) -> tuple[str, bool] | RunInterrupted:
        if not tracing.enabled:
            return await untraced(call)
        with tracing.tool_span(call.name, call.id) as span:
            result = await untraced(call)
            if not isinstance(result, RunInterrupted) and result[1]:
                tracing.tool_failed(span, result[0])
            return result

    async def untraced(call: _Call) -> tuple[str, bool] | RunInterrupted:
        try:
            once = _runs_once(agent, call)
            reused = None
            if journal is not None and call.error is None and call.waits != CHILDREN:
                reused = journal.take(call.name, call.arguments)
                if reused is None and once and journal.take_cut_off(call.name, call.arguments):
                    reused = CUT_OFF.format(name=call.name), True
            if once and reused is None and journal is not None and journal.durable is not None:
                await journal.durable()
            if reused is not None:
                content, is_error = reused
            elif decisions is None or call.waits == CHILDREN:
                # A call held by a paused child is run again: the tool finds and resumes that run.
                content, is_error = await _execute(agent, call, out, run_id, metadata, client_names)
            else:
                decision = decisions.get(call.id) or Decision(REJECT, message="No decision was recorded.")
                content, is_error = await _carry_out(agent, call, decision, out, run_id, metadata, client_names)
        except RunInterrupted as paused:
            return paused  # no result yet: the run pauses once the turn's other calls are done
        await out(
            make_event(
                EventType.TOOL_CALL_RESULT,
                messageId=_new_id(),
                toolCallId=call.id,
                content=content,
                role="tool",
                isError=True if is_error else None,  # stored for a retry's reuse; doors pass their own fields
            )
        )
        return content, is_error

    if len(calls) == 1:
        return [await one(calls[0])]
    return list(await asyncio.gather(*(one(call) for call in calls)))


def _runs_once(agent: RuntimeAgent, call: _Call) -> bool:
    tool = agent.tool_map.get(call.name)
    return tool is not None and tool.once


def _serialized(emit: Emit) -> Emit:
    """An emit that parallel tools can share: the executor numbers events one at a time."""
    lock = asyncio.Lock()

    async def serialized(event: dict) -> None:
        async with lock:
            await emit(event)

    return serialized


async def _carry_out(
    agent: RuntimeAgent,
    call: _Call,
    decision: Decision,
    emit: Emit,
    run_id: str | None,
    metadata: Mapping,
    client_names: set[str],
) -> tuple[str, bool]:
    """A call that waited for a person: answered, run as asked or as edited, or refused."""
    if call.name == ASK_HUMAN:
        return answer_content(decision)
    if decision.decision == EDIT and decision.arguments is not None:
        call.arguments = dict(decision.arguments)
    elif decision.decision != APPROVE:
        return refusal(call.name, decision.message), True
    return await _execute(agent, call, emit, run_id, metadata, client_names)


async def _execute(
    agent: RuntimeAgent, call: _Call, emit: Emit, run_id: str | None, metadata: Mapping, client_names: set[str]
) -> tuple[str, bool]:
    """Run one tool call; every failure becomes an error result the model can read."""
    if call.error is not None:
        return call.error, True
    tool = agent.tool_map.get(call.name)
    if tool is None:
        known = ", ".join([*agent.tool_map, *sorted(client_names)]) or "none"
        return f"Unknown tool {call.name!r}. Available tools: {known}.", True
    kwargs = call.arguments
    if tool.needs_context:
        context = ToolContext(run_id=run_id, emit=emit, tool_call_id=call.id, metadata=metadata)
        kwargs = {**kwargs, "context": context}
    try:
        async with asyncio.timeout(tool.timeout) as deadline:
            if tool.is_async:
                result = await tool.fn(**kwargs)
            else:
                result = await asyncio.to_thread(tool.fn, **kwargs)  # the thread itself cannot be stopped
    except TimeoutError as exc:
        if deadline.expired():
            return f"Tool {call.name!r} timed out after {tool.timeout:g}s.", True
        return f"Tool {call.name!r} failed: {type(exc).__name__}: {exc}", True
    except RunInterrupted:
        raise  # a run the tool started waits for a person: so does this one
    except Exception as exc:
        return f"Tool {call.name!r} failed: {type(exc).__name__}: {exc}", True
    if isinstance(result, str):
        return result, False
    try:
        return json.dumps(result, ensure_ascii=False, default=str), False
    except (TypeError, ValueError):
        return str(result), False
