"""``asteros run``: start a run of an agent, a star or a workflow and print its events as they arrive.

The target is ``kind:id`` (``star:chat-team``) or an id only one kind has (``cosmos.kinds.
resolve_reference``). A star's members and a workflow's steps are child runs: each is followed
on a task of its own from its ``SUBAGENT_STARTED`` on, and printed line by line under its label
(``[agent-2] ...``, ``[step research] ...``), so concurrent children stay readable and each
child's lines keep their order; the parent's next events wait until a finished child is printed.

Embedded mode runs it on this process's own in-process worker; distributed mode enqueues it for the
workers and follows it through the bus, like any other reader.

When the run stops for a person (an approval or a question) the terminal asks: the reply read
from stdin is resolved through ``cosmos.services.interrupts.resolve`` and the run goes on. At the
end of stdin (nobody there, ``< /dev/null``) the run is left waiting, which holds nothing, and
the command says how to resolve it later (``asteros resolve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TextIO

from django.conf import settings

from .db import db_call
from .embedded import start_embedded_worker
from .eventlog import follow
from .kinds import resolve_reference
from .models import TERMINAL_STATUSES, Run, RunEvent, RunStatus
from .runtime.events import EventType
from .runtime.interrupts import ANSWER, APPROVAL, APPROVE, EDIT, REJECT
from .services import interrupts as interrupt_services
from .services import runs as run_services
from .services.errors import Conflict, Invalid

CANCEL_WAIT_SECONDS = 15
# A pause's event may reach a reader a moment before its row is visible as interrupted.
PAUSE_VISIBLE_SECONDS = 10
WAITING = 0  # exit code when the run is left waiting for a decision: nothing went wrong


class Writer(Protocol):
    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


def render_event(event: dict, out: Writer) -> None:
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
    elif _pause_status(event) == "resumed":
        out.write("[resumed]\n")
    out.flush()


def _pause_status(event: dict) -> str | None:
    """ "pending" or "resumed" for a pause's event, else None."""
    if event.get("type") == EventType.CUSTOM and event.get("name") == interrupt_services.INTERRUPT_EVENT:
        return (event.get("value") or {}).get("status")
    return None


# --- asking on the terminal


def describe_request(kind: str, request: dict) -> str:
    """One interrupt, as the terminal shows it, ending with what to type."""
    if kind == APPROVAL:
        arguments = json.dumps(request.get("arguments"), ensure_ascii=False)
        return (
            f"[approval] the agent wants to call {request.get('tool')}({arguments})\n"
            "approve, reject [why] or edit {json arguments}? "
        )
    schema = request.get("schema")
    hint = f" (JSON matching {json.dumps(schema, ensure_ascii=False)})" if schema else ""
    return f"[question] {request.get('question')}{hint}\nyour answer (or reject [why])? "


def parse_reply(kind: str, request: dict, line: str) -> tuple[str, dict[str, Any]]:
    """A typed reply as ``resolve``'s decision and options; ``ValueError`` says what to type."""
    word, _, rest = line.strip().partition(" ")
    word, rest = word.lower(), rest.strip()
    if word in (APPROVE, "y", "yes") and kind == APPROVAL:
        return APPROVE, {}
    if word in (REJECT, "n", "no") and (kind == APPROVAL or word == REJECT):
        return REJECT, {"message": rest}
    if word == EDIT and kind == APPROVAL:
        try:
            arguments = json.loads(rest)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise ValueError('edit takes the new arguments as a JSON object, e.g. edit {"expression": "2*3"}')
        return EDIT, {"arguments": arguments}
    if kind == APPROVAL:
        raise ValueError("Type approve, reject [why] or edit {json arguments}.")
    text = rest if word == ANSWER else line.strip()
    if not text:
        raise ValueError("Type your answer, or reject [why].")
    return ANSWER, {"answer": _answer_value(text, request.get("schema"))}


