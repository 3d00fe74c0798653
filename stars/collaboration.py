"""One star run in progress: members' work as child runs, their events and their messages.

``StarRun.run_member`` is the one way a member works: it creates the member's child run
(parent = the star run), announces it with ``SUBAGENT_STARTED``, executes it in this engine with
the member timeout, then reports ``SUBAGENT_FINISHED`` or ``SUBAGENT_ERROR`` and records the
messages. A member that fails never raises: the caller gets a ``MemberResult`` with the error.
The modes (``stars.modes``) decide who works on what.

A member whose run pauses for a person pauses the star run too (``RunInterrupted``). When the
star run resumes, its mode runs again from the start as a replay (``Replay``): each member call
finds the child run it made the first time (by member and input) and, instead of starting a new
one, takes that run's answer or lets it go on from its own pause; messages already recorded are
not recorded twice. Only the runs that paused do any work again.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cosmos.db import db_call
from cosmos.models import AGENT_KIND, TERMINAL_STATUSES, Run, RunStatus
from cosmos.runtime.events import EventType, make_event
from cosmos.runtime.interrupts import RunInterrupted
from cosmos.services import runs as run_services
from cosmos.services.checkpoints import EarlierChildren, call_key
from cosmos.services.errors import ServiceError

from . import services
from .limits import Limits
from .models import STAR_KIND, StarMessage
from .team import Member, Team

if TYPE_CHECKING:
    from cosmos.engine import RunContext

STAR_EVENT = "star"  # CUSTOM event names are "star.<what>"
INSTRUCTION_PREVIEW = 2000  # characters of an instruction shown in SUBAGENT_STARTED
STAR_CALL = "star_call"  # the child run's metadata key for its call (cosmos.services.checkpoints)


@dataclass(slots=True)
class MemberResult:
    member: Member
    ok: bool
    output: str = ""
    error: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def error_text(self) -> str:
        code = self.error.get("code", "failed")
        return f"Member {self.member.name!r} failed ({code}): {self.error.get('message', 'no reason given')}"


def clip(text: str, limit: int = INSTRUCTION_PREVIEW) -> str:
    """A preview for events; the whole text is the child run's input."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class Replay:
    """What an earlier pass of this star run already did: its child runs by call, its recorded
    messages. After a pause every child is found again (a paused one goes on); on a retry after
    the worker was lost (``retry``), only the children that succeeded are."""

    children: EarlierChildren = field(default_factory=EarlierChildren)
    messages: Counter = field(default_factory=Counter)
    retry: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, run_id: str, *, retry: bool = False, own: str | None = None) -> Replay:
        """What run ``run_id`` did: this run (a pause, a retry), or on a retry the run of a lost
        attempt this one replaces (``own`` is this run: only its own messages are not stored twice)."""
        replay = cls(children=EarlierChildren.load(run_id, STAR_CALL, succeeded_only=retry), retry=retry)
        if own is None or own == run_id:
            for message in StarMessage.objects.filter(run_id=run_id).values_list("sender", "recipient", "content"):
                replay.messages[message] += 1
        return replay

    def child(self, key: str) -> str | None:
        return self.children.take(key)

    def recorded(self, sender: str, recipient: str, content: str) -> bool:
        """True (once per stored copy) when this message was recorded before the pause."""
        with self._lock:
            key = (sender, recipient, content)
            if self.messages[key] > 0:
                self.messages[key] -= 1
                return True
            return False


