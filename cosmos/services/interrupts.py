"""Interrupts: a run paused for a person, resolved from any door, then resumed.

The engine pauses a run (``pause_finalizer``, inside the run's own final write): status
``interrupted``, no worker, no lease, the checkpoint kept on the row, one ``Interrupt`` per
question. ``resolve`` records a person's decision; the last decision of a pause queues the run
again (same id, its log goes on) and the engine resumes it from the checkpoint
(``resume_state``). ``expire_due`` (the reaper's tick) resolves what waited too long as the
definition says. Every path locks the run row first, then its interrupts, as a cancel does
(``leases.finish_unowned``): two reviewers, a reviewer and a cancel, or a reviewer and the
timeout meet there, and one wins.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from ..bus import get_bus, run_channel
from ..dispatch import dispatch_run
from ..eventlog import LostOwnership
from ..models import Interrupt, InterruptKind, InterruptStatus, Run, RunEvent, RunStatus
from ..runtime.events import EventType, make_event
from ..runtime.interrupts import (
    ANSWER,
    APPROVE,
    DECISIONS,
    EDIT,
    REJECT,
    Decision,
    InterruptRequest,
    Resume,
    request_text,
)
from . import costs
from .errors import Conflict, Invalid, NotFound
from .leases import next_seq, publish_lifecycle

INTERRUPT_EVENT = "asteros.interrupt"
TIMEOUT_REVIEWER = "timeout"

# Sent once the pause is committed (webhooks and notifications hook in here): ``run`` and
# ``interrupts`` (the new rows). ``interrupt_resolved`` likewise, with ``interrupt``.
interrupt_requested = Signal()
interrupt_resolved = Signal()

_STATUS_OF = {APPROVE: InterruptStatus.APPROVED, EDIT: InterruptStatus.APPROVED, REJECT: InterruptStatus.REJECTED}


def describe(interrupt: Interrupt) -> dict:
    """An interrupt as every door shows it."""
    return {
        "id": str(interrupt.id),
        "runId": str(interrupt.run_id),
        "kind": interrupt.kind,
        "request": interrupt.request,
        "status": interrupt.status,
        "decision": interrupt.decision or None,
        "response": interrupt.response,
        "resolvedBy": interrupt.resolved_by or None,
        "createdAt": interrupt.created_at.isoformat() if interrupt.created_at else None,
        "expiresAt": interrupt.expires_at.isoformat() if interrupt.expires_at else None,
        "resolvedAt": interrupt.resolved_at.isoformat() if interrupt.resolved_at else None,
    }


# --- pausing (the engine, inside the run's final write)


def _usage_fields(checkpoint: dict) -> dict:
    if not any(field in checkpoint for field in costs.TOKEN_FIELDS):
        return {}  # a pause that ran no model (a star or workflow waiting for its children)
    return costs.priced_usage(checkpoint.get("provider", ""), checkpoint.get("model", ""), checkpoint)


def pause_finalizer(
    run: Run,
    worker_id: str,
    requests: list[InterruptRequest],
    checkpoint: dict,
    *,
    children: list[str],
    timeout_seconds: int | None,
    on_timeout: str,
):
    """A callable for ``RunWriter.finish``: the run releases its worker and waits for people
    (``requests``, its own questions) and for ``children`` (its runs that paused)."""
    run_id = str(run.id)
    attempt = run.attempts

    def finalize() -> None:
        updated = Run.objects.filter(id=run_id, status=RunStatus.RUNNING, worker_id=worker_id, attempts=attempt).update(
            status=RunStatus.INTERRUPTED,
            worker_id="",
            lease_expires_at=None,
            checkpoint={
                **checkpoint,
                "attempt": attempt,
                "interrupts": [r.id for r in requests],
                "children": [str(c) for c in children],
            },
            # What the model used so far counts now (quotas, the dashboard), not only at the end,
            # priced now like a finished run's.
            **_usage_fields(checkpoint),
        )
        if not updated:
            raise LostOwnership(run_id)
        now = timezone.now()
        expires_at = now + timedelta(seconds=timeout_seconds) if timeout_seconds else None
        root_id = root_of(run)
        rows = Interrupt.objects.bulk_create(
            Interrupt(
                id=request.id,
                run_id=run_id,
                root_run_id=root_id,
                kind=request.kind,
                request=request.request,
                expires_at=expires_at,
                on_timeout=on_timeout,
            )
            for request in requests
        )
        transaction.on_commit(functools.partial(_announce_pause, run_id, [str(r.id) for r in rows]))
        if children:
            # A child resolved before this pause committed found this run still running: look again.
            transaction.on_commit(functools.partial(wake_waiting, run))

    return finalize


def root_of(run: Run) -> str:
    """The top-level run above ``run`` (itself if it has no parent)."""
    run_id, parent_id = str(run.id), run.parent_id
    while parent_id is not None:
        run_id = str(parent_id)
        parent_id = Run.objects.filter(id=parent_id).values_list("parent_id", flat=True).first()
    return run_id


def timeout_policy(run: Run) -> tuple[int | None, str]:
    """How long the run's interrupts wait, and what an approval becomes after that."""
    from ..kinds import get_kind

    model = get_kind(run.kind).target_model
    definition = model.objects.filter(pk=run.target).first() if model is not None else None
    return (
        getattr(definition, "interrupt_timeout_seconds", None),
        getattr(definition, "on_interrupt_timeout", REJECT) or REJECT,
    )


