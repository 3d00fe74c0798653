"""Run lifecycle: create, dispatch, claim, renew, finish, cancel and reap.

Every status change is a conditional UPDATE on the current status (and owner), so two
processes can never both own or both finish a run. Terminal transitions write their final
event in the same transaction, so a run that is terminal always has its terminal event.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from ..bus import CANCEL_CHANNEL, LIFECYCLE_CHANNEL, get_bus, run_channel
from ..kinds import get_kind
from ..models import ACTIVE_STATUSES, Run, RunEvent, RunStatus, Session, SessionPolicy
from ..runtime.events import PAIRED_EVENT_TYPES, EventType, closing_events, make_event
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
            waits_for_turn = False
            if session_id:
                session, _ = Session.objects.select_for_update().get_or_create(
                    id=session_id, defaults={"kind": kind, "target": target}
                )
                waits_for_turn = _apply_session_policy(session) and parent is None
            # A run waiting for its session's turn is not dispatched: the end of the run before
            # it dispatches it (dispatch_session_head), so it holds no worker slot meanwhile.
            dispatch = dispatch and not waits_for_turn
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


# --- sessions: one run at a time, in order


def _earlier_in_session() -> Exists:
    """An earlier top-level run of the same session is still queued or running: this run's turn
    has not come. (``claim_run`` states the same condition in its SQL.)"""
    return Exists(
        Run.objects.filter(session_id=OuterRef("session_id"), parent__isnull=True, status__in=ACTIVE_STATUSES).filter(
            Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
        )
    )


def session_heads():
    """Queued top-level session runs whose turn has come (nothing earlier in their session is active)."""
    return Run.objects.filter(
        status=RunStatus.QUEUED, parent__isnull=True, session__isnull=False, cancel_requested=False
    ).filter(~_earlier_in_session())


def dispatch_session_head(session_id: str) -> None:
    """Dispatch the session's next run, once the run before it has ended (by whatever path)."""
    with transaction.atomic():
        # The lock start_run takes: a run created meanwhile either saw the end and was
        # dispatched at once, or is committed (and seen below) before this goes on.
        list(Session.objects.select_for_update().filter(id=session_id).values_list("id", flat=True))
        head = session_heads().filter(session_id=session_id).values_list("id", flat=True).first()
        if head is None:
            return
        Run.objects.filter(id=head, status=RunStatus.QUEUED).update(dispatched_at=timezone.now())
        transaction.on_commit(functools.partial(dispatch_run, head))


def _hand_off_on_commit(session_id: str | None, parent_id) -> None:
    """Called by every transition to a terminal status: the session's next run may start."""
    if session_id and parent_id is None:
        # robust: the run's own end is committed whatever happens to the hand-off (the reaper
        # dispatches a session head that a lost hand-off left behind).
        transaction.on_commit(functools.partial(dispatch_session_head, session_id), robust=True)


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
    # The session turn (_earlier_in_session): a run whose turn has not come is not taken, so it
    # holds no slot; the end of the run before it dispatches it again.
    claimed = list(
        Run.objects.raw(
            f"UPDATE {table} SET status = %s, worker_id = %s, lease_expires_at = %s, attempts = attempts + 1, "
            f"started_at = COALESCE(started_at, %s), updated_at = %s "
            f"WHERE id = %s AND status = %s AND NOT cancel_requested "
            f"AND (session_id IS NULL OR parent_id IS NOT NULL OR NOT EXISTS ("
            f"SELECT 1 FROM {table} AS earlier WHERE earlier.session_id = {table}.session_id "
            f"AND earlier.parent_id IS NULL AND earlier.status IN (%s, %s) "
            f"AND (earlier.created_at < {table}.created_at "
            f"OR (earlier.created_at = {table}.created_at AND earlier.id < {table}.id)))) RETURNING *",
            [
                RunStatus.RUNNING,
                worker_id,
                now + _lease(),
                now,
                now,
                _uuid_param(run_id),
                RunStatus.QUEUED,
                RunStatus.QUEUED,
                RunStatus.RUNNING,
            ],
        )
    )
    if not claimed:
        # A queued run whose cancel was requested before any worker took it ends here.
        if not finish_unowned(
            run_id,
            RunStatus.CANCELLED,
            from_status=RunStatus.QUEUED,
            reason="cancelled before start",
            cancel_requested_only=True,
        ):
            # Still queued: its session's turn has not come. It is no longer in the broker.
            Run.objects.filter(id=run_id, status=RunStatus.QUEUED).update(dispatched_at=None)
        return None
    return claimed[0]