class StarRun:
    """The state of one star run: its context, team, limits, depth and counters."""

    def __init__(self, context: RunContext, team: Team, limits: Limits, depth: int, path: tuple[str, ...]) -> None:
        self.context = context
        self.team = team
        self.limits = limits
        self.depth = depth
        self.path = path  # the star ids from the outermost star run down to this one
        self.delegations = 0
        self.replay: Replay | None = None  # set when the run resumes after a pause

    @property
    def run(self) -> Run:
        return self.context.run

    @property
    def star_id(self) -> str:
        return self.team.star_id

    # --- events and messages

    async def custom(self, name: str, value: dict[str, Any]) -> None:
        await self.context.emit(make_event(EventType.CUSTOM, name=f"{STAR_EVENT}.{name}", value=value))

    async def say(self, sender: str, recipient: str, content: str) -> None:
        """Store a message of this run and show it on the star run's stream."""
        message = await db_call(self.record, sender, recipient, content)
        await self.show(message)

    def record(self, sender: str, recipient: str, content: str) -> StarMessage | None:
        """Store a message of this run (None: a replay found it already stored)."""
        if self.replay is not None and self.replay.recorded(sender, recipient, content):
            return None
        return services.record_message(self.star_id, sender, recipient, content, self.context.run_id)

    async def show(self, message: StarMessage | None) -> None:
        if message is not None:
            value = {"id": message.id, "from": message.sender, "to": message.recipient, "content": message.content}
            await self.custom("message", value | {"runId": self.context.run_id})

    async def emit_answer(self, text: str) -> None:
        """The final answer as one AG-UI text message, so clients of the star see text."""
        if not text:
            return
        message_id = str(uuid.uuid4())
        await self.context.emit(make_event(EventType.TEXT_MESSAGE_START, messageId=message_id, role="assistant"))
        await self.context.emit(make_event(EventType.TEXT_MESSAGE_CONTENT, messageId=message_id, delta=text))
        await self.context.emit(make_event(EventType.TEXT_MESSAGE_END, messageId=message_id))

    def _subagent(self, type_: EventType, member: Member, run_id: str | None, **fields: Any) -> dict:
        return make_event(
            type_,
            runId=run_id,
            parentRunId=self.context.run_id,
            member=member.name,
            agentId=member.agent_id,
            role=member.role,
            starId=self.star_id,
            **fields,
        )

    # --- members at work

    def route(self, member: Member) -> tuple[str, str, dict[str, Any]]:
        """(kind, target, metadata) of a member's child run; a worker that leads a star runs that star.

        Raises ``MemberRefused`` past ``max_depth``.
        """
        metadata: dict[str, Any] = {"star_id": self.star_id, "star_member": member.name, "star_role": member.role}
        if member.is_leader or member.leads_star is None:
            return AGENT_KIND, member.agent_id, metadata
        depth = self.depth + 1
        if depth > self.limits.max_depth:
            raise MemberRefused(
                "max_depth",
                f"Member {member.name!r} leads star {member.leads_star!r}; running it would nest stars {depth} deep, "
                f"past the limit of {self.limits.max_depth} (max_depth of star {self.star_id!r}).",
            )
        metadata |= {"star_depth": depth, "star_path": [*self.path, member.leads_star]}
        return STAR_KIND, member.leads_star, metadata

    async def run_member(
        self,
        member: Member,
        raw_input: Any,
        *,
        instruction: str,
        sender: str | None = None,
        reply_to: str | None = None,
        timeout: float | bool | None = True,
        state: dict[str, Any] | None = None,
    ) -> MemberResult:
        """Run one member's share as a child run and wait for it.

        ``sender``: record ``instruction`` as a message from sender to the member first.
        ``reply_to``: record the member's answer as a message to them after.
        ``timeout``: True for the star's member_timeout, None for none, or seconds.
        """
        if timeout is True:
            timeout = self.limits.member_timeout
        elif timeout is False:
            timeout = None
        try:
            kind, target, metadata = self.route(member)
        except MemberRefused as refused:
            return await self._refused(member, refused.code, refused.message)
        metadata[STAR_CALL] = key = call_key(member.name, raw_input)  # the member, what it was given
        replayed = self.replay.child(key) if self.replay is not None else None
        if replayed is not None:
            if sender is not None:
                await db_call(self.record, sender, member.name, instruction)  # already stored: skipped
            if self.replay.retry:
                # Succeeded before the worker was lost: its answer is reused, it does not run again.
                await self.context.emit(
                    self._subagent(
                        EventType.SUBAGENT_STARTED,
                        member,
                        replayed,
                        kind=kind,
                        target=target,
                        instruction=clip(instruction),
                        reused=True,
                    )
                )
                return await self._result(member, replayed, reply_to, timeout, reused=True)
            # The same call before the pause: its run's answer, or its run going on from its pause.
            status = await db_call(Run.objects.filter(id=replayed).values_list("status", flat=True).first)
            if status in TERMINAL_STATUSES:
                return await self._result(member, replayed, None, timeout, announce=False)
            return await self._result(member, replayed, reply_to, timeout, state=state)
        if self.replay is not None and self.replay.retry:
            metadata |= self.replay.children.replaced(key)
        # One database round trip: the instruction as a message, and the member's child run.
        message, child, refused = await db_call(
            self._open_child, member, instruction if sender else None, sender, kind, target, raw_input, metadata
        )
        await self.show(message)
        if refused is not None:  # e.g. the agent was disabled, or the nested star cannot run
            return await self._refused(member, refused.code, refused.message)
        child_id = str(child.id)
        await self.context.emit(
            self._subagent(
                EventType.SUBAGENT_STARTED, member, child_id, kind=kind, target=target, instruction=clip(instruction)
            )
        )
        return await self._result(member, child_id, reply_to, timeout, state=state)

    async def _result(
        self,
        member: Member,
        child_id: str,
        reply_to: str | None,
        timeout: float | None,
        *,
        state: dict[str, Any] | None = None,
        announce: bool = True,
        reused: bool = False,
    ) -> MemberResult:
        """Execute the member's child run here (a no-op if it has ended) and report how it went;
        ``announce=False`` for a replayed run whose end the stream has already shown;
        ``reused`` marks the end of a run a retry took from the lost attempt."""
        task = asyncio.create_task(
            self.context.engine.execute(child_id, timeout=timeout, parent_id=self.context.run_id, state=state)
        )
        try:
            # Shielded: if we are cancelled (the star, or the leader whose tool call this is), the
            # child is stopped through the run services below, so it always ends "cancelled".
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.shield(stop_child(child_id, task))
            raise
        child, reply = await db_call(self._close_child, child_id, member.name, reply_to)
        if child.status == RunStatus.INTERRUPTED:
            raise RunInterrupted([], {}, children=[child_id])  # the member waits for a person: so does the star
        if child.status == RunStatus.SUCCEEDED:
            output = as_text(child.output)
            if announce:
                marks = {"reused": True} if reused else {}
                await self.context.emit(
                    self._subagent(EventType.SUBAGENT_FINISHED, member, child_id, output=output, **marks)
                )
                await self.show(reply)
            return MemberResult(member, True, output=output, run_id=child_id)
        error = dict(child.error or {})
        if child.status == RunStatus.CANCELLED:
            error = {"code": "cancelled", "message": "The member's run was cancelled."}
        elif error.get("code") == "timeout" and timeout:
            error["message"] = f"No answer within {timeout:g}s (member_timeout)."
        error.setdefault("code", "failed")
        error.setdefault("message", f"The member's run ended {child.status}.")
        if announce:
            await self.context.emit(
                self._subagent(
                    EventType.SUBAGENT_ERROR,
                    member,
                    child_id,
                    status=child.status,
                    error=error,
                    message=error["message"],
                )
            )
        return MemberResult(member, False, error=error, run_id=child_id)

    def _open_child(
        self,
        member: Member,
        instruction: str | None,
        sender: str | None,
        kind: str,
        target: str,
        raw_input: Any,
        metadata: dict[str, Any],
    ) -> tuple[StarMessage | None, Run | None, ServiceError | None]:
        message = None
        if sender is not None and instruction is not None:
            message = self.record(sender, member.name, instruction)
        try:
            child, _ = run_services.start_run(
                kind,
                target,
                raw_input,
                parent=self.run,
                origin=STAR_KIND,
                caller=self.run.caller,
                metadata=metadata,
                dispatch=False,
            )
        except ServiceError as exc:
            return message, None, exc
        return message, child, None

    def _close_child(self, child_id: str, member_name: str, reply_to: str | None) -> tuple[Run, StarMessage | None]:
        child = Run.objects.get(id=child_id)
        reply = None
        if child.status == RunStatus.SUCCEEDED and reply_to is not None:
            reply = self.record(member_name, reply_to, as_text(child.output))
        return child, reply

    async def _refused(self, member: Member, code: str, message: str) -> MemberResult:
        error = {"code": code, "message": message}
        await self.context.emit(
            self._subagent(EventType.SUBAGENT_ERROR, member, None, status="refused", error=error, message=message)
        )
        return MemberResult(member, False, error=error)


class MemberRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def stop_child(child_id: str, task: asyncio.Task, grace: float = 10.0) -> None:
    """Cancel a member's run (and its own children) and wait briefly for it to end."""
    await db_call(run_services.request_cancel, child_id)
    await asyncio.wait({task}, timeout=grace)


def descendant_usage(run_id: str) -> dict[str, int]:
    """Tokens and runs of every run below this one (members, and members of nested stars)."""
    totals = {"runs": 0, "inputTokens": 0, "outputTokens": 0}
    frontier = [run_id]
    while frontier:
        rows = list(Run.objects.filter(parent_id__in=frontier).values_list("id", "input_tokens", "output_tokens"))
        for _, input_tokens, output_tokens in rows:
            totals["runs"] += 1
            totals["inputTokens"] += input_tokens
            totals["outputTokens"] += output_tokens
        frontier = [str(row[0]) for row in rows]
    return totals
