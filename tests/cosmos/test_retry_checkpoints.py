"""An agent run retried after its worker was lost does not run again a tool whose result it stored.

The worker's loss is made in this process (``lose_the_worker``), with tools registered here, so
these run in embedded mode.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from django.conf import settings

from cosmos.models import Run, RunEvent, RunStatus
from cosmos.runtime.events import closing_events
from cosmos.runtime.loop import CUT_OFF, ToolJournal
from cosmos.runtime.tools import ToolContext, tool, tool_registry
from cosmos.services import leases
from cosmos.services import runs as run_services
from tests.factories import make_agent, make_workflow
from tests.support.runs import assert_gapless, events, lose_the_worker, wait_for_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.skipif(
        settings.ASTEROS.distributed, reason="the worker's loss is made in this process's engine (embedded)"
    ),
]

RAN: Counter = Counter()
ON_RECORD: list[bool] = []


@pytest.fixture(scope="module", autouse=True)
def tools():
    @tool(name="tests_quick_charge")
    async def quick_charge(amount: int) -> str:
        """Charge a card (quick).

        Args:
            amount: How much.
        """
        RAN["quick"] += 1
        return f"charged {amount}"

    @tool(name="tests_slow_report")
    async def slow_report(topic: str) -> str:
        """Write a report (slow).

        Args:
            topic: On what.
        """
        RAN["slow"] += 1
        await asyncio.sleep(1.5)
        return f"report on {topic}"

    @tool(name="tests_slow_transfer", once=True)
    async def slow_transfer(topic: str) -> str:
        """Transfer money (slow, and not idempotent: it runs at most once).

        Args:
            topic: What for.
        """
        RAN["slow"] += 1
        await asyncio.sleep(1.5)
        return f"transferred for {topic}"

    @tool(name="tests_checked_transfer", once=True)
    def checked_transfer(amount: int, context: ToolContext) -> str:
        """Transfer money, noting whether the call's start was on record before it acted.

        Args:
            amount: How much.
        """
        started = RunEvent.objects.filter(run_id=context.run_id, type="TOOL_CALL_START")
        ON_RECORD.append(any(e["toolCallId"] == context.tool_call_id for e in started.values_list("data", flat=True)))
        return f"transferred {amount}"

    yield
    for name in ("tests_quick_charge", "tests_slow_report", "tests_slow_transfer", "tests_checked_transfer"):
        tool_registry.unregister(name)


def agent(slow_tool: str = "tests_slow_report"):
    rules = [
        {"when": ".", "call": "tests_quick_charge", "arguments": {"amount": 42}},
        {"when": ".", "call": slow_tool, "arguments": {"topic": "$match"}},
    ]
    return make_agent(tools=["tests_quick_charge", slow_tool], parameters={"rules": rules})


def stored_results(run_id) -> list[dict]:
    return list(RunEvent.objects.filter(run_id=run_id, type="TOOL_CALL_RESULT").values_list("data", flat=True))


def run_lost_mid_tool(worker_agent):
    """A run of ``worker_agent`` whose worker is lost once the quick tool answered, while the
    slow one runs; returned once its retry has ended."""
    run, _ = run_services.start_run("agent", worker_agent.id, "go")
    deadline = time.monotonic() + 20
    while not stored_results(run.id):
        assert time.monotonic() < deadline, "no tool result was stored"
        time.sleep(0.02)
    assert RAN == {"quick": 1, "slow": 1}
    lose_the_worker(run.id)
    leases.reap_expired_runs()
    return wait_for_run(run.id, timeout=30)


def test_a_retried_agent_run_reuses_the_tool_results_it_stored_and_runs_the_rest_again():
    worker_agent = agent()
    uninterrupted = wait_for_run(run_services.start_run("agent", worker_agent.id, "go")[0].id, timeout=20)
    assert uninterrupted.status == RunStatus.SUCCEEDED, uninterrupted.error
    RAN.clear()

    run = run_lost_mid_tool(worker_agent)

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    assert run.output == uninterrupted.output
    # The charge is not made twice; the report, cut off by the loss, was written again.
    assert RAN == {"quick": 1, "slow": 2}
    assert [e["content"] for e in stored_results(run.id)].count("charged 42") == 2  # once per attempt
    assert closing_events(events(run.id)) == []
    assert_gapless(run.id)


def test_a_tool_that_runs_once_is_not_run_again_after_the_loss_cut_it_off():
    RAN.clear()

    run = run_lost_mid_tool(agent("tests_slow_transfer"))

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    assert RAN == {"quick": 1, "slow": 1}  # cut off mid-transfer: not transferred a second time
    cut_off = CUT_OFF.format(name="tests_slow_transfer")
    retried = [e for e in stored_results(run.id) if e["content"] == cut_off]
    assert [e.get("isError") for e in retried] == [True]  # the model is told, as an error result
    assert cut_off in run.output
    assert closing_events(events(run.id)) == []
    assert_gapless(run.id)


def test_a_workflow_step_run_again_reuses_the_tool_results_of_the_run_it_replaces():
    workflow = make_workflow(definition={"steps": [{"name": "work", "type": "agent", "agent": agent().id}]})
    RAN.clear()

    run = run_lost_mid_tool_of_child(run_services.start_run("workflow", workflow.id, "go")[0])

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    lost, again = Run.objects.filter(parent_id=run.id).order_by("created_at")
    assert again.metadata["supersedes"] == str(lost.id) and again.status == RunStatus.SUCCEEDED
    assert RAN == {"quick": 1, "slow": 2}  # the step's charge was not made twice


def test_a_run_naming_a_run_it_does_not_replace_reuses_nothing():
    worker_agent = agent()
    other = wait_for_run(run_services.start_run("agent", worker_agent.id, "go")[0].id, timeout=20)
    RAN.clear()

    run, _ = run_services.start_run("agent", worker_agent.id, "go", metadata={"supersedes": str(other.id)})

    assert wait_for_run(run.id, timeout=20).status == RunStatus.SUCCEEDED
    assert RAN == {"quick": 1, "slow": 1}  # another run's stored results are never this one's


def run_lost_mid_tool_of_child(parent):
    """Like ``run_lost_mid_tool``, for a parent whose one child run calls the tools."""
    deadline = time.monotonic() + 20
    while not (kids := list(Run.objects.filter(parent_id=parent.id))) or not stored_results(kids[0].id):
        assert time.monotonic() < deadline, "no tool result was stored"
        time.sleep(0.02)
    lose_the_worker(parent.id)
    leases.reap_expired_runs()
    return wait_for_run(parent.id, timeout=30)


def test_a_tool_that_runs_once_acts_only_after_its_call_is_on_record():
    rules = [{"when": ".", "call": "tests_checked_transfer", "arguments": {"amount": 7}}]
    worker_agent = make_agent(tools=["tests_checked_transfer"], parameters={"rules": rules})
    ON_RECORD.clear()

    run = wait_for_run(run_services.start_run("agent", worker_agent.id, "go")[0].id, timeout=20)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert ON_RECORD == [True]  # a retry after a loss here would know it may have run


def test_stored_results_pair_each_call_with_its_result_and_are_taken_once_in_order():
    log = [
        {"type": "TOOL_CALL_START", "toolCallId": "a", "toolCallName": "pay"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "a", "delta": '{"amount":'},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "a", "delta": " 1}"},
        {"type": "TOOL_CALL_START", "toolCallId": "b", "toolCallName": "pay"},
        {"type": "TOOL_CALL_ARGS", "toolCallId": "b", "delta": '{"amount": 1}'},
        {"type": "TOOL_CALL_START", "toolCallId": "c", "toolCallName": "pay"},  # cut off: no result
        {"type": "TOOL_CALL_ARGS", "toolCallId": "c", "delta": '{"amount": 2}'},
        {"type": "TOOL_CALL_RESULT", "toolCallId": "b", "content": "second", "isError": True},
        {"type": "TOOL_CALL_RESULT", "toolCallId": "a", "content": "first"},
    ]
    stored = ToolJournal.from_events(log)
    assert len(stored) == 2
    assert stored.take_cut_off("pay", {"amount": 2}) and not stored.take_cut_off("pay", {"amount": 2})
    assert not stored.take_cut_off("pay", {"amount": 1})

    assert stored.take("pay", {"amount": 1}) == ("first", False)  # in the order the calls were made
    assert stored.take("pay", {"amount": 1}) == ("second", True)
    assert stored.take("pay", {"amount": 1}) is None  # each stored result is taken once
    assert stored.take("pay", {"amount": 2}) is None  # it never answered: cut off
    assert stored.take("refund", {"amount": 1}) is None