def _answer_value(text: str, schema: Any) -> Any:
    """Text, or JSON when the question's schema asks for something other than a string."""
    if not isinstance(schema, dict) or schema.get("type") == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # the schema check in resolve says what is wrong with it


def reviewer() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (a container without one)
        return "cli:unknown"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _wait_until_paused(run_id: str) -> None:
    deadline = time.monotonic() + PAUSE_VISIBLE_SECONDS
    while time.monotonic() < deadline:
        if Run.objects.filter(id=run_id).values_list("status", flat=True).first() != RunStatus.RUNNING:
            return
        time.sleep(0.05)


class LineReader:
    """Lines of a stream, read on a daemon thread (started at the first ``readline``).

    Not ``asyncio.to_thread``: a read blocked on a terminal nobody types into would keep
    ``asyncio.run`` from returning after Ctrl-C (it joins the default executor's threads)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: asyncio.Queue[str] | None = None

    def isatty(self) -> bool:
        return _is_terminal(self.stream)

    async def readline(self) -> str:
        """The next line with its newline, or "" at the end of the stream."""
        if self.lines is None:
            self.lines = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._read, args=(loop, self.lines), name="asteros-stdin", daemon=True).start()
        return await self.lines.get()

    def _read(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
        while True:
            try:
                line = self.stream.readline()
            except (OSError, ValueError):  # stdin closed under us
                line = ""
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the loop is closed: nobody is asking any more
                return
            if not line:
                return


async def ask_about_pause(run_id: str, event: dict, inp: LineReader, out: TextIO) -> bool:
    """Ask about each interrupt of a pause and resolve it; False at the end of stdin."""
    await db_call(_wait_until_paused, run_id)
    for item in (event.get("value") or {}).get("interrupts", ()):
        kind, request = item.get("kind", ""), item.get("request") or {}
        while True:
            out.write(describe_request(kind, request))
            out.flush()
            line = await inp.readline()
            if not line:
                out.write("\n")
                return False
            if not inp.isatty():
                out.write(line if line.endswith("\n") else line + "\n")  # a piped reply, shown as if typed
            if not line.strip():
                continue
            try:
                decision, options = parse_reply(kind, request, line)
                await db_call(
                    interrupt_services.resolve,
                    item["id"],
                    decision,
                    resolved_by=reviewer(),
                    run_id=run_id,
                    **options,
                )
            except ValueError as exc:
                out.write(f"  {exc}\n")
                continue
            except Invalid as exc:
                out.write(f"  {exc.message}\n")
                continue
            except Conflict as exc:  # someone else decided first (another door, the timeout, a cancel)
                out.write(f"  {exc.message}\n")
            break
    return True


def write_waiting(run_id: str, out: TextIO) -> None:
    """How to resolve a run left waiting: its id, its open interrupts and the commands."""
    pending = interrupt_services.pending_interrupts(run_id)
    out.write(f"Run {run_id} is waiting for a decision; it holds no worker while it waits.\n")
    for interrupt in pending:
        request = interrupt.request or {}
        what = (
            f"{request.get('tool')}({json.dumps(request.get('arguments'), ensure_ascii=False)})"
            if interrupt.kind == APPROVAL
            else repr(request.get("question"))
        )
        out.write(f"  {interrupt.kind} {interrupt.id}: {what}\n")
    if pending:
        first = pending[0]
        reply = "approve" if first.kind == APPROVAL else "answer '<your answer>'"
        out.write(
            f"Resolve it with: python manage.py asteros resolve {first.id} {reply}\n"
            "  (approve | reject [why] | edit '{json arguments}' | answer <text or JSON>)\n"
        )
    out.flush()


# --- child runs


class LabelledLines:
    """A child run's output, written a whole line at a time behind its label."""

    def __init__(self, out: Writer, label: str) -> None:
        self.out = out
        self.prefix = f"[{label}] "
        self.partial = ""

    def write(self, text: str) -> None:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.out.write(f"{self.prefix}{line}\n")

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.partial:
            self.write("\n")
        self.flush()


