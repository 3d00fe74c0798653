"""The workflow executor: the ``workflow`` run kind.

A workflow run walks its definition's steps in order. Every step emits ``STEP_STARTED`` and
``STEP_FINISHED`` (AG-UI ``stepName``); the workflow state (the input, the shared ``state``, and
each step's status and output) goes out as one ``STATE_SNAPSHOT`` and then ``STATE_DELTA``
JSON Patches. Agent, star and nested workflow steps are child runs (``parent`` = this run),
announced with ``SUBAGENT_*`` events and executed in this engine as tasks of their own.

A step may retry (``retry``), time out (``timeout_seconds``) and, with ``continue_on_error``,
fail without ending the run; otherwise the run fails with ``step_failed`` naming the step.
Cancelling the run cancels its children (the engine stops them with it); a step stopped from
inside (a parallel ``fail_fast``, a composite step's timeout) cancels its children through
``cosmos.services.runs.request_cancel`` and waits until they have ended.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import jsonpatch

from cosmos.db import db_call
from cosmos.kinds import ExecutionResult
from cosmos.models import Run, RunStatus
from cosmos.runtime.errors import RunFailed
from cosmos.runtime.events import EventType, make_event
from cosmos.runtime.expressions import ExpressionError, compile_expression, to_text
from cosmos.runtime.interrupts import APPROVAL, APPROVE, EDIT, InterruptRequest, RunInterrupted
from cosmos.services import leases
from cosmos.services import runs as run_services
from cosmos.services.checkpoints import EarlierChildren, call_key
from cosmos.services.errors import ServiceError

from .definition import CHILD_RUN_TYPES, PAUSABLE_TYPES, iter_steps, retry_policy, step_names
from .errors import StepError, StepFailed
from .models import Workflow
from .services import workflow_for_run
from .steps import HANDLERS, Scope
from .templating import compile_template, render_value

if TYPE_CHECKING:
    from cosmos.engine import RunContext

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_NESTING = 8
STOP_GRACE_SECONDS = 30.0
WORKFLOW_CALL = "workflow_call"  # a step's child run's metadata key for its call (cosmos.services.checkpoints)


async def execute_workflow(context: RunContext) -> ExecutionResult:
    run = context.run
    # The revision the run pinned; a run from before revisions, whose workflow was deleted before
    # it loaded it, fails with definition_deleted (the engine).
    workflow = await db_call(workflow_for_run, run.target, run.revision)
    path = run.metadata.get("workflow_path") if isinstance(run.metadata, dict) else None
    path = [str(p) for p in path] if isinstance(path, list) else []
    if workflow.id in path:
        chain = " → ".join([*path, workflow.id])
        raise RunFailed("workflow_cycle", f"Workflow {workflow.id!r} includes itself ({chain}).")
    if len(path) >= MAX_NESTING:
        raise RunFailed("workflow_too_deep", f"Workflows are nested more than {MAX_NESTING} levels deep.")
    return await WorkflowRun(context, workflow, path).execute()


def workflow_input(run_input: dict) -> Any:
    """The workflow's ``input``: the run's message, or the last user message of a conversation."""
    if "message" in run_input:
        return run_input["message"]
    for message in reversed(run_input.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message.get("content")
    return None


def jsonable(value: Any) -> Any:
    """Step outputs are stored as JSON; anything else becomes its JSON-able rendering."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


