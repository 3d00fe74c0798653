"""Human in the loop, the runtime's half: which tool calls wait for a person, and the pause.

A tool call waits for a person when its tool is ``ask_human`` (a question) or when its approval
rule says so (an approval). A rule is ``"never"`` (the default), ``"always"``, or an expression
of ``cosmos.runtime.expressions`` over the call's arguments (``amount > 100``). The agent's own
rule for a tool wins over the tool's ``@tool(requires_approval=...)``.

The loop runs the turn's other calls, then raises ``RunInterrupted`` with one request per waiting
call and a checkpoint of the conversation. The engine stores both and releases the run; once
every request is resolved the run is queued again and the loop resumes from the checkpoint with
the decisions (``Resume``): approve runs the call as asked, edit runs it with new arguments,
reject gives the model a refusal it can read, answer gives it the answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .expressions import ExpressionError, compile_expression

APPROVAL = "approval"
QUESTION = "question"
NEVER = "never"
ALWAYS = "always"
ASK_HUMAN = "ask_human"

APPROVE = "approve"
REJECT = "reject"
EDIT = "edit"
ANSWER = "answer"
# What a person may decide, per kind of interrupt.
DECISIONS = {APPROVAL: (APPROVE, REJECT, EDIT), QUESTION: (ANSWER, REJECT)}
# What a pending interrupt becomes when nobody resolves it in time.
ON_TIMEOUT_CHOICES = (REJECT, APPROVE)


def check_rule(rule: Any) -> str | None:
    """Why an approval rule is not valid, or None."""
    if rule in (NEVER, ALWAYS):
        return None
    if not isinstance(rule, str):
        return f'An approval rule is "never", "always" or an expression over the arguments, not {rule!r}.'
    try:
        compile_expression(rule)
    except ExpressionError as exc:
        return f"Invalid approval rule: {exc}"
    return None


def needs_approval(rule: str | None, arguments: Mapping[str, Any]) -> bool:
    """Whether a call with these arguments waits for a person under ``rule``."""
    if rule in (None, "", NEVER):
        return False
    if rule == ALWAYS:
        return True
    try:
        return bool(compile_expression(rule).evaluate(dict(arguments)))
    except ExpressionError:
        return True  # a rule that cannot decide asks a person rather than let the call through


@dataclass(frozen=True, slots=True)
class InterruptRequest:
    """One question for a person: the tool call it holds back, and what is asked."""

    id: str
    kind: str
    tool_call_id: str
    request: dict

    @classmethod
    def for_call(cls, call_id: str, name: str, arguments: dict) -> InterruptRequest:
        if name == ASK_HUMAN:
            request = {"toolCallId": call_id, "question": str(arguments.get("question") or "")}
            if isinstance(arguments.get("schema"), dict):
                request["schema"] = arguments["schema"]
            return cls(str(uuid.uuid4()), QUESTION, call_id, request)
        request = {"toolCallId": call_id, "tool": name, "arguments": arguments}
        return cls(str(uuid.uuid4()), APPROVAL, call_id, request)


class RunInterrupted(Exception):
    """Raised by the loop: these calls wait for a person; ``checkpoint`` is where to resume."""

    def __init__(self, requests: list[InterruptRequest], checkpoint: dict, *, children: list[str] = ()) -> None:
        super().__init__(f"waiting for {len(requests)} decision(s) and {len(children)} run(s)")
        self.requests = requests
        self.checkpoint = checkpoint
        # Child runs that paused (a star member, a workflow step): this run waits for them.
        self.children = list(children)


@dataclass(frozen=True, slots=True)
class Decision:
    """How a person (or the timeout) resolved one interrupt."""

    decision: str  # approve, reject, edit or answer
    arguments: dict | None = None  # edit: the arguments to run the call with
    answer: Any = None  # answer: what the person said
    message: str = ""  # reject: why, for the model


@dataclass(frozen=True, slots=True)
class Resume:
    """A paused run's checkpoint and the decisions, by tool call id."""

    checkpoint: dict
    decisions: Mapping[str, Decision] = field(default_factory=dict)


def request_text(kind: str, request: Mapping[str, Any], *, limit: int = 500) -> str:
    """What a person reads: the question, the workflow gate's message, or the call to approve."""
    if kind == QUESTION:
        return str(request.get("question") or "The agent has a question.")
    if "step" in request:  # a workflow's approval step
        return str(request.get("message") or f"Approve step {request['step']!r}?")
    arguments = json.dumps(request.get("arguments") or {}, ensure_ascii=False, sort_keys=True)
    if len(arguments) > limit:
        arguments = arguments[: limit - 1] + "…"
    return f"Approve calling {request.get('tool') or 'a tool'} with {arguments}?"


def refusal(name: str, message: str) -> str:
    reason = f" The reviewer said: {message}" if message else ""
    return f"A person refused the call of tool {name!r}; it was not run.{reason}"


def answer_content(decision: Decision) -> tuple[str, bool]:
    """A question's tool result: the answer as text (data as JSON), or a refusal to answer."""
    if decision.decision != ANSWER:
        return refusal(ASK_HUMAN, decision.message) if decision.message else "Nobody answered the question.", True
    answer = decision.answer
    return (answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False, default=str)), False
