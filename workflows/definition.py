"""The shape of a workflow definition, shared by validation and the engine.

A definition is ``{"steps": [...], "output": "template", "state": {...}}``, and optionally
``"input_schema"``: the JSON Schema (an object) of the input it takes, which the doors that
describe their inputs publish (the MCP door's tool schema); a run's ``{{ input }}`` is then
that object. Every step has a unique ``name`` and a ``type``; composite steps hold nested step lists (``branches`` of a
``parallel``, ``steps`` of a ``loop``, ``then``/``else`` of a ``condition``, ``routes`` of a
``router``). See docs/workflows.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STEP_TYPES = ("agent", "star", "workflow", "function", "parallel", "loop", "condition", "router", "approval")
CHILD_RUN_TYPES = ("agent", "star", "workflow")
# Steps that may pause the run for a person (an approval, or a child run that waits for one).
PAUSABLE_TYPES = (*CHILD_RUN_TYPES, "approval")

COMMON_KEYS = frozenset({"name", "type", "description", "timeout_seconds", "retry", "continue_on_error"})
STEP_KEYS: dict[str, frozenset[str]] = {
    "agent": frozenset({"agent", "prompt"}),
    "star": frozenset({"star", "prompt"}),
    "workflow": frozenset({"workflow", "input"}),
    "function": frozenset({"function", "args"}),
    "parallel": frozenset({"branches", "max_concurrency", "fail_fast"}),
    "loop": frozenset({"steps", "max_iterations", "until", "stop_token"}),
    "condition": frozenset({"if", "then", "else"}),
    "router": frozenset({"routes", "expression", "agent", "prompt", "default"}),
    "approval": frozenset({"message", "data"}),
}
DEFINITION_KEYS = frozenset({"steps", "output", "state", "description", "input_schema"})
ROUTE_KEYS = frozenset({"name", "description", "when", "steps"})
BRANCH_KEYS = frozenset({"name", "description", "steps"})

DEFAULT_PROMPT = "{{ previous }}"
ROUTER_PROMPT = (
    "Choose the route that fits the request below. Answer with the route's name only.\n\n"
    "Routes:\n{routes}\n\nRequest:\n"
)


@dataclass(frozen=True)
class Block:
    """A nested list of steps inside a composite step: a branch, a loop body, a route."""

    label: str  # "branch 'a'", "body", "then", "route 'billing'"
    key: str | None  # the branch or route name, if any
    steps: list[Any]


def blocks(step: dict) -> list[Block]:
    """The nested step lists of a step (empty for leaf steps); tolerant of malformed parts."""
    kind = step.get("type")
    if kind == "parallel":
        return [
            Block(f"branch {key!r}" if key else f"branch #{index}", key, nested)
            for index, (key, nested) in enumerate(parallel_branches(step), start=1)
        ]
    if kind == "loop":
        return [Block("body", None, _as_list(step.get("steps")))]
    if kind == "condition":
        return [Block("then", "then", _as_list(step.get("then"))), Block("else", "else", _as_list(step.get("else")))]
    if kind == "router":
        routes = step.get("routes") if isinstance(step.get("routes"), list) else []
        return [
            Block(f"route {route.get('name')!r}", route.get("name"), _as_list(route.get("steps")))
            for route in routes
            if isinstance(route, dict)
        ]
    return []


def parallel_branches(step: dict) -> list[tuple[str | None, list[Any]]]:
    """``(name, steps)`` per branch: a branch is ``{"name", "steps"}`` or one step (named after it)."""
    branches = step.get("branches")
    result: list[tuple[str | None, list[Any]]] = []
    for branch in branches if isinstance(branches, list) else []:
        if isinstance(branch, dict) and "type" in branch:
            name = branch.get("name")
            result.append((name if isinstance(name, str) else None, [branch]))
        elif isinstance(branch, dict):
            name = branch.get("name")
            result.append((name if isinstance(name, str) else None, _as_list(branch.get("steps"))))
        else:
            result.append((None, []))
    return result


_DONE = object()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def iter_steps(steps: Any) -> Iterator[dict]:
    """Every step object, nested ones included, in definition order.

    A stack, not recursion: validation walks a definition before it knows how deep it is, and
    one nested a thousand levels deep (code can register one) must get its error, not a
    RecursionError.
    """
    stack: list[Iterator[Any]] = [iter(_as_list(steps))]
    while stack:
        step = next(stack[-1], _DONE)
        if step is _DONE:
            stack.pop()
        elif isinstance(step, dict):
            yield step
            stack.append(itertools.chain.from_iterable(block.steps for block in blocks(step)))


def step_names(steps: Any) -> list[str]:
    return [s["name"] for s in iter_steps(steps) if isinstance(s.get("name"), str)]


def retry_policy(step: dict) -> tuple[int, float]:
    """``(max_attempts, backoff_seconds)``; one attempt and no wait unless ``retry`` says otherwise."""
    retry = step.get("retry") if isinstance(step.get("retry"), dict) else {}
    return int(retry.get("max_attempts", 1)), float(retry.get("backoff_seconds", 0))
