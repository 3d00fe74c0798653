"""Run lifecycle: create, dispatch, claim, renew, finish, cancel and reap.

Every status change is a conditional UPDATE on the current status (and owner), so two
processes can never both own or both finish a run. Terminal transitions write their final
event in the same transaction, so a run that is terminal always has its terminal event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..bus import CANCEL_CHANNEL, LIFECYCLE_CHANNEL, get_bus, run_channel
from ..kinds import get_kind
from ..models import ACTIVE_STATUSES, Run, RunEvent, RunStatus, Session, SessionPolicy
from ..runtime.events import EventType, make_event
from .errors import Conflict, Invalid, NotFound

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


def _lease() -> timedelta:
    return timedelta(seconds=settings.ASTEROS.lease_seconds)


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
) -> tuple[Run, bool]:
    """Create a queued run and dispatch it on commit. Returns ``(run, created)``.

    The same ``idempotency_key`` from the same caller returns the existing run.
    """
    run_kind = get_kind(kind)
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
            if metadata is not None and not isinstance(metadata, dict):
                raise Invalid("'metadata' must be a JSON object.")
            if session_id is not None and (not isinstance(session_id, str) or not 0 < len(session_id) <= 128):
                raise Invalid("'session_id' must be a string of 1 to 128 characters.")
            if parent is None:
                for check in _admission_checks:
                    check(caller)
            session = None
            if session_id:
                session, _ = Session.objects.select_for_update().get_or_create(
                    id=session_id, defaults={"kind": kind, "target": target}
                )
                _apply_session_policy(session)
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
            )
            if dispatch:
                transaction.on_commit(lambda: dispatch_run(run.id))
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won the race
            return Run.objects.get(caller=caller, idempotency_key=idempotency_key), False
        raise Conflict(f"A run with id {run_id} already exists.") from None
    publish_lifecycle(run)
    return run, True


def _apply_session_policy(session: Session) -> None:
    active = list(Run.objects.filter(session=session, status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    if not active:
        return
    if session.policy == SessionPolicy.REJECT:
        raise Conflict(
            f"Session {session.id!r} already has an active run ({active[0]}); its policy is 'reject'.",
            code="session_busy",
        )
    if session.policy == SessionPolicy.INTERRUPT:
        for run_id in active:
            request_cancel(run_id, cascade=True)
    # enqueue: the engine starts this run once the earlier ones are done


def dispatch_run(run_id) -> None:
    """Send the run to the broker. A broker outage leaves it queued for the reaper to resend."""
    from ..tasks import execute_run

    try:
        execute_run.apply_async(args=[str(run_id)], retry=False)
    except Exception as exc:
        logger.warning(
            "dispatch failed, the reaper will resend: %s", exc.__class__.__name__, extra={"run_id": str(run_id)}
        )
        Run.objects.filter(id=run_id).update(dispatched_at=None)


# --- worker side


def claim_run(run_id: str, worker_id: str) -> Run | None:
    """Take a queued run for this worker, with a lease. None if someone else has it.

    One ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+): the claim is the hottest query of
    the engine, so it is one round trip instead of an UPDATE and a SELECT.
    """
    now = timezone.now()
    table = Run._meta.db_table
    claimed = list(
        Run.objects.raw(
            f"UPDATE {table} SET status = %s, worker_id = %s, lease_expires_at = %s, attempts = attempts + 1, "
            f"started_at = COALESCE(started_at, %s), updated_at = %s "
            f"WHERE id = %s AND status = %s AND NOT cancel_requested RETURNING *",
            [RunStatus.RUNNING, worker_id, now + _lease(), now, now, _uuid_param(run_id), RunStatus.QUEUED],
        )
    )
    if not claimed:
        # A queued run whose cancel was requested before any worker took it ends here.
        finish_unowned(run_id, RunStatus.CANCELLED, from_status=RunStatus.QUEUED, reason="cancelled before start")
        return None
    return claimed[0]


def _uuid_param(run_id) -> str:
    # PostgreSQL stores uuid natively; SQLite stores the 32-digit hex Django writes.
    value = uuid.UUID(str(run_id))
    return str(value) if connection.vendor == "postgresql" else value.hex


def next_seq(run_id: str) -> int:
    return RunEvent.objects.filter(run_id=run_id).aggregate(m=Max("seq"))["m"] or 0


def renew_leases(worker_id: str, run_ids: Iterable[str]) -> tuple[set[str], set[str]]:
    """Extend the leases of this worker's runs. Returns (still ours, cancel requested)."""
    ids = list(run_ids)
    if not ids:
        return set(), set()
    ours = Run.objects.filter(id__in=ids, status=RunStatus.RUNNING, worker_id=worker_id)
    ours.update(lease_expires_at=timezone.now() + _lease())
    rows = list(ours.values_list("id", "cancel_requested"))
    return {str(i) for i, _ in rows}, {str(i) for i, cancel in rows if cancel}


def session_predecessor_active(run: Run) -> bool:
    """True while an earlier run of the same session is still queued or running."""
    if run.session_id is None:
        return False
    return (
        Run.objects.filter(session_id=run.session_id, status__in=ACTIVE_STATUSES, created_at__lt=run.created_at)
        .exclude(id=run.id)
        .exists()
    )


def owner_finalizer(run_id: str, worker_id: str, status: str, **fields: Any):
    """A callable for ``RunWriter.finish``: the conditional terminal UPDATE of an owned run."""
    from ..eventlog import LostOwnership

    def finalize() -> None:
        updated = Run.objects.filter(id=run_id, status=RunStatus.RUNNING, worker_id=worker_id).update(
            status=status, finished_at=timezone.now(), lease_expires_at=None, **fields
        )
        if not updated:
            raise LostOwnership(run_id)

    return finalize