class WorkflowRun:
    """The state of one workflow run while it executes."""

    def __init__(self, context: RunContext, workflow: Workflow, path: list[str]) -> None:
        self.context = context
        self.run = context.run
        self.run_id = context.run_id
        self.workflow_id = workflow.id
        self.definition: dict = workflow.definition
        self.path = path
        self.input = workflow_input(self.run.input)
        state = dict(self.definition.get("state") or {})
        if isinstance(self.run.input.get("state"), dict):
            state.update(self.run.input["state"])
        # The workflow state clients see (STATE_SNAPSHOT / STATE_DELTA) and templates read.
        self.doc: dict[str, Any] = {
            "input": self.input,
            "state": state,
            "steps": {name: {"status": "pending"} for name in step_names(self.definition["steps"])},
        }
        self._published: dict[str, Any] | None = None
        # On a retry after the worker was lost: the steps' child runs that succeeded before (and
        # those left unfinished, which new ones replace).
        self.earlier: EarlierChildren | None = None
        # A run that paused at an approval step resumes there, the steps before it done.
        resume = context.resume
        self.decisions = resume.decisions if resume is not None else {}
        self.resume_at: str | None = None
        self.resume_previous: Any = None
        self.resume_child: str | None = None  # the paused child run the step at resume_at waits for
        if resume is not None and "workflow" in resume.checkpoint:
            self.doc = copy.deepcopy(resume.checkpoint["workflow"])
            self.resume_at = resume.checkpoint["at"]
            self.resume_previous = resume.checkpoint.get("previous")
            self.resume_child = next(iter(resume.checkpoint.get("children") or ()), None)

    @property
    def state(self) -> dict[str, Any]:
        return self.doc["state"]

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.doc["steps"]

    # --- the run

    async def execute(self) -> ExecutionResult:
        if self.context.reuse_from:
            earlier = self.context.reuse_from
            self.earlier = await db_call(EarlierChildren.load, earlier, WORKFLOW_CALL, succeeded_only=True)
        self.publish()
        scope = Scope(previous=self.input)
        steps = self.definition["steps"]
        if self.resume_at is not None:
            at = next((i for i, step in enumerate(steps) if step.get("name") == self.resume_at), None)
            if at is None:
                raise RunFailed(
                    "definition_changed", f"The workflow no longer has the step {self.resume_at!r} it waited at."
                )
            steps, scope.previous = steps[at:], self.resume_previous
        try:
            await self.run_sequence(steps, scope)
        except RunInterrupted as paused:
            # A top-level step waits for a person: resume there, with what ran before it.
            paused.checkpoint.update(workflow=self.doc, previous=jsonable(scope.previous))
            raise
        except StepFailed as failed:
            details = {"step": failed.step, "path": failed.path}
            raise RunFailed("step_failed", failed.describe(), details=details) from None
        output = scope.previous
        if "output" in self.definition:
            try:
                output = render_value(self.definition["output"], self.context_for(scope))
            except ExpressionError as exc:
                raise RunFailed("output_failed", f"The workflow's 'output' template failed: {exc}") from None
        output = jsonable(output)
        self.emit_text(to_text(output))
        return ExecutionResult(output=output)

    async def run_sequence(self, steps: list, scope: Scope) -> Any:
        """Run steps in order; each succeeding step's output becomes ``previous``."""
        for step in steps:
            succeeded, output = await self.run_step(step, scope)
            if succeeded:
                scope.previous = output
        return scope.previous

    async def run_step(self, step: dict, scope: Scope) -> tuple[bool, Any]:
        """One step with its retries. Returns (succeeded, output); raises ``StepFailed``."""
        name = step["name"]
        entry = self.steps.setdefault(name, {})
        max_attempts, backoff = retry_policy(step)
        self.emit(EventType.STEP_STARTED, stepName=name)
        attempt = 1
        entry.update(status="running", attempts=attempt)
        entry.pop("error", None)
        self.publish()
        try:
            while True:
                try:
                    output = jsonable(await self.attempt(step, scope, attempt))
                except StepError as error:
                    entry["error"] = error.message
                    if error.retryable and attempt < max_attempts:
                        self.publish()
                        await asyncio.sleep(backoff * 2 ** (attempt - 1))
                        attempt += 1
                        entry["attempts"] = attempt
                        continue
                    entry["status"] = "failed"
                    entry.pop("output", None)
                    if step.get("continue_on_error"):
                        return False, None
                    raise StepFailed.of(name, error) from None
                entry.update(status="succeeded", output=output)
                entry.pop("error", None)
                return True, output
        except asyncio.CancelledError:
            entry["status"] = "cancelled"
            raise
        except RunInterrupted as paused:
            entry["status"] = "waiting"
            paused.checkpoint["at"] = name  # the outermost step's name is the last one set
            raise
        finally:
            self.publish()
            self.emit(EventType.STEP_FINISHED, stepName=name)

    async def attempt(self, step: dict, scope: Scope, attempt: int) -> Any:
        try:
            return await self._attempt(step, scope, attempt)
        except RunInterrupted as paused:
            if step["type"] in PAUSABLE_TYPES:
                raise
            # A run resumes at a top-level step; a composite step would run its inner steps
            # (and their child runs) again. End the paused runs and fail the step instead.
            for child_id in paused.children:
                await db_call(run_services.request_cancel, child_id)
            raise StepError(
                "a step inside it waits for a person; only a top-level step can wait (move it to the top level).",
                retryable=False,
            ) from None

    async def _attempt(self, step: dict, scope: Scope, attempt: int) -> Any:
        handler = HANDLERS[step["type"]]
        timeout = step.get("timeout_seconds")
        if not timeout or step["type"] in CHILD_RUN_TYPES:
            return await handler(self, step, scope, attempt, timeout)  # the engine times the child run out
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await handler(self, step, scope, attempt, None)
        except TimeoutError:
            if deadline.expired():
                raise StepError(f"timed out after {timeout:g}s.") from None
            raise

    # --- approval steps

    def approval_gate(self, step: dict, scope: Scope) -> Any:
        """Pause for a person the first time; on resume, go on if they approved."""
        name = step["name"]
        call_id = f"step:{name}"
        decision = self.decisions.get(call_id)
        if decision is None:
            message = self.render("message", step["message"], scope)
            if "data" in step:
                data = render_value(step["data"], self.context_for(scope))
            else:
                data = {"previous": scope.previous, "state": self.state}
            request = {"toolCallId": call_id, "step": name, "message": message, "data": jsonable(data)}
            raise RunInterrupted([InterruptRequest(str(uuid.uuid4()), APPROVAL, call_id, request)], {})
        if decision.decision in (APPROVE, EDIT):
            output: dict[str, Any] = {"approved": True, "message": decision.message}
            if decision.decision == EDIT:
                output["data"] = decision.arguments
            return output
        reason = f": {decision.message}" if decision.message else "."
        raise StepError(f"a person rejected it{reason}", retryable=False)

    # --- child runs

    async def run_child(
        self, step: dict, attempt: int, timeout: float | None, kind: str, target: str, text: str
    ) -> Any:
        """Start a child run for a step, wait for it, and return its output (or raise StepError)."""
        name = step["name"]
        metadata: dict[str, Any] = {
            "workflow_id": self.workflow_id,
            "workflow_run": self.run_id,
            "workflow_step": name,
            "attempt": attempt,
            # The step, its attempt and what it was given: a loop's iterations and a step's
            # retries are told apart by their input and attempt, and taken in order.
            WORKFLOW_CALL: call_key(name, attempt, kind, target, text),
        }
        if kind == "workflow":
            metadata["workflow_path"] = [*self.path, self.workflow_id]
        if name == self.resume_at and self.resume_child is not None:
            # Resumed at this step: its child run paused with it and goes on now.
            child_id, self.resume_child = self.resume_child, None
            fields = self._subagent_fields(name, kind, target, child_id)
            return await self._await_child(child_id, fields, kind, timeout)
        reused = self.earlier.take(metadata[WORKFLOW_CALL]) if self.earlier is not None else None
        if reused is not None:
            # Succeeded before the worker was lost: its output is reused, it does not run again.
            fields = self._subagent_fields(name, kind, target, reused) | {"reused": True}
            self.steps[name]["run"] = reused
            self.publish()
            self.emit(EventType.SUBAGENT_STARTED, **fields)
            return await self._await_child(reused, fields, kind, timeout)
        if self.earlier is not None:
            metadata |= self.earlier.replaced(metadata[WORKFLOW_CALL])
        starting = asyncio.ensure_future(
            db_call(
                run_services.start_run,
                kind,
                target,
                {"message": text},
                parent=self.run,
                origin="workflow",
                caller=self.run.caller,
                metadata=metadata,
                dispatch=False,
            )
        )
        try:
            child, _ = await asyncio.shield(starting)
        except ServiceError as exc:
            raise StepError(f"could not start {kind} {target!r}: {exc.message}", retryable=False) from None
        except asyncio.CancelledError:
            await self._cancel_unstarted(starting)
            raise
        child_id = str(child.id)
        fields = self._subagent_fields(name, kind, target, child_id)
        self.steps[name]["run"] = child_id
        self.publish()
        self.emit(EventType.SUBAGENT_STARTED, **fields)
        return await self._await_child(child_id, fields, kind, timeout)

    async def _await_child(self, child_id: str, fields: dict, kind: str, timeout: float | None) -> Any:
        """Execute the child run here and return its output (or raise StepError, or pause)."""
        task = asyncio.create_task(self.context.engine.execute(child_id, timeout=timeout, parent_id=self.run_id))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await self._stop_child(child_id, task)
            self.emit(EventType.SUBAGENT_ERROR, **fields, status=RunStatus.CANCELLED.value, message="cancelled")
            raise
        child = await db_call(Run.objects.get, id=child_id)
        if child.status == RunStatus.INTERRUPTED:
            raise RunInterrupted([], {}, children=[child_id])  # it waits for a person: so does this run
        if child.status == RunStatus.SUCCEEDED:
            self.emit(EventType.SUBAGENT_FINISHED, **fields, status=child.status, output=to_text(child.output))
            return child.output
        error = dict(child.error or {})
        retryable = True
        if child.status == RunStatus.CANCELLED:
            message, retryable = f"its {kind} run was cancelled.", False
        elif error.get("code") == "timeout" and timeout:
            message = f"timed out after {timeout:g}s."
        else:
            message = error.get("message") or f"its {kind} run ended {child.status}."
        self.emit(EventType.SUBAGENT_ERROR, **fields, status=child.status, code=error.get("code"), message=message)
        raise StepError(message, retryable=retryable)

    async def _cancel_unstarted(self, starting: asyncio.Future) -> None:
        """Stopped while creating a child: once the row exists, end it so it never stays queued."""
        try:
            child, _ = await starting
        except Exception:
            return  # it was never created
        await db_call(
            leases.finish_unowned,
            str(child.id),
            RunStatus.CANCELLED,
            from_status=RunStatus.QUEUED,
            reason="cancelled",
        )

    async def _stop_child(self, child_id: str, task: asyncio.Task) -> None:
        """Cancel a child run (and its children) and wait until it has ended."""
        if task.done():
            return
        try:
            await db_call(run_services.request_cancel, child_id)
        except Exception as exc:  # the engine's cascade or the lease check still stops it
            logger.warning("could not cancel child run: %s", exc.__class__.__name__, extra={"run_id": child_id})
        await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)

    def _subagent_fields(self, step_name: str, kind: str, target: str, child_id: str) -> dict[str, Any]:
        target_key = {"agent": "agentId", "star": "starId", "workflow": "workflowId"}[kind]
        return {
            "runId": child_id,
            "parentRunId": self.run_id,
            "stepName": step_name,
            "kind": kind,
            target_key: target,
        }

    # --- data

    def context_for(self, scope: Scope, **extra: Any) -> dict[str, Any]:
        """What templates and expressions read. ``loop`` is the innermost loop's counters."""
        return {
            "input": self.input,
            "previous": scope.previous,
            "steps": self.steps,
            "state": self.state,
            "loop": scope.loop,
            **extra,
        }

    def render(self, field: str, source: str, scope: Scope) -> str:
        return self.guard(field, lambda: compile_template(source).render(self.context_for(scope)))

    def evaluate(self, field: str, source: str, scope: Scope, **extra: Any) -> Any:
        return self.guard(field, lambda: compile_expression(source).evaluate(self.context_for(scope, **extra)))

    def guard(self, field: str, compute: Callable[[], T]) -> T:
        try:
            return compute()
        except ExpressionError as exc:
            raise StepError(f"'{field}' failed: {exc}.", retryable=False) from None

    def merge_state(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Apply a function's changes to the shared state, key by key (parallel branches may write too)."""
        for key, value in after.items():
            if key not in before or before[key] != value:
                self.state[key] = jsonable(value)
        for key in before.keys() - after.keys():
            self.state.pop(key, None)

    def mark(self, steps: list, status: str, *, only_pending: bool = False) -> None:
        """Set the status of steps that will not run now (an untaken branch or route)."""
        for step in iter_steps(steps):
            name = step.get("name")
            if name in self.steps and (not only_pending or self.steps[name].get("status") == "pending"):
                self.steps[name] = {"status": status}

    # --- events

    def emit(self, type_: str, **fields: Any) -> None:
        self.context.writer.emit_nowait(make_event(type_, **fields))

    def publish(self) -> None:
        """Send the state: a snapshot the first time, then a JSON Patch of what changed."""
        current = copy.deepcopy(self.doc)
        if self._published is None:
            self.emit(EventType.STATE_SNAPSHOT, snapshot=current)
        else:
            delta = jsonpatch.make_patch(self._published, current).patch
            if delta:
                self.emit(EventType.STATE_DELTA, delta=delta)
        self._published = current

    def emit_text(self, text: str) -> None:
        """The final output as an assistant message, so chat clients (A2A, AG-UI) see text."""
        message_id = str(uuid.uuid4())
        self.emit(EventType.TEXT_MESSAGE_START, messageId=message_id, role="assistant")
        if text:
            self.emit(EventType.TEXT_MESSAGE_CONTENT, messageId=message_id, delta=text)
        self.emit(EventType.TEXT_MESSAGE_END, messageId=message_id)
