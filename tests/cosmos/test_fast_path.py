"""The fast path (``cosmos.dispatch``): a process that executes runs takes the runs it accepts
with no broker hop, inserted already claimed by its engine, with their lease.

Embedded mode: the server's engine is the pytest process's (the ``embedded_worker`` fixture).
Broker messages are counted with Celery's own ``before_task_publish`` signal. What happens when
the process dies with such a run is ``tests/reliability/test_embedded_restart.py``'s case: the
run is claimed on the fast path there too, and the next process's reaper runs it again.
"""

from __future__ import annotations

import time

import pytest
from celery.signals import before_task_publish
from django.db import transaction
from django.utils import timezone

from cosmos.dispatch import EXECUTE_RUN, local_executor
from cosmos.engine import running_engine
from cosmos.models import Run, RunEvent, RunStatus, Session, SessionPolicy
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict
from tests.factories import make_agent
from tests.support.runs import wait_for_runs

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.embedded_only,
]


@pytest.fixture
def broker_messages():
    """The run ids sent to the broker while the test runs."""
    sent: list[str] = []

    def count(sender=None, body=None, **_kwargs) -> None:
        if sender == EXECUTE_RUN:
            sent.append(body[0][0] if isinstance(body, tuple) else str(body))

    before_task_publish.connect(count, weak=False)
    yield sent
    before_task_publish.disconnect(count)


@pytest.fixture
def engine():
    engine = running_engine()
    assert engine is not None and local_executor() is engine, "the embedded worker takes the fast path"
    return engine


def wait_status(run_id, statuses=("succeeded", "failed", "cancelled"), timeout: float = 20) -> Run:
    return wait_for_runs([run_id], timeout=timeout, statuses=statuses, poll=0.02)[0]


def wait_for_free_slots(engine) -> None:
    deadline = time.monotonic() + 10
    while engine.reserved_slots and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.reserved_slots == 0


def test_a_run_is_inserted_claimed_by_the_engine_and_sent_to_no_broker(engine, broker_messages):
    agent = make_agent(tools=["calculator"])
    before = timezone.now()

    run, created = run_services.start_run("agent", agent.id, "what is 6*7?")

    assert created and run.status == RunStatus.RUNNING and run.attempts == 1
    assert run.worker_id == engine.worker_id
    assert run.lease_expires_at > before and run.started_at >= before
    run = wait_status(run.id)
    assert run.status == RunStatus.SUCCEEDED and run.output == "The result is 42."
    assert run.attempts == 1 and run.lease_expires_at is None
    seqs_and_types = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type"))
    assert [seq for seq, _ in seqs_and_types] == list(range(1, len(seqs_and_types) + 1))
    assert seqs_and_types[0][1] == "RUN_STARTED" and seqs_and_types[-1][1] == "RUN_FINISHED"
    assert broker_messages == []
    wait_for_free_slots(engine)


def test_a_full_engine_sends_new_runs_to_the_broker(engine, broker_messages, monkeypatch):
    monkeypatch.setattr(engine, "concurrency", 0)
    agent = make_agent()

    run, _ = run_services.start_run("agent", agent.id, "hello")

    assert run.status == RunStatus.QUEUED and run.worker_id == ""
    assert wait_status(run.id).status == RunStatus.SUCCEEDED
    assert broker_messages == [str(run.id)]


def test_a_run_started_in_a_callers_transaction_is_handed_over_when_it_commits(engine, broker_messages):
    agent = make_agent()

    with transaction.atomic():
        run, _ = run_services.start_run("agent", agent.id, "hello")
        assert run.status == RunStatus.QUEUED
        assert engine.reserved_slots == 0  # no slot is held for a commit that may never come

    run = wait_status(run.id)
    assert run.status == RunStatus.SUCCEEDED and run.worker_id == engine.worker_id
    assert broker_messages == []  # queued, then claimed by this engine: still no broker hop


def test_a_refused_insert_gives_its_slot_back(engine):
    agent = make_agent()
    first, _ = run_services.start_run("agent", agent.id, "hello")
    wait_status(first.id)

    with pytest.raises(Conflict):
        run_services.start_run("agent", agent.id, "again", run_id=str(first.id))

    wait_for_free_slots(engine)


def test_a_cancel_just_after_the_run_was_accepted_ends_it_cancelled(engine):
    agent = make_agent(parameters={"ttft_ms": 30_000})

    run, _ = run_services.start_run("agent", agent.id, "take your time")
    run_services.cancel_run(run.id)  # before or after the engine registered it: both are covered

    run = wait_status(run.id, timeout=10)
    assert run.status == RunStatus.CANCELLED
    assert RunEvent.objects.filter(run=run).order_by("-seq").first().data["outcome"] == "cancelled"


def test_a_sessions_next_run_waits_for_its_turn_then_runs_here(engine, broker_messages):
    agent = make_agent(parameters={"ttft_ms": 300})
    Session.objects.create(id="fast-s", kind="agent", target=agent.id, policy=SessionPolicy.ENQUEUE)

    first, _ = run_services.start_run("agent", agent.id, "one", session_id="fast-s")
    second, _ = run_services.start_run("agent", agent.id, "two", session_id="fast-s")

    assert first.status == RunStatus.RUNNING and second.status == RunStatus.QUEUED
    first, second = wait_status(first.id), wait_status(second.id)
    assert first.status == second.status == RunStatus.SUCCEEDED
    assert second.started_at >= first.finished_at
    assert second.worker_id == engine.worker_id
    assert broker_messages == []  # the turn was handed to this engine too
    wait_for_free_slots(engine)


def test_a_run_the_engine_cannot_take_goes_to_the_broker(engine, broker_messages):
    """An engine whose loop is gone (a process exiting) refuses the hand-over: the run is sent
    to the broker instead, and the slot taken for it is given back."""
    from cosmos.dispatch import dispatch_run, set_local_executor
    from cosmos.engine import RunEngine

    stopped = RunEngine()  # never started: it has no loop
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "hello", dispatch=False)
    set_local_executor(stopped)
    try:
        dispatch_run(run.id)
    finally:
        set_local_executor(engine)

    assert broker_messages == [str(run.id)] and stopped.reserved_slots == 0
    assert wait_status(run.id).status == RunStatus.SUCCEEDED