def finish_unowned(run_id: str, status: str, *, from_status: str, reason: str, code: str | None = None) -> bool:
    """End a run nobody is executing (queued, or with an expired lease), with its final events."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(id=run_id, status=from_status).first()
        if run is None:
            return False
        if from_status == RunStatus.RUNNING and run.lease_expires_at and run.lease_expires_at > timezone.now():
            return False
        seq = next_seq(run_id)
        events = []
        if seq == 0:
            events.append(make_event(EventType.RUN_STARTED, threadId=_thread_id(run), runId=str(run.id)))
        if status == RunStatus.CANCELLED:
            events.append(
                make_event(EventType.RUN_FINISHED, threadId=_thread_id(run), runId=str(run.id), outcome="cancelled")
            )
            error = None
        else:
            error = {"code": code or "failed", "message": reason}
            events.append(make_event(EventType.RUN_ERROR, message=reason, code=code or "failed"))
        rows = [RunEvent(run=run, seq=seq + i + 1, type=e["type"], data=e) for i, e in enumerate(events)]
        RunEvent.objects.bulk_create(rows)
        Run.objects.filter(id=run_id).update(
            status=status, error=error, finished_at=timezone.now(), lease_expires_at=None
        )
    get_bus().publish_sync(run_channel(str(run_id)), {"events": [[r.seq, r.data] for r in rows]})
    run.status = status
    publish_lifecycle(run)
    return True


def _thread_id(run: Run) -> str:
    return run.session_id or str(run.id)


# --- cancel


def request_cancel(run_id, *, cascade: bool = True) -> int:
    """Flag a run (and its active descendants) for cancellation and signal the workers.

    Returns how many runs were flagged. Queued runs end at once; running ones end when their
    worker sees the signal (or, failing that, the flag at its next heartbeat).
    """
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
    flagged = Run.objects.filter(id__in=ids, status__in=ACTIVE_STATUSES).update(cancel_requested=True)
    for rid in ids:
        finish_unowned(rid, RunStatus.CANCELLED, from_status=RunStatus.QUEUED, reason="cancelled")
    get_bus().publish_sync(CANCEL_CHANNEL, {"runs": ids})
    return flagged


def cancel_run(run_id) -> Run:
    """Cancel a run from any process. A finished run cannot be cancelled (Conflict)."""
    run = get_run(run_id)
    if run.is_terminal:
        raise Conflict(
            f"Run {run.id} is already {run.status}; only queued or running runs can be cancelled.",
            code="not_cancelable",
        )
    request_cancel(run.id, cascade=True)
    run.refresh_from_db()
    return run


def get_run(run_id) -> Run:
    try:
        return Run.objects.get(id=run_id)
    except (Run.DoesNotExist, ValidationError, ValueError):
        raise NotFound(f"No run with id {run_id!r}.") from None


# --- reaper


def reap_expired_runs() -> dict[str, int]:
    """Re-queue runs whose lease expired (up to max_attempts), fail the rest, resend lost dispatches."""
    now = timezone.now()
    requeued = failed = resent = 0
    expired = Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list(
        "id", "attempts", "max_attempts"
    )
    for run_id, attempts, max_attempts in list(expired[:500]):
        if attempts < max_attempts:
            updated = Run.objects.filter(id=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=now).update(
                status=RunStatus.QUEUED, worker_id="", lease_expires_at=None, dispatched_at=now
            )
            if updated:
                requeued += 1
                dispatch_run(run_id)
        elif finish_unowned(
            run_id,
            RunStatus.FAILED,
            from_status=RunStatus.RUNNING,
            reason=f"The worker running this run was lost and it used all {max_attempts} attempt(s).",
            code="worker_lost",
        ):
            failed += 1
    # Queued runs that never reached the broker, or whose message was lost with it.
    stale = Run.objects.filter(status=RunStatus.QUEUED, cancel_requested=False, parent__isnull=True).filter(
        Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
        | Q(dispatched_at__lt=now - timedelta(seconds=max(60, settings.ASTEROS.lease_seconds * 2)))
    )
    for run_id in list(stale.values_list("id", flat=True)[:500]):
        Run.objects.filter(id=run_id).update(dispatched_at=now)
        dispatch_run(run_id)
        resent += 1
    # Child runs execute inside their parent's worker; orphans of a lost parent end here.
    orphans = Run.objects.filter(status=RunStatus.QUEUED, parent__isnull=False, created_at__lt=now - _lease()).exclude(
        parent__status=RunStatus.RUNNING
    )
    for run_id in list(orphans.values_list("id", flat=True)[:500]):
        if finish_unowned(
            run_id,
            RunStatus.FAILED,
            from_status=RunStatus.QUEUED,
            reason="The parent run was lost.",
            code="parent_lost",
        ):
            failed += 1
    if requeued or failed or resent:
        logger.info("reaper", extra={"requeued": requeued, "failed": failed, "resent": resent})
    return {"requeued": requeued, "failed": failed, "resent": resent}


def lifecycle_message(run: Run) -> dict:
    return {
        "id": str(run.id),
        "kind": run.kind,
        "target": run.target,
        "status": run.status,
        "parent": str(run.parent_id or ""),
    }


def publish_lifecycle(run: Run) -> None:
    """Tell every process (the dashboard's feed) that a run changed status."""
    get_bus().publish_sync(LIFECYCLE_CHANNEL, lifecycle_message(run))
