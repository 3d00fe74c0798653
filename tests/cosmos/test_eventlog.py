"""The end of a run's path: its events still waiting in the sink go with its final event.

The sink here is never started, so nothing reaches the database unless the run writes it itself.
"""

from __future__ import annotations

import asyncio

import pytest

from cosmos.eventlog import EventSink, LostOwnership, RunWriter
from cosmos.models import Run, RunEvent, RunStatus
from cosmos.runtime.events import EventType, make_event
from cosmos.services.runs import owner_finalizer
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
