"""What each step type does. Each handler runs one attempt of a step and returns its output.

Leaf steps (``agent``, ``star``, ``workflow``) start a child run; ``function`` calls a registered
callable; ``parallel``, ``loop``, ``condition`` and ``router`` run nested step lists through
``WorkflowRun.run_sequence``. A handler raises ``StepError`` when the attempt fails.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cosmos.runtime.expressions import to_text

from .definition import DEFAULT_PROMPT, ROUTER_PROMPT, parallel_branches
from .errors import StepError, StepFailed
from .functions import FunctionContext, function_registry
from .templating import render_value

if TYPE_CHECKING:
    from .executor import WorkflowRun


@dataclass
class Scope:
    """What the next step sees: the previous output, and the innermost loop's counters."""

    previous: Any
    loop: dict[str, int] | None = None

    def child(self) -> Scope:
        return Scope(self.previous, self.loop)


Handler = Callable[["WorkflowRun", dict, Scope, int, "float | None"], Awaitable[Any]]


# --- leaf steps


async def run_agent(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    prompt = wf.render("prompt", step.get("prompt", DEFAULT_PROMPT), scope)
    return await wf.run_child(step, attempt, timeout, "agent", step["agent"], prompt)


async def run_star(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    prompt = wf.render("prompt", step.get("prompt", DEFAULT_PROMPT), scope)
    return await wf.run_child(step, attempt, timeout, "star", step["star"], prompt)


async def run_workflow(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    text = wf.render("input", step.get("input", DEFAULT_PROMPT), scope)
    return await wf.run_child(step, attempt, timeout, "workflow", step["workflow"], text)


async def run_function(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    function = function_registry.get(step["function"])
    if function is None:
        raise StepError(f"function {step['function']!r} is not registered in this process.", retryable=False)
    args = wf.guard("args", lambda: render_value(step.get("args", {}), wf.context_for(scope)))
    context = FunctionContext(
        workflow_id=wf.workflow_id,
        run_id=wf.run_id,
        step=step["name"],
        input=copy.deepcopy(wf.input),
        previous=copy.deepcopy(scope.previous),
        steps={name: copy.deepcopy(entry.get("output")) for name, entry in wf.steps.items()},
        state=copy.deepcopy(wf.state),
    )
    before = copy.deepcopy(context.state)
    try:
        result = await function.call(context, args)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise StepError(f"{type(exc).__name__}: {exc}") from None
    wf.merge_state(before, context.state)
    return result


# --- control flow


async def run_parallel(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    branches = parallel_branches(step)
    semaphore = asyncio.Semaphore(step.get("max_concurrency") or len(branches))
    fail_fast = step.get("fail_fast", False)
    stopping = asyncio.Event()

    async def branch(steps: list) -> Any:
        async with semaphore:
            if stopping.is_set():  # a sibling failed (fail_fast): this branch never starts
                raise asyncio.CancelledError
            try:
                return await wf.run_sequence(steps, scope.child())
            except StepFailed:
                if fail_fast:
                    stopping.set()  # before the slot is released to a waiting branch
                raise

    tasks = [asyncio.create_task(branch(steps)) for _, steps in branches]
    try:
        if fail_fast:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            if any(_failed(t) for t in tasks):
                await _cancel(tasks)
        else:
            await asyncio.wait(tasks)
    except asyncio.CancelledError:
        await _cancel(tasks)
        raise
    finally:
        for task, (_, steps) in zip(tasks, branches, strict=True):
            if task.cancelled():
                wf.mark(steps, "skipped", only_pending=True)
    failures = [task.exception() for task in tasks if _failed(task)]
    if failures:
        first = failures[0]
        if not isinstance(first, StepFailed):
            raise first  # a bug, not a step failure: the run ends with an internal error
        more = f" ({len(failures) - 1} more branch(es) failed)" if len(failures) > 1 else ""
        raise StepError(first.describe() + more, inner=first)
    return {
        name or f"branch-{i}": task.result() for i, ((name, _), task) in enumerate(zip(branches, tasks, strict=True), 1)
    }


def _failed(task: asyncio.Task) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def _cancel(tasks: list[asyncio.Task]) -> None:
    """Cancel branches and wait until their child runs have ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_loop(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    entry = wf.steps[step["name"]]
    limit: int = step["max_iterations"]
    token: str | None = step.get("stop_token")
    previous = scope.previous
    entry.pop("stopped", None)
    for iteration in range(1, limit + 1):
        loop = {"iteration": iteration, "max_iterations": limit}
        entry["iteration"] = iteration
        wf.publish()
        previous = await nested(wf, step["steps"], Scope(previous, loop))
        if token and isinstance(previous, str) and token in previous:
            entry["stopped"] = "stop_token"
            return previous.replace(token, "").strip()
        if "until" in step and wf.evaluate("until", step["until"], Scope(previous, loop), output=previous):
            entry["stopped"] = "until"
            return previous
    entry["stopped"] = "max_iterations"
    return previous


async def run_condition(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    taken, other = ("then", "else") if wf.evaluate("if", step["if"], scope) else ("else", "then")
    wf.steps[step["name"]]["branch"] = taken
    wf.mark(step.get(other) or [], "skipped")
    steps = step.get(taken) or []
    return await nested(wf, steps, scope.child()) if steps else scope.previous


async def run_router(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    routes: list[dict] = step["routes"]
    names = [route["name"] for route in routes]
    retryable = False
    if "agent" in step:
        if "prompt" in step:
            prompt = wf.render("prompt", step["prompt"], scope)
        else:
            prompt = ROUTER_PROMPT.format(routes=_route_list(routes)) + to_text(scope.previous)
        reply = to_text(await wf.run_child(step, attempt, None, "agent", step["agent"], prompt))
        chosen, how, retryable = match_route(reply, names), f"agent {step['agent']!r} answered {reply[:80]!r}", True
    elif "expression" in step:
        value = to_text(wf.evaluate("expression", step["expression"], scope))
        chosen, how = (value if value in names else None), f"the expression gave {value[:80]!r}"
    else:
        chosen = next((r["name"] for r in routes if "when" not in r or wf.evaluate("when", r["when"], scope)), None)
        how = "no route's 'when' held"
    chosen = chosen or step.get("default")
    if chosen is None:
        raise StepError(f"no route matched: {how}; the routes are {', '.join(names)}.", retryable=retryable)
    wf.steps[step["name"]]["route"] = chosen
    route = next(r for r in routes if r["name"] == chosen)
    for other in routes:
        if other is not route:
            wf.mark(other["steps"], "skipped")
    return await nested(wf, route["steps"], scope.child()) if route["steps"] else scope.previous


def _route_list(routes: list[dict]) -> str:
    return "\n".join(f"- {r['name']}: {r['description']}" if r.get("description") else f"- {r['name']}" for r in routes)


def match_route(reply: str, names: list[str]) -> str | None:
    """The route an agent chose: its whole answer, else the route name it mentions first."""
    answer = reply.strip().strip(".!\"'`*").strip().lower()
    for name in names:
        if answer == name.lower():
            return name
    lowered = reply.lower()
    found = [
        (match.start(), name)
        for name in names
        if (match := re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lowered))
    ]
    return min(found)[1] if found else None


async def nested(wf: WorkflowRun, steps: list, scope: Scope) -> Any:
    """Run a nested step list; a nested step that fails for good fails this attempt."""
    try:
        return await wf.run_sequence(steps, scope)
    except StepFailed as failed:
        raise StepError(failed.describe(), inner=failed) from None


async def run_approval(wf: WorkflowRun, step: dict, scope: Scope, attempt: int, timeout: float | None) -> Any:
    return wf.approval_gate(step, scope)


HANDLERS: dict[str, Handler] = {
    "agent": run_agent,
    "star": run_star,
    "workflow": run_workflow,
    "function": run_function,
    "parallel": run_parallel,
    "loop": run_loop,
    "condition": run_condition,
    "router": run_router,
    "approval": run_approval,
}