def child_label(event: dict, parent: str | None = None) -> str:
    """How a ``SUBAGENT_*`` event's child is named: a workflow's step, else a star's member."""
    if event.get("stepName"):
        own = f"step {event['stepName']}"
    elif event.get("member"):
        own = str(event["member"])
    else:
        own = f"{event.get('kind') or 'run'} {event.get('runId')}"
    return f"{parent} > {own}" if parent else own


class ChildRuns:
    """The child runs (and theirs) of the run being printed, each followed on its own task."""

    def __init__(self, out: Writer) -> None:
        self.out = out
        self.tasks: dict[str, asyncio.Task] = {}

    async def see(self, event: dict, parent: str | None = None) -> None:
        """Start following a child its parent announces; wait for one its parent reports ended
        (its end is stored before the report), so its lines come before the parent's next ones."""
        kind, child_id = event.get("type"), event.get("runId")
        if kind == EventType.SUBAGENT_STARTED and child_id:
            self.watch(str(child_id), child_label(event, parent))
        elif kind in (EventType.SUBAGENT_FINISHED, EventType.SUBAGENT_ERROR):
            task = self.tasks.get(str(child_id)) if child_id else None
            if task is not None:
                await task
            elif kind == EventType.SUBAGENT_ERROR:  # refused before it had a run of its own
                LabelledLines(self.out, child_label(event, parent)).write(f"error: {event.get('message')}\n")
                self.out.flush()

    def watch(self, child_id: str, label: str, after: int = 0) -> None:
        if child_id not in self.tasks:
            self.tasks[child_id] = asyncio.ensure_future(self._print(child_id, label, after))

    async def _print(self, child_id: str, label: str, after: int) -> None:
        lines = LabelledLines(self.out, label)
        try:
            async for _seq, event in follow(child_id, after=after):
                render_event(event, lines)
                await self.see(event, label)
        finally:
            lines.close()

    def watch_from(self, positions: list[tuple[str, str, int]]) -> None:
        """Follow children already under way (a run followed from the middle: ``asteros
        resolve``), each from the position ``open_children`` read before the decision."""
        for child_id, label, last in positions:
            self.watch(child_id, label, last)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task


def open_children(run_id: str, upto: int, parent: str | None = None) -> list[tuple[str, str, int]]:
    """``(child id, label, its last seq)`` for every child (and grandchild) announced in the
    run's first ``upto`` events that has not ended."""
    from django.db.models import Max

    announced = RunEvent.objects.filter(run_id=run_id, seq__lte=upto, type=EventType.SUBAGENT_STARTED)
    found: list[tuple[str, str, int]] = []
    for data in announced.order_by("seq").values_list("data", flat=True):
        child_id = data.get("runId")
        if not child_id or Run.objects.filter(id=child_id, status__in=TERMINAL_STATUSES).exists():
            continue
        label = child_label(data, parent)
        last = RunEvent.objects.filter(run_id=child_id).aggregate(last=Max("seq"))["last"] or 0
        found.append((str(child_id), label, last))
        found += open_children(str(child_id), last, label)
    return found


# What a start hands the printer: the run, the seq to follow it after, and its children already
# under way with their own positions.
Started = tuple[str, int, list[tuple[str, str, int]]]


async def stream_run(
    target: str, message: str, *, session_id: str | None, out: TextIO, inp: TextIO | None = None
) -> int:
    """Run ``target`` (``agent-id``, ``kind:id`` or an id only one kind has) and print; returns the
    exit code (0 success or left waiting for a decision, 1 failure, 130 cancelled by Ctrl-C)."""

    kind, target_id = await db_call(resolve_reference, target)  # a typo starts nothing

    async def start() -> tuple[str, int]:
        run, _ = await db_call(
            run_services.start_run, kind.name, target_id, message, session_id=session_id, origin="cli"
        )
        return str(run.id), 0, []

    return await _drive(start, out, sys.stdin if inp is None else inp)


