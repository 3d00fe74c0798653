"""The run lifecycle's hard cases: session turns that hold no worker slot, the hand-off to a
session's next run by every path a run ends, logs left open by a lost attempt, ``updated_at``
on every status change, and a cancel that races the run's end.

Runs go through the real dispatch path and the test session's worker (embedded: the in-process
Celery worker; distributed: a ``celery worker`` process).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from cosmos.models import Run, RunEvent, RunStatus
from cosmos.runtime.events import closing_events
from cosmos.services import leases
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict
from tests.factories import add_event, make_agent
from tests.support.runs import assert_gapless, event_types, wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def _queued_head(agent, session: str) -> Run:
    """A session's first run, queued and never sent to the broker: it keeps the session busy."""
    return run_services.start_run("agent", agent.id, "first", session_id=session, dispatch=False)[0]


# --- sessions: a run waiting for its turn holds nothing


def test_a_run_waiting_for_its_session_turn_is_not_dispatched_and_holds_no_worker_slot():
    agent = make_agent(parameters={"ttft_ms": 1500})
    first, _ = run_services.start_run("agent", agent.id, "one", session_id="turns")
    second, _ = run_services.start_run("agent", agent.id, "two", session_id="turns")

    assert second.dispatched_at is None  # not sent to the broker while the first is active
    wait_for_run(first.id, statuses=(RunStatus.RUNNING,), timeout=10)
    time.sleep(0.5)
    second.refresh_from_db()
    # Not claimed by a worker that would hold its slot until the first run ends.
    assert (second.status, second.attempts, second.worker_id) == (RunStatus.QUEUED, 0, "")

    first, second = wait_for_run(first.id, timeout=20), wait_for_run(second.id, timeout=20)
    assert first.status == second.status == RunStatus.SUCCEEDED
    assert second.started_at >= first.finished_at


def test_a_worker_given_a_run_whose_turn_has_not_come_leaves_it_queued():
    agent = make_agent()
    _queued_head(agent, "early")
    second, _ = run_services.start_run("agent", agent.id, "second", session_id="early")

    assert leases.claim_run(str(second.id), "some-worker") is None

    second.refresh_from_db()
    assert (second.status, second.attempts, second.cancel_requested) == (RunStatus.QUEUED, 0, False)
    assert event_types(second.id) == []


def test_cancelling_the_queued_head_of_a_session_starts_the_next_run():
    agent = make_agent()
    head = _queued_head(agent, "cancel-head")
    second, _ = run_services.start_run("agent", agent.id, "second", session_id="cancel-head")

    run_services.cancel_run(head.id)

    assert wait_for_run(head.id).status == RunStatus.CANCELLED
    assert wait_for_run(second.id, timeout=20).status == RunStatus.SUCCEEDED


def test_a_session_run_failed_by_the_reaper_starts_the_next_run():
    agent = make_agent()
    head = _queued_head(agent, "reaped-head")
    second, _ = run_services.start_run("agent", agent.id, "second", session_id="reaped-head")
    Run.objects.filter(id=head.id).update(
        status=RunStatus.RUNNING,
        attempts=head.max_attempts,
        worker_id="lost-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    leases.reap_expired_runs()

    assert wait_for_run(head.id).error["code"] == "worker_lost"
    assert wait_for_run(second.id, timeout=20).status == RunStatus.SUCCEEDED


def test_the_reaper_dispatches_a_session_head_whose_hand_off_was_lost():
    agent = make_agent()
    head = _queued_head(agent, "lost-hand-off")
    second, _ = run_services.start_run("agent", agent.id, "second", session_id="lost-hand-off")
    # The head ended in a process that died before its hand-off: nothing dispatched the next run.
    Run.objects.filter(id=head.id).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())

    leases.reap_expired_runs()

    assert wait_for_run(second.id, timeout=20).status == RunStatus.SUCCEEDED


def test_the_reaper_does_not_send_a_session_run_whose_turn_has_not_come():
    agent = make_agent()
    head = _queued_head(make_agent(parameters={"ttft_ms": 5000}), "patient")
    second, _ = run_services.start_run("agent", agent.id, "second", session_id="patient")
    # Both old enough for the reaper's resend of a dispatch that never happened.
    Run.objects.filter(id=head.id).update(created_at=timezone.now() - timedelta(seconds=60))
    Run.objects.filter(id=second.id).update(created_at=timezone.now() - timedelta(seconds=30))

    leases.reap_expired_runs()

    second.refresh_from_db()
    assert (second.status, second.dispatched_at) == (RunStatus.QUEUED, None)
    run_services.cancel_run(head.id)