def pause_event(requests: list[InterruptRequest], children: list[str], timeout_seconds: int | None) -> dict:
    """The ``asteros.interrupt`` event of a pause: the run's own questions, and those of the
    paused runs below it (a member's, a step's), so the top-level stream shows them all."""
    expires_at = (timezone.now() + timedelta(seconds=timeout_seconds)).isoformat() if timeout_seconds else None
    interrupts = [
        {"id": r.id, "kind": r.kind, "request": r.request, "status": InterruptStatus.PENDING, "expiresAt": expires_at}
        for r in requests
    ]
    for interrupt in _pending_below(children):
        shown = describe(interrupt)
        interrupts.append({key: shown[key] for key in ("id", "runId", "kind", "request", "status", "expiresAt")})
    return make_event(EventType.CUSTOM, name=INTERRUPT_EVENT, value={"status": "pending", "interrupts": interrupts})


def is_pause_event(event: dict) -> bool:
    """Whether a run's event is the one ``pause_event`` makes: the run stopped for people."""
    value = event.get("value")
    return (
        event.get("type") == EventType.CUSTOM
        and event.get("name") == INTERRUPT_EVENT
        and isinstance(value, dict)
        and value.get("status") == "pending"
        and isinstance(value.get("interrupts"), list)
        and bool(value["interrupts"])
    )


def _pending_below(children: list[str]) -> list[Interrupt]:
    """The pending interrupts of these paused runs and of the runs they wait for, and so on
    (a star's leader waits for a member, which is a child of the star, not of the leader)."""
    found: list[Interrupt] = []
    frontier = list(children)
    while frontier:
        found += Interrupt.objects.filter(run_id__in=frontier, status=InterruptStatus.PENDING).order_by("created_at")
        paused = Run.objects.filter(id__in=frontier, status=RunStatus.INTERRUPTED).values_list("checkpoint", flat=True)
        frontier = [child for checkpoint in paused for child in (checkpoint or {}).get("children") or ()]
    return found


def _announce_pause(run_id: str, interrupt_ids: list[str]) -> None:
    run = Run.objects.get(id=run_id)
    publish_lifecycle(run)
    interrupt_requested.send(Run, run=run, interrupts=list(Interrupt.objects.filter(id__in=interrupt_ids)))


# --- resolving (every door)