async def resolve_and_follow(interrupt_id: str, reply: str, *, out: TextIO, inp: TextIO | None = None) -> int:
    """``asteros resolve``: decide on an interrupt, then follow its top-level run as ``asteros run``
    does (from the decision on; embedded mode runs it here). Exit codes as ``stream_run``'s."""

    async def start() -> Started | None:
        interrupt, after, children = await db_call(_resolve_typed, interrupt_id, reply)
        out.write(f"interrupt {interrupt.id} {interrupt.status}\n")
        out.flush()
        root = str(interrupt.root_run_id)
        if await db_call(interrupt_services.pending_interrupts, root):
            await db_call(write_waiting, root, out)
            return None  # the pause waits for its other decisions
        return root, after, children

    return await _drive(start, out, sys.stdin if inp is None else inp)


def _resolve_typed(interrupt_id: str, reply: str) -> tuple[Any, int, list[tuple[str, str, int]]]:
    """Resolve with a reply typed as at the prompt. Also where the top-level run and each of its
    children under way stood before the decision: the resumed run may write its next events
    before the terminal starts following, and none of them may be missed."""
    from django.db.models import Max

    found = interrupt_services.get_interrupt(interrupt_id)
    try:
        decision, options = parse_reply(found.kind, found.request or {}, reply)
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_decision") from None
    root = str(found.root_run_id)
    after = RunEvent.objects.filter(run_id=root).aggregate(last=Max("seq"))["last"] or 0
    children = open_children(root, after)
    return interrupt_services.resolve(found.id, decision, resolved_by=reviewer(), **options), after, children


async def _drive(start: Callable[[], Awaitable[Started | None]], out: TextIO, stdin: TextIO) -> int:
    """Start (or resume) a run with ``start``, print it, ask about its pauses, end as it ends."""
    if not settings.ASTEROS.distributed:
        # Embedded: this process is the worker (a memory:// broker reaches no other process).
        start_embedded_worker(concurrency=8)
    # Ctrl-C sets an event that races the stream, rather than cancelling this task: the stream
    # stops whatever it is awaiting, and no library's SIGINT handler or swallowed cancel is in the way.
    interrupted = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted.set)
    started = await start()
    if started is None:
        return WAITING
    run_id, last, under_way = started
    left_waiting = False
    inp = LineReader(stdin)
    children = ChildRuns(out)

    async def print_events() -> None:
        nonlocal last, left_waiting
        children.watch_from(under_way)
        async for seq, event in follow(run_id, after=last):
            last = seq
            render_event(event, out)
            await children.see(event)
            if _pause_status(event) == "pending" and not await ask_about_pause(run_id, event, inp, out):
                left_waiting = True
                return

    try:
        printed = await _unless_interrupted(print_events(), interrupted)
    finally:
        await children.close()  # a run left waiting or cancelled: its children's tails stop here
    if not printed:
        await db_call(run_services.request_cancel, run_id)
        out.write("\ncancelling...\n")
        out.flush()
        # In embedded mode this process is the worker: stay until the run has ended cancelled
        # (a second Ctrl-C stops waiting; the flagged run is then finished by the next reaper).
        interrupted.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                await _unless_interrupted(_print_rest(run_id, last, out), interrupted)
        return 130
    if left_waiting:
        await db_call(write_waiting, run_id, out)
        return WAITING
    status = await db_call(lambda: Run.objects.values_list("status", flat=True).get(id=run_id))
    return 0 if status == RunStatus.SUCCEEDED else 1


async def _unless_interrupted(work: Coroutine[Any, Any, None], interrupted: asyncio.Event) -> bool:
    """Run ``work`` until it ends (True; its exception is raised) or ``interrupted`` is set (False)."""
    working = asyncio.ensure_future(work)
    waiting = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait({working, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if working.done():
        working.result()
        return True
    working.cancel()
    return False


async def _print_rest(run_id: str, after: int, out: TextIO) -> None:
    async for _seq, event in follow(run_id, after=after):
        render_event(event, out)
