"""A run's events on their way out: the end of its path, and its first token.

In the first two tests the sink is never started, so nothing reaches the database unless the run
writes it itself.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cosmos.eventlog import FIRST_DELTA_SECONDS, EventSink, LostOwnership, RunWriter, wait_until_over
from cosmos.models import Run, RunEvent, RunStatus
from cosmos.runtime.events import EventType, make_event
from cosmos.services.leases import owner_finalizer
from tests.factories import make_run

pytestmark = pytest.mark.django_db(transaction=True)


def stored(run_id) -> list[tuple[int, str]]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "type"))


def emit_a_reply(writer: RunWriter) -> None:
    writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_START, messageId="m1", role="assistant"))
    writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_CONTENT, messageId="m1", delta="Hel"))
    writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_CONTENT, messageId="m1", delta="lo"))
    writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_END, messageId="m1"))


def test_the_final_write_carries_the_events_the_sink_has_not_taken():
    run = make_run(status=RunStatus.RUNNING, worker_id="w1", events=["RUN_STARTED"])
    finished = make_event(EventType.RUN_FINISHED, runId=str(run.id), threadId=str(run.id))

    async def scenario() -> tuple[int, EventSink]:
        sink = EventSink()
        writer = RunWriter(str(run.id), sink, last_seq=1)
        emit_a_reply(writer)
        seq = await writer.finish(finished, owner_finalizer(str(run.id), "w1", RunStatus.SUCCEEDED))
        return seq, sink

    seq, sink = asyncio.run(scenario())

    assert seq == 5 and sink.pending == []
    assert stored(run.id) == [
        (1, "RUN_STARTED"),
        (2, "TEXT_MESSAGE_START"),
        (3, "TEXT_MESSAGE_CONTENT"),
        (4, "TEXT_MESSAGE_END"),
        (5, "RUN_FINISHED"),
    ]
    assert RunEvent.objects.get(run=run, seq=3).data["delta"] == "Hello"
    assert Run.objects.get(id=run.id).status == RunStatus.SUCCEEDED


def test_a_run_that_lost_its_lease_writes_neither_its_last_events_nor_a_final_one():
    run = make_run(status=RunStatus.RUNNING, worker_id="another-worker", events=["RUN_STARTED"])
    finished = make_event(EventType.RUN_FINISHED, runId=str(run.id), threadId=str(run.id))

    async def scenario() -> None:
        writer = RunWriter(str(run.id), EventSink(), last_seq=1)
        emit_a_reply(writer)
        await writer.finish(finished, owner_finalizer(str(run.id), "w1", RunStatus.SUCCEEDED))

    with pytest.raises(LostOwnership):
        asyncio.run(scenario())

    assert stored(run.id) == [(1, "RUN_STARTED")]
    assert Run.objects.get(id=run.id).status == RunStatus.RUNNING


def test_a_burst_pauses_once_its_first_delta_has_waited_until_that_delta_is_published():
    """A 1,000-token answer can arrive at once and be parsed without one await that suspends.

    The run must not hold its first token back until the whole burst is parsed: once the first
    delta has waited FIRST_DELTA_SECONDS, the next emit returns only when it is on the bus.
    Before that, the burst does not pause at all (a short answer pays nothing).
    """
    run = make_run(status=RunStatus.RUNNING, worker_id="w1", events=["RUN_STARTED"])
    finished = make_event(EventType.RUN_FINISHED, runId=str(run.id), threadId=str(run.id))
    deltas = [f"token{i} " for i in range(40)]

    async def scenario() -> list[tuple[float, int]]:
        sink = EventSink()
        sink.start(asyncio.get_running_loop())
        writer = RunWriter(str(run.id), sink, last_seq=1)
        await writer.emit(make_event(EventType.TEXT_MESSAGE_START, messageId="m1", role="assistant"))
        first_at = time.monotonic()
        seen = []  # (how old the first delta was when an emit began, the cycle on the bus after it)
        for delta in deltas:
            began = time.monotonic() - first_at
            await writer.emit(make_event(EventType.TEXT_MESSAGE_CONTENT, messageId="m1", delta=delta))
            seen.append((began, sink.published_batch))
            spin_until = time.monotonic() + 0.0003  # parsing the next token, without awaiting
            while time.monotonic() < spin_until:
                pass
        await writer.emit(make_event(EventType.TEXT_MESSAGE_END, messageId="m1"))
        await writer.finish(finished, owner_finalizer(str(run.id), "w1", RunStatus.SUCCEEDED))
        return seen

    seen = asyncio.run(scenario())

    # `began` is measured from just before the first delta, so it is never less than the age the
    # writer sees: a pause at an emit means that emit began FIRST_DELTA_SECONDS after the delta.
    paused = next((i for i, (_, published) in enumerate(seen) if published >= 1), None)
    assert paused is not None, "the first delta must be on the bus before the burst ends"
    assert seen[paused][0] >= FIRST_DELTA_SECONDS, "a burst must not pause before FIRST_DELTA_SECONDS"
    due = next(i for i, (began, _) in enumerate(seen) if began >= FIRST_DELTA_SECONDS + 0.0005)
    assert paused <= due, "the first delta's cycle must be on the bus when the pausing emit returns"
    assert paused < len(deltas) - 1, "the burst must go on after the pause"
    texts = list(
        RunEvent.objects.filter(run=run, type="TEXT_MESSAGE_CONTENT").order_by("seq").values_list("data", flat=True)
    )
    assert len(texts) >= 2 and texts[0]["delta"].startswith("token0 ")
    assert "".join(text["delta"] for text in texts) == "".join(deltas)
    seqs = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def _event_at(run: Run, seq: int, event_type: str) -> None:
    RunEvent.objects.create(run=run, seq=seq, type=event_type, data={"type": event_type})


async def _followed(run_id: str) -> list[int]:
    from cosmos.eventlog import follow

    return [seq async for seq, _ in follow(run_id, poll_seconds=0.2)]


def test_a_follower_waits_for_a_seq_committed_after_a_later_one():
    """Two writes of one run in flight at once can commit out of order (a final write and the
    sink's last cycle through a database blip): a reader that saw seq 4 before seq 3 must wait
    for 3, not skip it."""
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED", "TEXT_MESSAGE_START"])
    _event_at(run, 4, "TEXT_MESSAGE_END")
    _event_at(run, 5, "RUN_FINISHED")

    async def scenario() -> list[int]:
        follower = asyncio.ensure_future(_followed(str(run.id)))
        await asyncio.sleep(0.5)
        assert not follower.done()  # held at the gap, not past it
        await asyncio.to_thread(_event_at, run, 3, "TEXT_MESSAGE_CONTENT")
        return await asyncio.wait_for(follower, 10)

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]


def test_a_follower_gives_up_on_a_seq_missing_for_longer_than_any_write_takes(monkeypatch):
    monkeypatch.setattr("cosmos.eventlog.GAP_PATIENCE_SECONDS", 0.3)
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])
    _event_at(run, 3, "RUN_FINISHED")

    assert asyncio.run(asyncio.wait_for(_followed(str(run.id)), 10)) == [1, 3]


def test_a_writer_whose_event_clashed_writes_nothing_more():
    """Another attempt wrote seq 2 first: this attempt's seq 2 clashes, and its seq 3, queued
    while that write was under way, must not land after the other attempt's events."""
    run = make_run(status=RunStatus.RUNNING, worker_id="w1", events=["RUN_STARTED", "STEP_STARTED"])

    bystander = make_run(status=RunStatus.RUNNING, worker_id="w1")

    async def scenario() -> RunWriter:
        sink = EventSink()
        sink.start(asyncio.get_running_loop())
        writer = RunWriter(str(run.id), sink, last_seq=1)
        writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_START, messageId="m1", role="assistant"))
        clashing_cycle = writer._queued[0].batch
        await asyncio.sleep(0)  # the sink takes seq 2 and starts writing it
        writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_END, messageId="m1"))
        await sink.written(clashing_cycle)
        # Another run's event, in the cycle seq 3 was queued for or a later one: once it is
        # written, seq 3 would be too.
        other = RunWriter(str(bystander.id), sink)
        other.emit_nowait(make_event(EventType.RUN_STARTED))
        await sink.written(other._queued[-1].batch)
        writer.emit_nowait(make_event(EventType.TEXT_MESSAGE_START, messageId="m2", role="assistant"))
        return writer

    writer = asyncio.run(scenario())

    assert writer.lost and writer.sink.pending == []
    assert stored(run.id) == [(1, "RUN_STARTED"), (2, "STEP_STARTED")]
    assert stored(bystander.id) == [(1, "RUN_STARTED")]


