"""The run API: start, cancel, get and retry a run (every door calls these).

A new run is inserted queued and sent to a worker on commit (``cosmos.dispatch``); in a process
that executes runs, with room on its engine, it is inserted already claimed by that engine and
started there on commit (the fast path: no broker hop, no separate claim). What
happens to it there, the claim, the lease, the final write and the reaper, is in
``cosmos.services.leases``; every status change is a conditional UPDATE made there or here.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from .. import tracing
from ..bus import CANCEL_CHANNEL, get_bus
from ..dispatch import LocalExecutor, dispatch_run, local_executor
from ..kinds import get_kind
from ..models import ACTIVE_STATUSES, Interrupt, Run, RunStatus, Session, SessionPolicy
from . import revisions
from .errors import Conflict, Invalid, NotFound
from .leases import finish_unowned, publish_lifecycle

logger = logging.getLogger(__name__)

MAX_INPUT_CHARS = 200_000

# Checks a higher layer registers in its AppConfig.ready() (interfaces: per-API-key quotas).
# Each gets the caller of a new top-level run inside the transaction that inserts it, before
# the insert, and refuses by raising a ServiceError: so a check that locks and counts cannot be
# raced by parallel requests, and a refused run leaves nothing behind. Child runs are part of a
# run already admitted and are never checked.
AdmissionCheck = Callable[[str], None]
_admission_checks: list[AdmissionCheck] = []


def register_admission_check(check: AdmissionCheck) -> None:
    if check not in _admission_checks:
        _admission_checks.append(check)


def input_from_text(text: str) -> Any:
    """What a person typed in a form, as a run input: plain text is the message; text that is a
    JSON object (``{"message": ...}``, ``{"messages": [...]}``) is taken as that object.
    ``normalize_input`` then checks it as it checks any door's input."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # plain text that happens to start with a brace
    return text


def normalize_input(raw: Any) -> dict:
    """Accept ``"text"``, ``{"input": ...}``, ``{"message": ...}`` or ``{"messages": [...]}``."""
    if isinstance(raw, str):
        raw = {"message": raw}
    if not isinstance(raw, dict):
        raise Invalid("The run input must be a string or an object with 'message' or 'messages'.")
    if "input" in raw and "message" not in raw:
        raw = {key: value for key, value in raw.items() if key != "input"} | {"message": raw["input"]}
    message = raw.get("message")
    messages = raw.get("messages")
    if message is None and messages is None:
        raise Invalid("The run input needs 'input' (or 'message') text, or a 'messages' list.")
    if message is not None:
        if not isinstance(message, str | dict):
            raise Invalid("'input' must be text or a JSON object.")
        if isinstance(message, str) and not message.strip():
            raise Invalid("'input' must not be empty.")
    if messages is not None and not isinstance(messages, list):
        raise Invalid("'messages' must be a list.")
    if len(str(raw)) > MAX_INPUT_CHARS:
        raise Invalid(f"The run input is too long (at most {MAX_INPUT_CHARS} characters).")
    return raw