def _uuid_param(run_id) -> str:
    # PostgreSQL stores uuid natively; SQLite stores the 32-digit hex Django writes.
    value = uuid.UUID(str(run_id))
    return str(value) if connection.vendor == "postgresql" else value.hex


def owned_run(run_id: str, worker_id: str) -> Run | None:
    """The run if it is running under this worker (a claim whose answer was lost)."""
    return Run.objects.filter(id=run_id, status=RunStatus.RUNNING, worker_id=worker_id).first()


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


def owner_finalizer(
    run_id: str,
    worker_id: str,
    status: str,
    *,
    attempt: int | None = None,
    session_id: str | None = None,
    parent_id=None,
    **fields: Any,
):
    """A callable for ``RunWriter.finish``: the conditional terminal UPDATE of an owned run.

    ``attempt`` pins the owner to one attempt: an engine whose run was reaped while its final
    write was being retried may claim the run again itself (same worker id); the old attempt's
    write must then fail, not finish the new one's run."""
    from ..eventlog import LostOwnership

    def finalize() -> None:
        owned = Run.objects.filter(id=run_id, status=RunStatus.RUNNING, worker_id=worker_id)
        if attempt is not None:
            owned = owned.filter(attempts=attempt)
        updated = owned.update(status=status, finished_at=timezone.now(), lease_expires_at=None, **fields)
        if not updated:
            raise LostOwnership(run_id)
        _hand_off_on_commit(session_id, parent_id)

    return finalize


def open_stream_closers(run_id) -> list[dict]:
    """The END events for the messages, tool calls, steps and subagents the run's stored log
    leaves open (an attempt that was lost mid-message). See ``runtime.events.closing_events``."""
    stored = RunEvent.objects.filter(run_id=run_id, type__in=PAIRED_EVENT_TYPES).order_by("seq")
    return closing_events(stored.values_list("data", flat=True))


def resume_point(run_id) -> tuple[int, list[dict]]:
    """For a retried attempt: the last stored seq, and what the lost attempt left open."""
    return next_seq(run_id), open_stream_closers(run_id)


def finish_unowned(
    run_id: str,
    status: str,
    *,
    from_status: str,
    reason: str,
    code: str | None = None,
    cancel_requested_only: bool = False,
) -> bool:
    """End a run nobody is executing (queued, or with an expired lease), with its final events."""
    with transaction.atomic():
        candidates = Run.objects.select_for_update().filter(id=run_id, status=from_status)
        if cancel_requested_only:
            candidates = candidates.filter(cancel_requested=True)
        run = candidates.first()
        if run is None:
            return False
        if from_status == RunStatus.RUNNING and run.lease_expires_at and run.lease_expires_at > timezone.now():
            return False
        seq = next_seq(run_id)
        events = []
        if seq == 0:
            events.append(make_event(EventType.RUN_STARTED, threadId=_thread_id(run), runId=str(run.id)))
        else:
            # A lost attempt may have left a message, tool call or step open: close them first.
            events += open_stream_closers(run_id)
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
        _hand_off_on_commit(run.session_id, run.parent_id)
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
        finish_unowned(
            rid, RunStatus.CANCELLED, from_status=RunStatus.QUEUED, reason="cancelled", cancel_requested_only=True
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
            f"Run {run.id} is already {run.status}; only queued or running runs can be cancelled.",
            code="not_cancelable",
        )
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
    # Queued runs that never reached the broker, or whose message was lost with it. A session
    # run counts only once its turn has come (the hand-off that should have sent it was lost);
    # until then it is not meant to be in the broker.
    long_ago = now - timedelta(seconds=max(60, settings.ASTEROS.lease_seconds * 2))
    stale = Run.objects.filter(
        status=RunStatus.QUEUED, cancel_requested=False, parent__isnull=True, session__isnull=True
    ).filter(Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5)) | Q(dispatched_at__lt=long_ago))
    stale_heads = session_heads().filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=long_ago))
    stale_ids = list(stale.values_list("id", flat=True)[:500]) + list(stale_heads.values_list("id", flat=True)[:500])
    for run_id in stale_ids:
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
