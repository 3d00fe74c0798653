"""The log tail (``cosmos.logtail``): events another process wrote reach this process's bus,
once, with a lifecycle message when their run's status changed; what this process published
itself, or is executing, is left alone; an idle tick is one query."""

from __future__ import annotations

from typing import Any

import pytest

from cosmos.bus import LIFECYCLE_CHANNEL, LocalBus, run_channel
from cosmos.logtail import LogTail
from cosmos.models import RunStatus
from tests.factories import add_event, make_run

pytestmark = pytest.mark.django_db


def tail_and_messages(local_runs: Any = None) -> tuple[LogTail, list[tuple[str, Any]]]:
    bus = LocalBus()
    messages: list[tuple[str, Any]] = []
    tail = LogTail(bus, local_runs)
    bus.add_tap(lambda channel, message: messages.append((channel, message)))
    tail.tick()  # the first tick starts from the end of the log
    return tail, messages


def test_what_was_written_before_the_tail_started_is_left_to_the_database():
    run = make_run(events=["RUN_STARTED", "TEXT_MESSAGE_START"])
    tail, messages = tail_and_messages()

    assert tail.tick() == 0 and messages == []
    add_event(run, "TEXT_MESSAGE_END")
    assert tail.tick() == 1
    assert messages == [(run_channel(str(run.id)), {"events": [[3, {"type": "TEXT_MESSAGE_END"}]]})]


def test_events_of_another_process_are_published_once_with_the_status_change():
    tail, messages = tail_and_messages()
    run = make_run(status=RunStatus.RUNNING, events=["RUN_STARTED", {"type": "TEXT_MESSAGE_CONTENT", "delta": "hi"}])
    quiet = make_run(status=RunStatus.RUNNING)
    add_event(quiet, {"type": "TEXT_MESSAGE_CONTENT", "delta": "no status change"})

    assert tail.tick() == 3
    assert tail.tick() == 0  # nothing twice

    by_channel = dict(messages[:2])
    assert by_channel[run_channel(str(run.id))] == {
        "events": [[1, {"type": "RUN_STARTED"}], [2, {"type": "TEXT_MESSAGE_CONTENT", "delta": "hi"}]]
    }
    assert by_channel[run_channel(str(quiet.id))]["events"][0][0] == 1
    # Only the run whose status changed gets a lifecycle message (the dashboard's row).
    assert messages[2:] == [(LIFECYCLE_CHANNEL, {**messages[2][1], "id": str(run.id), "status": "running"})]
    assert len(messages) == 3


def test_seqs_this_process_published_are_not_published_again():
    tail, messages = tail_and_messages()
    run = make_run(status=RunStatus.RUNNING)
    for event in ("RUN_STARTED", "STEP_STARTED"):
        add_event(run, event)
    tail.bus.publish_sync(run_channel(str(run.id)), {"events": [[1, {"type": "RUN_STARTED"}], [2, {"type": "X"}]]})
    add_event(run, "STEP_FINISHED")
    messages.clear()

    assert tail.tick() == 1
    assert messages == [(run_channel(str(run.id)), {"events": [[3, {"type": "STEP_FINISHED"}]]})]


def test_runs_this_process_executes_are_left_to_its_own_sink():
    executing: list[str] = []
    tail, messages = tail_and_messages(lambda: executing)
    run = make_run(status=RunStatus.RUNNING)
    executing.append(str(run.id))
    add_event(run, "RUN_STARTED")

    assert tail.tick() == 0 and messages == []


def test_an_idle_tick_is_one_query(django_assert_num_queries):
    make_run(events=["RUN_STARTED"])
    tail, _ = tail_and_messages()

    with django_assert_num_queries(1):
        assert tail.tick() == 0
