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

from cosmos.models import RunEvent, RunStatus
from cosmos.runtime.events import closing_events
from cosmos.runtime.loop import StoredToolResults
from cosmos.runtime.tools import tool, tool_registry
from cosmos.services import leases
from cosmos.services import runs as run_services
from tests.factories import make_agent
from tests.support.runs import assert_gapless, events, lose_the_worker, wait_for_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.skipif(
        settings.ASTEROS.distributed, reason="the worker's loss is made in this process's engine (embedded)"
    ),
]

RAN: Counter = Counter()


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

    yield
    tool_registry.unregister("tests_quick_charge")
    tool_registry.unregister("tests_slow_report")


def agent():
    rules = [
        {"when": ".", "call": "tests_quick_charge", "arguments": {"amount": 42}},
        {"when": ".", "call": "tests_slow_report", "arguments": {"topic": "$match"}},
    ]
    return make_agent(tools=["tests_quick_charge", "tests_slow_report"], parameters={"rules": rules})


def stored_results(run_id) -> list[dict]:
    return list(RunEvent.objects.filter(run_id=run_id, type="TOOL_CALL_RESULT").values_list("data", flat=True))


def test_a_retried_agent_run_reuses_the_tool_results_it_stored_and_runs_the_rest_again():
    worker_agent = agent()
    uninterrupted = wait_for_run(run_services.start_run("agent", worker_agent.id, "go")[0].id, timeout=20)
    assert uninterrupted.status == RunStatus.SUCCEEDED, uninterrupted.error
    RAN.clear()

    run, _ = run_services.start_run("agent", worker_agent.id, "go")
    deadline = time.monotonic() + 20
    while not stored_results(run.id):  # the quick tool answered; the slow one still runs
        assert time.monotonic() < deadline, "no tool result was stored"
        time.sleep(0.02)
    assert RAN == {"quick": 1, "slow": 1}
    lose_the_worker(run.id)
    leases.reap_expired_runs()
    run = wait_for_run(run.id, timeout=30)

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    assert run.output == uninterrupted.output
    # The charge is not made twice; the report, cut off by the loss, was written again.
    assert RAN == {"quick": 1, "slow": 2}
    assert [e["content"] for e in stored_results(run.id)].count("charged 42") == 2  # once per attempt
    assert closing_events(events(run.id)) == []
    assert_gapless(run.id)


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
    stored = StoredToolResults.from_events(log)
    assert len(stored) == 2

    assert stored.take("pay", {"amount": 1}) == ("second", True)
    assert stored.take("pay", {"amount": 1}) == ("first", False)
    assert stored.take("pay", {"amount": 1}) is None  # each stored result is taken once
    assert stored.take("pay", {"amount": 2}) is None  # it never answered
    assert stored.take("refund", {"amount": 1}) is None