def test_a_waiter_for_the_end_is_woken_by_the_terminal_event_on_the_bus():
    """``wait_until_over`` (``?wait``): woken by the run's terminal event as it is published,
    not by its next read of the status (a quiet minute here)."""
    from cosmos.bus import get_bus, run_channel

    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])

    async def scenario() -> tuple[bool, float]:
        waiter = asyncio.ensure_future(wait_until_over(str(run.id), 30, poll_seconds=60))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        started = time.monotonic()
        finished = make_event(EventType.RUN_FINISHED, threadId=str(run.id), runId=str(run.id))
        await get_bus().publish(run_channel(str(run.id)), {"events": [[2, finished]]})
        return await asyncio.wait_for(waiter, 10), time.monotonic() - started

    over, after = asyncio.run(scenario())
    assert over is True and after < 5


def test_a_waiter_for_the_end_reads_the_status_again_when_the_bus_is_quiet():
    """A terminal event the bus dropped: the next read of the status ends the wait."""
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])

    async def scenario() -> bool:
        waiter = asyncio.ensure_future(wait_until_over(str(run.id), 30, poll_seconds=0.2))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await asyncio.to_thread(Run.objects.filter(id=run.id).update, status=RunStatus.SUCCEEDED)
        return await asyncio.wait_for(waiter, 10)

    assert asyncio.run(scenario()) is True


def test_a_waiter_for_the_end_gives_up_at_its_timeout_and_answers_at_once_for_an_ended_run():
    running = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED"])
    ended = make_run(status=RunStatus.SUCCEEDED, events=["RUN_STARTED", "RUN_FINISHED"])

    assert asyncio.run(wait_until_over(str(running.id), 0.3, poll_seconds=0.1)) is False
    assert asyncio.run(wait_until_over(str(ended.id), 0.3)) is True
