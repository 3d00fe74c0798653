"""Run leases: claim, renew, finalize and reap (the worker side of the run lifecycle).

Every status change is a conditional UPDATE on the current status (and owner), so two
processes can never both own or both finish a run. Terminal transitions write their final
event in the same transaction, so a run that is terminal always has its terminal event.
The end of a session's run hands the session's turn to its next run.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.dispatch import Signal
from django.utils import timezone

from ..bus import LIFECYCLE_CHANNEL, get_bus, run_channel
from ..dispatch import dispatch_run
from ..eventlog import LostOwnership
from ..models import ACTIVE_STATUSES, Interrupt, InterruptStatus, Run, RunEvent, RunStatus, Session
from ..runtime.events import PAIRED_EVENT_TYPES, EventType, closing_events, make_event

logger = logging.getLogger(__name__)


def _lease() -> timedelta:
    return timedelta(seconds=settings.ASTEROS.lease_seconds)


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
            f"AND earlier.parent_id IS NULL AND earlier.status IN (%s, %s, %s) "
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
                *ACTIVE_STATUSES,
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
        # A run that ends while it waits for a person leaves nothing to decide.
        Interrupt.objects.filter(run_id=run_id, status=InterruptStatus.PENDING).update(
            status=InterruptStatus.CANCELLED, resolved_at=timezone.now()
        )
        _hand_off_on_commit(run.session_id, run.parent_id)
    get_bus().publish_sync(run_channel(str(run_id)), {"events": [[r.seq, r.data] for r in rows]})
    run.status = status
    publish_lifecycle(run)
    return True


def _thread_id(run: Run) -> str:
    return run.session_id or str(run.id)


# --- reaper


def reap_expired_runs() -> dict[str, int]:
    """Re-queue runs whose lease expired (up to max_attempts), fail the rest, resend lost dispatches.

    A run cancelled while its worker was gone ends cancelled: the cancel is its cause, not the
    lost worker, and it is not started again only to be stopped (its children likewise)."""
    now = timezone.now()
    requeued = failed = resent = cancelled = 0
    expired = Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list(
        "id", "attempts", "max_attempts", "cancel_requested"
    )
    for run_id, attempts, max_attempts, cancel_requested in list(expired[:500]):
        if cancel_requested:
            if finish_unowned(
                run_id,
                RunStatus.CANCELLED,
                from_status=RunStatus.RUNNING,
                reason="cancelled",
                cancel_requested_only=True,
            ):
                cancelled += 1
        elif attempts < max_attempts:
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
    # (A parent paused for a person, or queued to resume, executes its queued children again.)
    orphans = Run.objects.filter(status=RunStatus.QUEUED, parent__isnull=False, created_at__lt=now - _lease()).exclude(
        parent__status__in=ACTIVE_STATUSES
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
    counts = {"requeued": requeued, "failed": failed, "resent": resent, "cancelled": cancelled}
    if any(counts.values()):
        logger.info("reaper", extra=counts)
    return counts


# --- the lifecycle feed (the dashboard's)


def lifecycle_message(run: Run) -> dict:
    return {
        "id": str(run.id),
        "kind": run.kind,
        "target": run.target,
        "status": run.status,
        "parent": str(run.parent_id or ""),
    }


# Sent in the process that changed a run's status, after the change committed, with
# ``message`` (``lifecycle_message``). Webhooks and A2A push notifications listen (they register
# in their AppConfig.ready: cosmos imports none of them). A receiver's error is logged, never
# raised into the run; a process that dies before it is sent loses nothing that a receiver's
# own sweep of the database cannot find again.
run_changed = Signal()


def publish_lifecycle(run: Run) -> None:
    """Tell every process (the dashboard's feed) and this process's listeners that a run changed status."""
    announce(lifecycle_message(run))


def announce(message: dict) -> None:
    get_bus().publish_sync(LIFECYCLE_CHANNEL, message)
    for receiver, error in run_changed.send_robust(Run, message=message):
        if isinstance(error, Exception):
            logger.warning(
                "a run_changed receiver failed: %s", error.__class__.__name__, extra={"receiver": repr(receiver)}
            )
