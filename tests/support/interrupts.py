"""Agents that stop for a person, and reading what their runs asked (any door's tests)."""

from __future__ import annotations

from typing import Any

from cosmos.models import Agent, Interrupt, RunEvent
from tests.factories import make_agent


def approval_agent(rule: str = "always", **fields: Any) -> Agent:
    """An agent whose calculator calls wait for approval under ``rule`` ("what is 6*7?")."""
    return make_agent(tools=["calculator"], approvals={"calculator": rule}, **fields)


def question_agent(question: str = "Which city?", schema: dict | None = None, **fields: Any) -> Agent:
    """An agent that asks a person ``question`` first, then answers with what it was told."""
    arguments: dict[str, Any] = {"question": question}
    if schema is not None:
        arguments["schema"] = schema
    rules = [{"when": ".", "call": "ask_human", "arguments": arguments}]
    return make_agent(tools=["ask_human"], parameters={"rules": rules}, **fields)


def the_interrupt(run_id: Any) -> Interrupt:
    """The run's one pending interrupt."""
    (interrupt,) = Interrupt.objects.filter(run_id=run_id, status="pending")
    return interrupt


def stored_events(run_id: Any) -> list[dict]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True))


def assert_gapless_log(run_id: Any) -> list[dict]:
    seqs = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    return stored_events(run_id)


def interrupt_events(run_id: Any) -> list[dict]:
    return [e["value"] for e in stored_events(run_id) if e.get("name") == "asteros.interrupt"]
