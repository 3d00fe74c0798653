"""The event log of runs: an append-only, gapless sequence per run, persisted and published.

Writers (the run engine) assign ``seq`` and hand events to ``EventSink``, which writes every
run's pending events in one transaction and then publishes them on the bus. Readers call
``follow(run_id, after=N)``: it subscribes first, replays from the database, then follows the
live tail, re-reading the database whenever a ``seq`` is missing, so a reader never loses or
repeats an event whichever process it runs in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from . import metrics
from .bus import get_bus, run_channel
from .db import db_call
from .models import TERMINAL_STATUSES, Run, RunEvent
from .retry import db_call_retrying
from .runtime.events import TERMINAL_EVENT_TYPES, EventType

logger = logging.getLogger(__name__)

# Deltas of the same message arriving within one write cycle are merged before they get a seq.
COALESCED_TYPES = frozenset({EventType.TEXT_MESSAGE_CONTENT, EventType.TOOL_CALL_ARGS})
REPLAY_PAGE = 500
# A reader that sees seq N+1 before N waits this long, polling, for N's write to commit (a
# write retried through a database blip can commit seconds late); a seq missing for longer
# is not coming.
GAP_PATIENCE_SECONDS = 30.0
GAP_POLL_SECONDS = 0.05


class LostOwnership(Exception):
    """The run is no longer ours (its lease expired and another worker took it)."""


@dataclass(slots=True)
class PendingEvent:
    run_id: str
    seq: int
    event: dict
    taken: bool = False
    batch: int = 0  # the sink's write cycle that carries it
    writer: RunWriter | None = None


# How long one run's event stream may hold the engine's loop before it lets others run.
LOOP_TURN_SECONDS = 0.002
# How long the first delta of a message (or of a tool call's arguments) may wait behind the
# parsing of the rest before the run pauses until that delta is published.
FIRST_DELTA_SECONDS = 0.002


@dataclass
class RunWriter:
    """Assigns seqs for one run and queues its events on the process's sink."""

    run_id: str
    sink: EventSink
    last_seq: int = 0
    _last_pending: PendingEvent | None = None
    lost: bool = False
    # This run's events that the sink may not have taken yet (taken ones are dropped as new
    # ones come), and the latest sink cycle that carries one of its taken events.
    _queued: deque[PendingEvent] = field(default_factory=deque)
    _taken_batch: int = 0
    _last_turn: float = field(default_factory=time.monotonic)
    # The first delta of the message being streamed, until it is published, and when it came.
    _first_delta: PendingEvent | None = None
    _first_delta_at: float = 0.0

    def emit_nowait(self, event: dict) -> None:
        previous = self._last_pending
        kind = event["type"]
        continues = (
            kind in COALESCED_TYPES
            and previous is not None
            and previous.event["type"] == kind
            and _stream_id(previous.event) == _stream_id(event)
        )
        if continues and not previous.taken:
            previous.event = {**previous.event, "delta": previous.event["delta"] + event["delta"]}
            return
        if self.lost:
            return  # another attempt owns the log now: nothing more of ours goes in it
        self.last_seq += 1
        pending = PendingEvent(self.run_id, self.last_seq, event, writer=self)
        self._last_pending = pending
        self.sink.enqueue(pending)
        self._forget_taken()
        self._queued.append(pending)
        if kind in COALESCED_TYPES and not continues:
            self._first_delta, self._first_delta_at = pending, time.monotonic()

    async def emit(self, event: dict) -> None:
        self.emit_nowait(event)
        # A model's answer can arrive as one burst that the SDK parses without one await that
        # suspends: the sink would neither write nor publish anything until the burst ends, and
        # the first token would reach the client with the last. Give the loop a turn every few
        # ms, so that events are stored and published while the rest are being parsed.
        # A turn alone does not free the process: the parser keeps the GIL, and the sink's
        # database thread and the server's loop wait for it at every step. So once the first
        # delta of a message has waited FIRST_DELTA_SECONDS, the run pauses until it is
        # published. Short answers are parsed before that and never pause.
        now = time.monotonic()
        first = self._first_delta
        if first is not None and not self.lost and now - self._first_delta_at >= FIRST_DELTA_SECONDS:
            self._first_delta = None
            self._last_turn = now
            await self.sink.published(first.batch)
        elif now - self._last_turn >= LOOP_TURN_SECONDS:
            self._last_turn = now
            await asyncio.sleep(0)

    async def stored(self) -> None:
        """Return once every event emitted so far is in the database (raises ``LostOwnership``
        if another attempt owns the log now)."""
        if self._last_pending is not None:
            await self.sink.written(self._last_pending.batch)
        if self.lost:
            raise LostOwnership(self.run_id)

    def _forget_taken(self) -> None:
        while self._queued and self._queued[0].taken:
            self._taken_batch = max(self._taken_batch, self._queued.popleft().batch)

    async def finish(self, event: dict, finalize: Callable[[], None], *, retry_for: float = 0.0) -> int:
        """Write the terminal event and run ``finalize`` (the status update) in one transaction.

        The run's events still waiting in the sink go into that same transaction instead of the
        sink's next cycle: one database round trip and one publish fewer at the end of every run.
        The events the sink has already taken are written first (a reader of the database must
        never see the final event before an earlier one).

        A transient database error is retried for ``retry_for`` seconds; a try that committed
        but lost its answer is recognised by its final event, already stored.
        """
        self._forget_taken()
        untaken = self.sink.withdraw(self.run_id)
        await self.sink.written(self._taken_batch)
        if self.lost:
            raise LostOwnership(self.run_id)
        self.last_seq += 1
        seq = self.last_seq
        events = [(item.seq, item.event) for item in untaken] + [(seq, event)]
        retried = False

        def note_retry() -> None:
            nonlocal retried
            retried = True

        try:
            await db_call_retrying(_write_final, self.run_id, events, finalize, within=retry_for, on_retry=note_retry)
        except LostOwnership:
            if not (retried and await db_call(_final_event_stored, self.run_id, seq, event["type"])):
                raise
        metrics.events_written(len(events))
        await get_bus().publish(run_channel(self.run_id), {"events": [list(pair) for pair in events]})
        return seq