def get_interrupt(interrupt_id: Any) -> Interrupt:
    try:
        return Interrupt.objects.get(id=interrupt_id)
    except (Interrupt.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No interrupt with id {interrupt_id!r}.") from None


def pending_interrupts(run_id: Any) -> list[Interrupt]:
    return list(Interrupt.objects.filter(root_run_id=run_id, status=InterruptStatus.PENDING).order_by("created_at"))


def resolve(
    interrupt_id: Any,
    decision: str,
    *,
    arguments: Any = None,
    answer: Any = None,
    message: str = "",
    resolved_by: str = "",
    run_id: Any = None,
) -> Interrupt:
    """Record a person's decision; the pause's last decision queues the run again.

    ``Conflict`` (``already_resolved``) when the interrupt was resolved, expired or cancelled
    first, ``Invalid`` for a decision its kind does not take; ``run_id`` (the run a door was
    asked about) must be the interrupt's run or its top-level run."""
    interrupt = get_interrupt(interrupt_id)
    if run_id is not None and str(run_id) not in (str(interrupt.run_id), str(interrupt.root_run_id)):
        raise NotFound(f"Run {run_id} has no interrupt {interrupt_id}.")
    response = _checked_response(interrupt, decision, arguments, answer, message)
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(id=interrupt.run_id).first()
        interrupt = Interrupt.objects.select_for_update().get(id=interrupt.id)
        if interrupt.status != InterruptStatus.PENDING:
            raise Conflict(f"Interrupt {interrupt.id} is already {interrupt.status}.", code="already_resolved")
        if run is None or run.status != RunStatus.INTERRUPTED:
            raise Conflict(f"Run {interrupt.run_id} is not waiting for a decision.", code="not_interrupted")
        interrupt.status = InterruptStatus.ANSWERED if decision == ANSWER else _STATUS_OF[decision]
        if resolved_by == TIMEOUT_REVIEWER:
            interrupt.status = InterruptStatus.EXPIRED
        interrupt.decision = decision
        interrupt.response = response
        interrupt.resolved_by = resolved_by[:200]
        interrupt.resolved_at = timezone.now()
        interrupt.save(update_fields=["status", "decision", "response", "resolved_by", "resolved_at"])
        ready = _ready(run)
        rows = _queue_again(run) if ready else []
    if ready:
        _announce_resume(run, rows)
        if run.parent_id is not None:
            wake_waiting(run)
    interrupt_resolved.send(Interrupt, interrupt=interrupt)
    return interrupt


def _ready(run: Run) -> bool:
    """Nothing of the pause still waits: no question of its own, no child run still paused."""
    if Interrupt.objects.filter(run_id=run.id, status=InterruptStatus.PENDING).exists():
        return False
    children = (run.checkpoint or {}).get("children") or []
    return not Run.objects.filter(id__in=children, status=RunStatus.INTERRUPTED).exists()


def wake_if_ready(run_id: Any) -> bool:
    """Queue a paused run again if nothing it waits for still waits. Returns whether it did."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.status != RunStatus.INTERRUPTED or not _ready(run):
            return False
        rows = _queue_again(run)
    _announce_resume(run, rows)
    return True


def wake_waiting(run: Run) -> None:
    """A run below a top-level run went on: queue again every paused run of that tree that no
    longer waits (the one that waited for it, then the one that waited for that one, ...)."""
    top = root_of(run)
    woke = True
    while woke:
        woke = False
        for paused in _paused_in_tree(top):
            woke = wake_if_ready(paused) or woke


def _paused_in_tree(top: str) -> list[str]:
    """The paused runs of a tree, deepest first."""
    levels: list[list[str]] = []
    frontier = [top]
    while frontier:
        levels.append(frontier)
        frontier = [str(i) for i in Run.objects.filter(parent_id__in=frontier).values_list("id", flat=True)]
    ids = [run_id for level in reversed(levels) for run_id in level]
    paused = set(Run.objects.filter(id__in=ids, status=RunStatus.INTERRUPTED).values_list("id", flat=True))
    return [run_id for run_id in ids if uuid.UUID(run_id) in paused]


def _announce_resume(run: Run, rows: list[RunEvent]) -> None:
    get_bus().publish_sync(run_channel(str(run.id)), {"events": [[r.seq, r.data] for r in rows]})
    run.status = RunStatus.QUEUED
    publish_lifecycle(run)


def check_decision(
    interrupt: Interrupt, decision: str, *, arguments: Any = None, answer: Any = None, message: str = ""
) -> None:
    """Raise ``Invalid`` as ``resolve`` would for this decision, resolving nothing: a door that
    resolves several interrupts at once checks them all before it resolves the first."""
    _checked_response(interrupt, decision, arguments, answer, message)


def _checked_response(interrupt: Interrupt, decision: str, arguments: Any, answer: Any, message: Any) -> Any:
    allowed = DECISIONS[interrupt.kind]
    if decision not in allowed:
        raise Invalid(
            f"A {interrupt.kind} takes one of {', '.join(allowed)}, not {decision!r}.",
            code="invalid_decision",
            details={"decision": decision, "allowed": list(allowed)},
        )
    if message is not None and not isinstance(message, str):
        raise Invalid("message must be text.", code="invalid_decision")
    if decision == EDIT:
        if not isinstance(arguments, dict):
            raise Invalid("edit needs arguments: the JSON object to run the tool with.", code="invalid_decision")
        return {"arguments": arguments, "message": message or ""}
    if decision == ANSWER:
        if answer is None:
            raise Invalid("answer needs an answer.", code="invalid_decision")
        schema = interrupt.request.get("schema")
        if schema and (problem := _schema_problem(answer, schema)):
            raise Invalid(f"The answer does not match the question's schema: {problem}", code="invalid_answer")
        return {"answer": answer, "message": message or ""}
    return {"message": message or ""}


def _schema_problem(answer: Any, schema: dict) -> str | None:
    import jsonschema

    try:
        jsonschema.validate(answer, schema)
    except jsonschema.ValidationError as exc:
        return exc.message
    except jsonschema.SchemaError:
        return None  # a model's schema that is not one cannot refuse an answer
    return None


def _queue_again(run: Run) -> list[RunEvent]:
    """Nothing of the pause waits any more: queue the run, and say so in its log."""
    interrupts = Interrupt.objects.filter(id__in=(run.checkpoint or {}).get("interrupts", ()))
    value = {
        "status": "resumed",
        "interrupts": [{"id": str(i.id), "status": i.status, "decision": i.decision} for i in interrupts],
    }
    seq = next_seq(run.id) + 1
    event = make_event(EventType.CUSTOM, name=INTERRUPT_EVENT, value=value)
    row = RunEvent.objects.create(run=run, seq=seq, type=event["type"], data=event)
    # The resumed attempt does not count against the run's retries.
    Run.objects.filter(id=run.id, status=RunStatus.INTERRUPTED).update(
        status=RunStatus.QUEUED, max_attempts=F("max_attempts") + 1, dispatched_at=timezone.now()
    )
    if run.parent_id is None:
        transaction.on_commit(functools.partial(dispatch_run, run.id))
    # else: its parent, resumed in turn, executes it again where it waits for it.
    return [row]


def expire_due(limit: int = 500) -> int:
    """Resolve the interrupts that waited past their ``expires_at``, as their definition says."""
    now = timezone.now()
    due = Interrupt.objects.filter(status=InterruptStatus.PENDING, expires_at__lt=now).values_list(
        "id", "kind", "on_timeout"
    )
    expired = 0
    for interrupt_id, kind, on_timeout in list(due[:limit]):
        decision = on_timeout if kind == InterruptKind.APPROVAL and on_timeout in (APPROVE, REJECT) else REJECT
        try:
            resolve(interrupt_id, decision, message="Nobody decided in time.", resolved_by=TIMEOUT_REVIEWER)
            expired += 1
        except (Conflict, NotFound):
            pass  # resolved or cancelled meanwhile
    return expired


# --- resuming (the engine, when it claims a run that was paused)


def resume_state(run: Run) -> Resume | None:
    """The checkpoint and the decisions of the run's last pause, or None (never paused)."""
    checkpoint = run.checkpoint
    if not checkpoint:
        return None
    decisions = {
        i.tool_call_id: _decision_of(i) for i in Interrupt.objects.filter(id__in=checkpoint.get("interrupts", ()))
    }
    return Resume(checkpoint=checkpoint, decisions=decisions)


def resumed_now(run: Run) -> bool:
    """This attempt is the first since the pause was resolved (not a retry after a crash)."""
    return bool(run.checkpoint) and run.attempts == run.checkpoint.get("attempt", 0) + 1


def _decision_of(interrupt: Interrupt) -> Decision:
    response = interrupt.response or {}
    if interrupt.status == InterruptStatus.CANCELLED or not interrupt.decision:
        return Decision(REJECT, message="The question was withdrawn.")
    return Decision(
        interrupt.decision,
        arguments=response.get("arguments"),
        answer=response.get("answer"),
        message=response.get("message", ""),
    )


def interrupts_of(runs: Iterable[Run]) -> dict[str, list[Interrupt]]:
    """The interrupts of these runs (as top-level runs), in one query."""
    ids = [run.id for run in runs]
    found: dict[str, list[Interrupt]] = {str(i): [] for i in ids}
    for interrupt in Interrupt.objects.filter(root_run_id__in=ids).order_by("created_at"):
        found[str(interrupt.root_run_id)].append(interrupt)
    return found


def answer_from_text(interrupt: Interrupt, text: str) -> Any:
    """What a person typed in a form, as the answer the question wants: the text itself, unless
    the question's schema asks for something else than a string, in which case it is read as
    JSON (text that is not JSON stays text, and the schema check says what is wrong)."""
    schema = interrupt.request.get("schema") if isinstance(interrupt.request, dict) else None
    if not isinstance(schema, dict) or schema.get("type") in (None, "string"):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def subject(interrupt: Interrupt) -> str:
    """One line for lists: the tool call waiting for approval, or the question."""
    return request_text(interrupt.kind, interrupt.request if isinstance(interrupt.request, dict) else {})