# --- a log left open by a lost attempt is closed before anything else is appended


LOST_ATTEMPT = [
    {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
    {"type": "STEP_STARTED", "stepName": "plan"},
    {"type": "TOOL_CALL_START", "toolCallId": "call-1", "toolCallName": "calculator"},
    {"type": "TOOL_CALL_ARGS", "toolCallId": "call-1", "delta": "{"},
    {"type": "TEXT_MESSAGE_START", "messageId": "m-1", "role": "assistant"},
    {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m-1", "delta": "Half a sen"},
]
CLOSERS = ["TEXT_MESSAGE_END", "TOOL_CALL_END", "STEP_FINISHED"]


def _lost_attempt(agent, *, attempts: int) -> Run:
    run, _ = run_services.start_run("agent", agent.id, "cut", dispatch=False)
    for event in LOST_ATTEMPT:
        add_event(run, event)
    Run.objects.filter(id=run.id).update(
        status=RunStatus.RUNNING,
        attempts=attempts,
        worker_id="lost-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    return run


def _assert_well_formed(run_id) -> None:
    assert_gapless(run_id)
    assert closing_events(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True)) == []


def test_the_reaper_closes_what_a_lost_attempt_left_open_before_failing_the_run():
    run = _lost_attempt(make_agent(), attempts=3)
    Run.objects.filter(id=run.id).update(max_attempts=3)

    leases.reap_expired_runs()

    assert wait_for_run(run.id).status == RunStatus.FAILED
    assert event_types(run.id)[len(LOST_ATTEMPT) :] == [*CLOSERS, "RUN_ERROR"]
    _assert_well_formed(run.id)


def test_a_retried_attempt_closes_what_the_lost_one_left_open_before_it_starts_again():
    run = _lost_attempt(make_agent(), attempts=1)

    leases.reap_expired_runs()

    assert wait_for_run(run.id, timeout=20).status == RunStatus.SUCCEEDED
    after = event_types(run.id)[len(LOST_ATTEMPT) :]
    assert after[:4] == [*CLOSERS, "CUSTOM"], after
    _assert_well_formed(run.id)


def test_cancelling_a_requeued_run_closes_what_its_lost_attempt_left_open():
    run = _lost_attempt(make_agent(), attempts=1)
    # Requeued by the reaper; cancelled before any worker takes it again.
    Run.objects.filter(id=run.id).update(status=RunStatus.QUEUED, worker_id="", lease_expires_at=None)

    run_services.cancel_run(run.id)

    assert wait_for_run(run.id).status == RunStatus.CANCELLED
    assert event_types(run.id)[len(LOST_ATTEMPT) :] == [*CLOSERS, "RUN_FINISHED"]
    _assert_well_formed(run.id)


def test_a_run_cancelled_while_its_worker_is_gone_ends_cancelled_with_its_children():
    parent = _lost_attempt(make_agent(), attempts=1)
    child, _ = run_services.start_run("agent", make_agent().id, "member", parent=parent, dispatch=False)
    add_event(parent, {"type": "SUBAGENT_STARTED", "runId": str(child.id)})
    Run.objects.filter(id=child.id).update(
        status=RunStatus.RUNNING,
        attempts=1,
        worker_id="lost-worker",
        lease_expires_at=timezone.now() + timedelta(hours=1),
    )

    run_services.cancel_run(parent.id)  # nobody executes them: both stay running, flagged
    Run.objects.filter(id=child.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    leases.reap_expired_runs()

    for run in (wait_for_run(parent.id), wait_for_run(child.id)):
        # The cancel is the cause: not failed for the lost worker, not started again first.
        assert (run.status, run.error, run.attempts) == (RunStatus.CANCELLED, None, 1)
        assert RunEvent.objects.filter(run_id=run.id).order_by("-seq").first().data["outcome"] == "cancelled"
        _assert_well_formed(run.id)
    assert "SUBAGENT_ERROR" in event_types(parent.id)  # the lost attempt's member is closed


def test_closing_events_pairs_by_id_and_closes_subagents():
    events = [
        {"type": "TEXT_MESSAGE_START", "messageId": "a"},
        {"type": "TEXT_MESSAGE_END", "messageId": "a"},
        {"type": "TEXT_MESSAGE_START", "messageId": "b"},
        {"type": "SUBAGENT_STARTED", "runId": "child"},
        {"type": "SUBAGENT_STARTED", "runId": "done"},
        {"type": "SUBAGENT_FINISHED", "runId": "done"},
    ]
    assert closing_events(events) == [
        {"type": "TEXT_MESSAGE_END", "messageId": "b"},
        {
            "type": "SUBAGENT_ERROR",
            "runId": "child",
            "message": "The run ended before this subagent finished.",
            "code": "abandoned",
        },
    ]


# --- updated_at moves with every status change


def test_updated_at_moves_when_a_run_finishes():
    run, _ = run_services.start_run("agent", make_agent().id, "hello")
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.updated_at >= run.finished_at


def test_updated_at_moves_when_a_queued_run_is_cancelled_and_when_the_reaper_requeues():
    agent = make_agent()
    queued, _ = run_services.start_run("agent", agent.id, "never", dispatch=False)
    run_services.cancel_run(queued.id)
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED and queued.updated_at >= queued.finished_at

    lost, _ = run_services.start_run("agent", agent.id, "lost", dispatch=False)
    before = timezone.now()
    Run.objects.filter(id=lost.id).update(
        status=RunStatus.RUNNING, attempts=1, worker_id="gone", lease_expires_at=before - timedelta(seconds=1)
    )
    leases.reap_expired_runs()
    lost = wait_for_run(lost.id, timeout=20)
    assert lost.updated_at >= lost.finished_at >= before


# --- a cancel that races the run's end


def test_a_cancel_that_reaches_the_database_after_the_run_ended_is_a_conflict():
    # The cancel reads the run while it is running; its worker's final write holds the row and
    # commits "succeeded" while the cancel waits for it. Only the cancel's own conditional
    # update can tell: nothing was flagged, so it is 409 not_cancelable, not 202 "succeeded".
    run, _ = run_services.start_run("agent", make_agent().id, "racing", dispatch=False)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, worker_id="w", attempts=1)
    locked, release = threading.Event(), threading.Event()

    def worker_finishing() -> None:
        try:
            with transaction.atomic():
                Run.objects.select_for_update().filter(id=run.id).update(status=RunStatus.RUNNING)
                locked.set()
                release.wait(10)
                time.sleep(0.5)  # the cancel is now waiting on the row
                Run.objects.filter(id=run.id).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
        finally:
            connection.close()

    outcome: list[object] = []

    def cancel() -> None:
        try:
            outcome.append(run_services.cancel_run(run.id))
        except Conflict as exc:
            outcome.append(exc)
        finally:
            connection.close()

    finisher = threading.Thread(target=worker_finishing)
    finisher.start()
    assert locked.wait(10)
    canceller = threading.Thread(target=cancel)
    canceller.start()
    release.set()
    finisher.join(15)
    canceller.join(15)

    assert len(outcome) == 1
    assert isinstance(outcome[0], Conflict), outcome[0]
    assert outcome[0].code == "not_cancelable"
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == (RunStatus.SUCCEEDED, False)


# --- a final write retried past its lease cannot finish the run's next attempt


def test_an_old_attempt_s_final_write_cannot_finish_the_attempt_that_replaced_it():
    # The engine's final write of attempt 1 is retried through a database outage longer than the
    # lease; the reaper re-queues the run and the same engine (same worker id) claims it again as
    # attempt 2. The old write must fail on the owner check, not end attempt 2's run.
    from cosmos.eventlog import LostOwnership

    run, _ = run_services.start_run("agent", make_agent().id, "twice claimed", dispatch=False)
    Run.objects.filter(id=run.id).update(status=RunStatus.RUNNING, worker_id="same-engine", attempts=2)

    with pytest.raises(LostOwnership):
        leases.owner_finalizer(str(run.id), "same-engine", RunStatus.SUCCEEDED, attempt=1)()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING

    leases.owner_finalizer(str(run.id), "same-engine", RunStatus.SUCCEEDED, attempt=2)()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