def _stream_id(event: dict) -> str | None:
    return event.get("messageId") or event.get("toolCallId")


def _final_event_stored(run_id: str, seq: int, event_type: str) -> bool:
    return RunEvent.objects.filter(run_id=run_id, seq=seq, type=event_type).exists()


def _write_final(run_id: str, events: list[tuple[int, dict]], finalize: Callable[[], None]) -> None:
    rows = [RunEvent(run_id=run_id, seq=seq, type=event["type"], data=event) for seq, event in events]
    try:
        with transaction.atomic():
            RunEvent.objects.bulk_create(rows)
            finalize()
    except IntegrityError as exc:
        raise LostOwnership(run_id) from exc


@dataclass
class EventSink:
    """Writes queued events of every run in few transactions, then publishes them.

    Events queued while a write is under way go into the next cycle (``batch``), so under load
    each cycle carries many runs' events in one ``bulk_create``.
    """

    pending: list[PendingEvent] = field(default_factory=list)
    on_lost: Callable[[str], None] | None = None
    _next_batch: int = 1
    _written_batch: int = 0
    _published_batch: int = 0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _written_waiters: list[tuple[int, asyncio.Future]] = field(default_factory=list)
    _published_waiters: list[tuple[int, asyncio.Future]] = field(default_factory=list)
    _task: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run(), name="asteros-event-sink")

    def enqueue(self, pending: PendingEvent) -> None:
        pending.batch = self._next_batch
        self.pending.append(pending)
        self._wakeup.set()

    def withdraw(self, run_id: str) -> list[PendingEvent]:
        """Take back the run's events not yet taken by a write cycle, for the run to write itself."""
        mine = [item for item in self.pending if item.run_id == run_id]
        if mine:
            self.pending = [item for item in self.pending if item.run_id != run_id]
            for item in mine:
                item.taken = True  # nothing may coalesce into them any more
        return mine

    @property
    def published_batch(self) -> int:
        """The latest write cycle that is on the bus (every earlier one is too)."""
        return self._published_batch

    async def written(self, batch: int) -> None:
        """Return once the write cycle ``batch`` (and every earlier one) is in the database."""
        if batch > self._written_batch:
            await _wait_for(self._written_waiters, batch)

    async def published(self, batch: int) -> None:
        """Return once the write cycle ``batch`` (and every earlier one) is on the bus."""
        if batch > self._published_batch:
            await _wait_for(self._published_waiters, batch)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self.pending = self.pending, []
            number = self._next_batch
            self._next_batch += 1
            for item in batch:
                item.taken = True
            lost = await self._store(batch) if batch else set()
            if lost:
                self._drop_lost_writers(batch, lost)
            # Waiters need the cycle in the database, not on the bus: a run's final write goes
            # ahead while this cycle is published (a follower that hears the two out of order
            # re-reads the database).
            self._written_batch = number
            _release(self._written_waiters, number)
            if batch:
                await self._publish(batch, lost)
            self._published_batch = number
            _release(self._published_waiters, number)

    def _drop_lost_writers(self, batch: list[PendingEvent], lost: set[str]) -> None:
        """An event that clashed means another attempt writes this run's log: its writer's later
        events must not follow (they would land after the other attempt's, or leave a gap)."""
        for item in batch:
            if item.run_id in lost and item.writer is not None:
                item.writer.lost = True
        self.pending = [item for item in self.pending if item.writer is None or not item.writer.lost]

    async def _store(self, batch: list[PendingEvent]) -> set[str]:
        delay = 0.1
        while True:
            try:
                lost = await db_call(_write_batch, batch)
                break
            except Exception as exc:  # database down: keep the events and try again
                logger.warning("event write failed (%s); retrying", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        metrics.events_written(len(batch))
        return lost

    async def _publish(self, batch: list[PendingEvent], lost: set[str]) -> None:
        by_run: dict[str, list[list[Any]]] = {}
        for item in batch:
            if item.run_id in lost:
                continue
            by_run.setdefault(item.run_id, []).append([item.seq, item.event])
        if by_run:
            items = [(run_channel(run_id), {"events": events}) for run_id, events in by_run.items()]
            bus = get_bus()
            if bus.in_process:
                bus.publish_many(items)  # a hand-off per subscriber: no thread hop for it
            else:
                await asyncio.to_thread(bus.publish_many, items)
        for run_id in lost:
            if self.on_lost:
                self.on_lost(run_id)


async def _wait_for(waiters: list[tuple[int, asyncio.Future]], batch: int) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.append((batch, future))
    await future


def _release(waiters: list[tuple[int, asyncio.Future]], done: int) -> None:
    """Wake the waiters of every cycle up to ``done``, in place (the list is the sink's own)."""
    ready = [future for batch, future in waiters if batch <= done]
    waiters[:] = [(batch, future) for batch, future in waiters if batch > done]
    for future in ready:
        if not future.done():
            future.set_result(None)


def _write_batch(batch: list[PendingEvent]) -> set[str]:
    rows = [RunEvent(run_id=i.run_id, seq=i.seq, type=i.event["type"], data=i.event) for i in batch]
    try:
        with transaction.atomic():
            RunEvent.objects.bulk_create(rows)
        return set()
    except IntegrityError:
        pass
    # A seq clash means a run was taken over by another worker: write run by run to find it.
    lost: set[str] = set()
    by_run: dict[str, list[RunEvent]] = {}
    for row in rows:
        by_run.setdefault(str(row.run_id), []).append(row)
    for run_id, run_rows in by_run.items():
        try:
            with transaction.atomic():
                RunEvent.objects.bulk_create(run_rows)
        except IntegrityError:
            lost.add(run_id)
    return lost


# --- reading


def read_events(run_id: str, after: int, limit: int = REPLAY_PAGE) -> list[tuple[int, dict]]:
    rows = RunEvent.objects.filter(run_id=run_id, seq__gt=after).order_by("seq").values_list("seq", "data")[:limit]
    return list(rows)


def _run_status(run_id: str) -> str | None:
    return Run.objects.filter(id=run_id).values_list("status", flat=True).first()


async def _wait_for_database(fn: Callable[..., Any], *args: Any) -> Any:
    """A follower's read that waits out a database that is briefly unreachable (a restart, a
    network cut): the client's stream stays open, with its heartbeats, and goes on from the
    same seq once the database answers, instead of ending with an error."""
    delay = 0.5
    while True:
        try:
            return await db_call(fn, *args)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("follower waiting for the database: %s", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def wait_until_over(run_id: str, timeout: float, *, poll_seconds: float = 2.0) -> bool:
    """Wait until the run has ended; True if it did within ``timeout``.

    For a waiter that needs only the end (``?wait``), not the events: it is woken by the
    run's terminal event on the bus (published once its final transaction committed), with
    one read of the status before and one after each quiet ``poll_seconds`` (a message the bus
    dropped). No replay of the log, and no thread held while it waits."""
    subscription = await get_bus().subscribe(run_channel(run_id))
    try:
        async with asyncio.timeout(timeout):
            while True:
                if await _wait_for_database(_run_status, run_id) in (*TERMINAL_STATUSES, None):
                    return True
                try:
                    while True:
                        message = await subscription.get(timeout=poll_seconds)
                        if any(event.get("type") in TERMINAL_EVENT_TYPES for _, event in message.get("events", ())):
                            return True
                except TimeoutError:
                    continue  # quiet for a while: read the status again
    except TimeoutError:
        return False
    finally:
        await subscription.close()


async def follow(
    run_id: str, after: int = 0, *, follow: bool = True, poll_seconds: float = 2.0
) -> AsyncIterator[tuple[int, dict]]:
    """Yield ``(seq, event)`` for every event after ``after``, then the live tail until the end.

    The subscription is opened before the replay, so nothing published in between is missed;
    anything the bus drops is found again in the database by its seq.
    """
    subscription = await get_bus().subscribe(run_channel(run_id)) if follow else None
    last = after
    stalled = False  # the tail's last wait ended without a message
    closing = False  # the run ended without a terminal event: one last read, then stop
    try:
        while True:
            # The one drain loop: the database, page by page, from the last seq yielded (the
            # replay, then after every timeout or gap of the live tail).
            drained = False
            gap_since: float | None = None
            while True:
                rows = await _wait_for_database(read_events, run_id, last)
                in_order = _following_on(rows, last)
                held_back = len(in_order) < len(rows)
                if held_back:
                    # A later seq is visible before an earlier one: the write that holds the
                    # earlier one is still committing. Wait for it rather than skip it; only a
                    # seq missing for longer than any write can take is given up on.
                    now = time.monotonic()
                    if in_order or gap_since is None:
                        gap_since = now
                    if now - gap_since < GAP_PATIENCE_SECONDS:
                        rows = in_order
                    else:
                        logger.error("run %s: seq %s is missing from its log; going on", run_id, last + 1)
                        held_back = False
                for seq, event in rows:
                    yield seq, event
                    last = seq
                    drained = True
                    if event.get("type") in TERMINAL_EVENT_TYPES:
                        return
                if held_back:
                    await asyncio.sleep(GAP_POLL_SECONDS)
                    continue
                gap_since = None
                if len(rows) < REPLAY_PAGE:
                    break
            if subscription is None or closing:
                return
            if stalled and not drained and await _wait_for_database(_run_status, run_id) in (*TERMINAL_STATUSES, None):
                # Terminal without a terminal event cannot happen through the services; stop anyway.
                closing = True
                continue
            # The live tail: bus messages while they follow on from ``last``; back to the
            # database on a timeout or a gap (it has everything that was published).
            stalled = False
            while True:
                try:
                    message = await subscription.get(timeout=poll_seconds)
                except TimeoutError:
                    stalled = True
                    break
                fresh = _fresh(message, last)
                if not fresh:
                    continue  # only events we have already yielded
                if not all(seq == last + 1 + i for i, (seq, _) in enumerate(fresh)):
                    break
                for seq, event in fresh:
                    yield seq, event
                    last = seq
                    if event.get("type") in TERMINAL_EVENT_TYPES:
                        return
    finally:
        if subscription is not None:
            await subscription.close()


def _following_on(rows: list[tuple[int, dict]], last: int) -> list[tuple[int, dict]]:
    """The leading rows whose seqs follow on from ``last`` with no gap."""
    for index, (seq, _) in enumerate(rows):
        if seq != last + 1 + index:
            return rows[:index]
    return rows


def _fresh(message: dict, last: int) -> list[tuple[int, dict]]:
    return [(seq, event) for seq, event in message.get("events", ()) if seq > last]