def start_run(
    kind: str,
    target: str,
    raw_input: Any,
    *,
    session_id: str | None = None,
    parent: Run | None = None,
    origin: str = "api",
    caller: str = "",
    idempotency_key: str | None = None,
    metadata: dict | None = None,
    run_id: str | None = None,
    dispatch: bool = True,
    trace_context: dict[str, str] | None = None,
    revision: Any = None,
) -> tuple[Run, bool]:
    """Create a queued run and dispatch it on commit. Returns ``(run, created)``.

    The run pins the definition's latest revision, or ``revision`` when the caller asks for one
    (404 if there is no such revision): it executes that revision whatever edits follow.

    The same ``idempotency_key`` from the same caller returns the existing run. With tracing on
    (``cosmos.tracing``), the run keeps ``trace_context`` (a carrier of ``traceparent`` and
    ``tracestate``), by default the context of the current span (a door's request span; for a
    child run created through ``cosmos.db.db_call``, its parent's current span): its execution,
    in whichever process and attempt, joins that trace.
    """
    run_kind = get_kind(kind)
    # Inside a caller's transaction the run is inserted queued and dispatched when that one
    # commits, if it does (dispatch_run: to this process's engine or the broker): a slot taken
    # now would be held meanwhile, or leaked by a rollback.
    in_outer_transaction = transaction.get_connection().in_atomic_block
    local: LocalExecutor | None = None
    if idempotency_key:
        if len(idempotency_key) > 200:
            raise Invalid("Idempotency-Key is longer than 200 characters.")
        existing = Run.objects.filter(caller=caller, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            # The target is checked in the transaction that inserts the run, holding its row: a
            # delete that committed first is seen (404), one still running waits for this insert.
            # (An unknown target is a 404 before bad input is a 400, as it always was.)
            run_kind.hold_target(target)
            run_kind.check_target(target)
            run_input = normalize_input(raw_input)
            pinned = revisions.pin(kind, target, revision)
            if metadata is not None and not isinstance(metadata, dict):
                raise Invalid("'metadata' must be a JSON object.")
            if session_id is not None and (not isinstance(session_id, str) or not 0 < len(session_id) <= 128):
                raise Invalid("'session_id' must be a string of 1 to 128 characters.")
            if parent is None:
                for check in _admission_checks:
                    check(caller)
            session = None
            waits_for_turn = False
            if session_id:
                session, _ = Session.objects.select_for_update().get_or_create(
                    id=session_id, defaults={"kind": kind, "target": target}
                )
                waits_for_turn = _apply_session_policy(session) and parent is None
            # A run waiting for its session's turn is not dispatched: the end of the run before
            # it dispatches it (dispatch_session_head), so it holds no worker slot meanwhile.
            dispatch = dispatch and not waits_for_turn
            local = _fast_path_executor() if dispatch and not in_outer_transaction else None
            claim = _claimed_by(local) if local is not None else {}
            run = Run.objects.create(
                **({"id": run_id} if run_id else {}),
                kind=kind,
                target=target,
                origin=origin,
                parent=parent,
                session=session,
                input=run_input,
                metadata=metadata or {},
                caller=caller,
                idempotency_key=idempotency_key or None,
                max_attempts=1 if parent is not None else settings.ASTEROS.max_attempts,
                # Optimistic: dispatch_run clears it if the broker refuses, for the reaper to resend.
                dispatched_at=timezone.now() if dispatch else None,
                trace_context=_trace_context(trace_context),
                revision=pinned,
                **claim,
            )
            if local is not None:
                # A copy: the engine changes its run as it goes; the caller answers with this one.
                transaction.on_commit(functools.partial(_hand_over, local, copy.copy(run)))
            elif dispatch:
                transaction.on_commit(lambda: dispatch_run(run.id))
    except BaseException as exc:
        if local is not None:
            local.release()  # nothing was committed: the slot taken for it is free again
        if not isinstance(exc, IntegrityError):
            raise
        if idempotency_key:  # a concurrent request with the same key won the race
            return Run.objects.get(caller=caller, idempotency_key=idempotency_key), False
        raise Conflict(f"A run with id {run_id} already exists.") from None
    publish_lifecycle(run)
    return run, True


def _fast_path_executor() -> LocalExecutor | None:
    """This process's engine, with a slot taken for the new run; None to use the broker."""
    local = local_executor()
    return local if local is not None and local.reserve() else None


def _claimed_by(local: LocalExecutor) -> dict[str, Any]:
    """The fields of a run inserted already claimed, as ``leases.claim_run`` would set them."""
    now = timezone.now()
    return {
        "status": RunStatus.RUNNING,
        "worker_id": local.worker_id,
        "lease_expires_at": now + timedelta(seconds=local.lease_seconds),
        "attempts": 1,
        "started_at": now,
    }


def _hand_over(local: LocalExecutor, run: Run) -> None:
    try:
        local.hand_over_claimed(run)
    except Exception as exc:  # e.g. the process is exiting: the lease expires, the reaper re-queues
        local.release()
        logger.warning("the engine did not take the run: %s", exc.__class__.__name__, extra={"run_id": str(run.id)})


def _trace_context(given: dict[str, str] | None) -> dict[str, str]:
    if not tracing.enabled:
        return {}
    return dict(given) if given is not None else tracing.current_context()


def _apply_session_policy(session: Session) -> bool:
    """Apply the session's policy to a new run; True if the run must wait for its turn."""
    active = list(Run.objects.filter(session=session, status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    if not active:
        return False
    if session.policy == SessionPolicy.REJECT:
        raise Conflict(
            f"Session {session.id!r} already has an active run ({active[0]}); its policy is 'reject'.",
            code="session_busy",
        )
    if session.policy == SessionPolicy.INTERRUPT:
        for run_id in active:
            request_cancel(run_id, cascade=True)
    # enqueue, and interrupt while the cancelled runs end: this run starts once they are done.
    return Run.objects.filter(session=session, parent__isnull=True, status__in=ACTIVE_STATUSES).exists()


# --- cancel


def request_cancel(run_id, *, cascade: bool = True) -> int:
    """Flag a run (and its active descendants) for cancellation and signal the workers.

    Returns how many runs were flagged. Queued runs end at once; running ones end when their
    worker sees the signal (or, failing that, the flag at its next heartbeat).
    """
    return sum(_request_cancel(run_id, cascade=cascade))


def _request_cancel(run_id, *, cascade: bool) -> tuple[int, int]:
    """(1 if the run itself was flagged, 0 if it was already terminal; descendants flagged).

    The run's own flag is one conditional UPDATE: its count says whether the run was still
    active at that moment, whatever a read before it said (a run may finish in between)."""
    flagged = Run.objects.filter(id=run_id, status__in=ACTIVE_STATUSES).update(cancel_requested=True)
    ids = [str(run_id)]
    if cascade:
        frontier = ids[:]
        while frontier:
            children = [
                str(i)
                for i in Run.objects.filter(parent_id__in=frontier, status__in=ACTIVE_STATUSES).values_list(
                    "id", flat=True
                )
            ]
            ids += children
            frontier = children
    descendants = (
        Run.objects.filter(id__in=ids[1:], status__in=ACTIVE_STATUSES).update(cancel_requested=True)
        if len(ids) > 1
        else 0
    )
    for rid in ids:
        # Queued or waiting for a person: no worker holds it, so the cancel ends it here.
        for unowned in (RunStatus.QUEUED, RunStatus.INTERRUPTED):
            finish_unowned(
                rid, RunStatus.CANCELLED, from_status=unowned, reason="cancelled", cancel_requested_only=True
            )
    get_bus().publish_sync(CANCEL_CHANNEL, {"runs": ids})
    return flagged, descendants


def cancel_run(run_id) -> Run:
    """Cancel a run from any process (every door: REST, A2A, AG-UI, websockets, dashboard).

    A run that was already terminal when the cancel reached the database cannot be cancelled
    (Conflict ``not_cancelable``), even if a read just before said it was running."""
    run = get_run(run_id)
    flagged, _ = _request_cancel(run.id, cascade=True)
    run.refresh_from_db()
    if not flagged:
        raise Conflict(
            f"Run {run.id} is already {run.status}; only queued, running or interrupted runs can be cancelled.",
            code="not_cancelable",
        )
    return run


def with_tree_flags(runs: QuerySet[Run]) -> QuerySet[Run]:
    """Runs read with ``has_children`` and ``has_interrupts``, in the same query: a run's answer
    (its total over its children, its interrupts) needs no more queries when it has neither."""
    return runs.annotate(
        has_children=Exists(Run.objects.filter(parent_id=OuterRef("pk"))),
        has_interrupts=Exists(Interrupt.objects.filter(root_run_id=OuterRef("pk"))),
    )


def get_run(run_id) -> Run:
    try:
        return Run.objects.get(id=run_id)
    except (Run.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No run with id {run_id!r}.") from None


# --- retry


def retry_run(run_id: Any, *, caller: str, origin: str = "dashboard") -> Run:
    """Start a failed or cancelled top-level run again, as a new run with the same input."""
    run = get_run(run_id)
    if run.parent_id is not None:
        raise Invalid("Retry the top-level run: a child run is re-created by its parent.", code="not_retryable")
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise Conflict(
            f"Run {run.id} is {run.status}; only failed or cancelled runs can be retried.", code="not_retryable"
        )
    metadata = {**(run.metadata or {}), "retry_of": str(run.id)}
    new, _ = start_run(
        run.kind, run.target, run.input, session_id=run.session_id, origin=origin, caller=caller, metadata=metadata
    )
    return new
