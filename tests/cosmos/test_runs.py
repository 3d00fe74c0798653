"""The durable run pipeline in embedded mode: the Celery worker thread, leases, cancel,
idempotency, sessions, the reaper and the event log. Runs go through the real dispatch path
(on-commit Celery task on the memory:// broker, executed by the embedded worker)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from cosmos.dispatch import dispatch_run, local_executor
from cosmos.models import Run, RunEvent, RunStatus, Session, SessionPolicy
from cosmos.services import leases
from cosmos.services import runs as run_services
from cosmos.services.errors import Conflict, Invalid, NotFound
from tests.factories import make_agent
from tests.factories import make_run as make_run_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("embedded_worker")]


def wait_status(run_id, statuses=("succeeded", "failed", "cancelled"), timeout: float = 20) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(id=run_id)
        if run.status in statuses:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is still {Run.objects.get(id=run_id).status} after {timeout}s")


def event_types(run_id) -> list[str]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("type", flat=True))


def assert_contiguous(run_id) -> None:
    seqs = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def slow_agent(ms: int = 3000, **fields):
    return make_agent(parameters={"ttft_ms": ms}, **fields)


def test_agent_run_with_a_tool_succeeds_with_a_gapless_event_log():
    agent = make_agent(tools=["calculator"])
    run, created = run_services.start_run("agent", agent.id, "what is 6*7?")
    # Queued for a worker, or already claimed by this process's engine (tests/cosmos/test_fast_path.py).
    assert created and run.status == (RunStatus.RUNNING if local_executor() else RunStatus.QUEUED)

    run = wait_status(run.id)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "The result is 42."
    assert run.attempts == 1 and run.lease_expires_at is None
    types = event_types(run.id)
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    assert types.count("RUN_FINISHED") == 1 and "RUN_ERROR" not in types
    assert [t for t in types if t.startswith("TOOL_CALL")] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ]
    result = RunEvent.objects.get(run=run, type="TOOL_CALL_RESULT").data
    assert result["content"] == "42"
    assert_contiguous(run.id)
    assert run.output_tokens > 0 and run.input_tokens > 0


def test_unknown_target_and_bad_input_are_refused_before_anything_is_written():
    agent = make_agent()
    with pytest.raises(NotFound):
        run_services.start_run("agent", "no-such-agent", "hi")
    with pytest.raises(Invalid):
        run_services.start_run("agent", agent.id, {"neither": "message nor messages"})
    with pytest.raises(Invalid):
        run_services.start_run("agent", agent.id, "   ")
    with pytest.raises(Invalid):
        run_services.start_run("nebula", agent.id, "hi")
    assert Run.objects.count() == 0


def test_a_missing_api_key_fails_the_run_at_once(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    agent = make_agent(provider="anthropic", model="claude-sonnet-4-5")
    run, _ = run_services.start_run("agent", agent.id, "hello")

    run = wait_status(run.id, timeout=10)

    assert run.status == RunStatus.FAILED
    assert run.error["code"] == "model_auth"
    last = RunEvent.objects.filter(run=run).order_by("-seq").first().data
    assert last["type"] == "RUN_ERROR" and "ANTHROPIC_API_KEY" in last["message"]


def test_the_turn_limit_ends_the_run_with_a_clear_error():
    looping = {"rules": [{"when": ".", "call": "current_time", "arguments": {}, "after_tool": True}], "max_turns": 3}
    agent = make_agent(tools=["current_time"], parameters=looping)
    run, _ = run_services.start_run("agent", agent.id, "loop forever")

    run = wait_status(run.id)

    assert run.status == RunStatus.FAILED
    assert run.error["code"] == "max_turns_exceeded"
    assert "3" in run.error["message"]
    assert_contiguous(run.id)


def test_cancel_stops_a_running_run_and_ends_it_cancelled():
    agent = slow_agent(30_000)
    run, _ = run_services.start_run("agent", agent.id, "take your time")
    wait_status(run.id, statuses=("running",))
    started = time.monotonic()

    run_services.cancel_run(run.id)
    run = wait_status(run.id, timeout=10)

    assert run.status == RunStatus.CANCELLED
    # The cancel broadcast stops it, not the next lease renewal (which would see the flag too).
    renewal_tick = settings.ASTEROS.lease_seconds / 3
    assert time.monotonic() - started < min(2.0, renewal_tick / 2)
    last = RunEvent.objects.filter(run=run).order_by("-seq").first().data
    assert last == {**last, "type": "RUN_FINISHED", "outcome": "cancelled"}
    assert_contiguous(run.id)


def test_a_cancel_signal_that_reaches_the_worker_before_the_run_still_stops_it():
    # The race this covers: a cancel lands between the worker's claim and its registering the
    # run. Here the signal (with no database flag) is sent before the run is even dispatched.
    from cosmos.bus import CANCEL_CHANNEL, get_bus

    agent = slow_agent(30_000)
    run, _ = run_services.start_run("agent", agent.id, "take your time", dispatch=False)
    get_bus().publish_sync(CANCEL_CHANNEL, {"runs": [str(run.id)]})
    time.sleep(0.2)  # let the signal reach the worker first
    dispatch_run(run.id)

    run = wait_status(run.id, timeout=10)

    assert run.status == RunStatus.CANCELLED
    assert event_types(run.id)[-1] == "RUN_FINISHED"
    assert_contiguous(run.id)


def test_cancelling_a_finished_run_is_a_clear_conflict():
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "hi")
    wait_status(run.id)
    with pytest.raises(Conflict) as error:
        run_services.cancel_run(run.id)
    assert error.value.code == "not_cancelable"


def test_a_request_that_loses_the_idempotency_race_at_the_insert_gets_the_winner_s_run():
    # The winner's insert is held uncommitted until the loser has passed the read that would
    # have found it: the loser's own insert then clashes, and it must answer with the winner's run.
    agent = make_agent()
    inserted, release = threading.Event(), threading.Event()

    def winner() -> tuple[Run, bool]:
        with transaction.atomic():
            won = run_services.start_run("agent", agent.id, "race", caller="key:r", idempotency_key="k-race")
            inserted.set()
            release.wait(10)
        return won

    def loser() -> tuple[Run, bool]:
        inserted.wait(10)
        threading.Timer(0.5, release.set).start()  # once the loser waits on the winner's insert
        return run_services.start_run("agent", agent.id, "race", caller="key:r", idempotency_key="k-race")

    (won, won_created), (lost, lost_created) = in_threads(winner, loser)

    assert (won_created, lost_created) == (True, False)
    assert lost.id == won.id and Run.objects.filter(idempotency_key="k-race").count() == 1


def test_cancel_cascades_to_child_runs():
    agent = slow_agent(30_000)
    parent, _ = run_services.start_run("agent", agent.id, "parent")
    child, _ = run_services.start_run("agent", agent.id, "child", parent=parent, dispatch=False)

    run_services.cancel_run(parent.id)

    assert wait_status(child.id, timeout=10).status == RunStatus.CANCELLED
    assert wait_status(parent.id, timeout=10).status == RunStatus.CANCELLED


def in_threads(*targets) -> list:
    """Run each callable in its own thread, together; their results in order. An exception in a
    thread fails the test (a thread's exception is otherwise only a warning)."""
    results: list = [None] * len(targets)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def call(index: int, target) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert all(not thread.is_alive() for thread in threads), "a thread did not finish"
    return results


def test_the_same_idempotency_key_from_the_same_caller_returns_the_same_run():
    agent = make_agent()

    def submit() -> tuple[Run, bool]:
        return run_services.start_run("agent", agent.id, "once", caller="key:a", idempotency_key="k-1")

    results = in_threads(*[submit] * 4)

    assert len({run.id for run, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    other, created = run_services.start_run("agent", agent.id, "once", caller="key:b", idempotency_key="k-1")
    assert created and other.id != results[0][0].id
    assert Run.objects.filter(idempotency_key="k-1").count() == 2


def test_a_session_carries_the_conversation_across_runs():
    agent = make_agent()
    first, _ = run_services.start_run("agent", agent.id, "my name is Ada", session_id="thread-1")
    wait_status(first.id)
    second, _ = run_services.start_run("agent", agent.id, "what is my name?", session_id="thread-1")
    wait_status(second.id)

    messages = Session.objects.get(id="thread-1").messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "my name is Ada" and messages[2]["content"] == "what is my name?"


def test_session_policy_enqueue_runs_one_after_the_other():
    agent = slow_agent(400)
    first, _ = run_services.start_run("agent", agent.id, "one", session_id="queue")
    second, _ = run_services.start_run("agent", agent.id, "two", session_id="queue")

    first, second = wait_status(first.id), wait_status(second.id)

    assert first.status == second.status == RunStatus.SUCCEEDED
    # The second model call starts only after the first run finished.
    second_text = RunEvent.objects.filter(run=second, type="TEXT_MESSAGE_START").get()
    assert second_text.created_at >= first.finished_at


def test_session_policy_reject_refuses_while_a_run_is_active():
    agent = slow_agent(30_000)
    Session.objects.create(id="strict", policy=SessionPolicy.REJECT)
    first, _ = run_services.start_run("agent", agent.id, "one", session_id="strict")

    with pytest.raises(Conflict) as error:
        run_services.start_run("agent", agent.id, "two", session_id="strict")

    assert error.value.code == "session_busy"
    assert Run.objects.filter(session_id="strict").count() == 1
    run_services.cancel_run(first.id)


def test_session_policy_interrupt_cancels_the_active_run_then_starts():
    slow = slow_agent(30_000)
    Session.objects.create(id="eager", policy=SessionPolicy.INTERRUPT)
    first, _ = run_services.start_run("agent", slow.id, "one", session_id="eager")
    wait_status(first.id, statuses=("running",))

    second, _ = run_services.start_run("agent", make_agent().id, "two", session_id="eager")

    assert wait_status(first.id, timeout=10).status == RunStatus.CANCELLED
    assert wait_status(second.id, timeout=10).status == RunStatus.SUCCEEDED


def _expired(run: Run, attempts: int) -> None:
    Run.objects.filter(id=run.id).update(
        status=RunStatus.RUNNING,
        attempts=attempts,
        worker_id="lost-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


def test_the_reaper_requeues_an_expired_lease_and_the_run_completes():
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "survive", dispatch=False)
    _expired(run, attempts=1)

    assert leases.reap_expired_runs()["requeued"] == 1
    run = wait_status(run.id)

    assert run.status == RunStatus.SUCCEEDED and run.attempts == 2


def test_the_reaper_fails_a_run_that_used_all_its_attempts_with_the_reason():
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "doomed", dispatch=False)
    _expired(run, attempts=run.max_attempts)

    assert leases.reap_expired_runs()["failed"] == 1

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error["code"] == "worker_lost"
    assert event_types(run.id) == ["RUN_STARTED", "RUN_ERROR"]
    assert_contiguous(run.id)


def test_a_queued_run_that_never_reached_the_broker_is_resent_by_the_reaper():
    agent = make_agent()
    run, _ = run_services.start_run("agent", agent.id, "lost message", dispatch=False)
    Run.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(seconds=30))

    assert leases.reap_expired_runs()["resent"] >= 1
    assert wait_status(run.id).status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("finishing", [False, True])
def test_a_lease_renewal_that_races_a_run_s_final_write_does_not_stop_it(finishing):
    # The renewal's snapshot of local runs is taken before a run's final write commits, and its
    # answer arrives after: the run is no longer "running", yet it was not lost. Stopping it then
    # would cancel the task that is writing its end (an error in the worker for a run that
    # succeeded). A run that is not finishing and not ours any more is stopped, as before.
    import asyncio

    from cosmos.engine import LocalRun, RunEngine

    run = make_run_row(status=RunStatus.SUCCEEDED)

    async def renew_while_finishing() -> bool:
        engine = RunEngine(worker_id="w-test")
        engine.loop = asyncio.get_running_loop()
        task = asyncio.create_task(asyncio.sleep(30))
        engine.local[str(run.id)] = LocalRun(str(run.id), task=task, finishing=finishing)
        await engine._renew()
        await asyncio.sleep(0)
        cancelled = task.cancelled()
        task.cancel()
        return cancelled

    assert asyncio.run(renew_while_finishing()) is (not finishing)
