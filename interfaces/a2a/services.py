"""The A2A operations, shared by both bindings: a task is a ``Run``, a context is a ``Session``.

- ``taskId`` is the run id; only top-level runs of the target (not star members' or workflow
  steps' child runs) are its tasks. With auth on, a key without the ``admin`` scope sees only
  the tasks it started (``Run.caller``).
- ``contextId`` is the session id: a message without one gets a new session; a message with one
  continues that conversation (the agent sees its history). A ``taskId`` must name an existing
  task of this agent with the same context; a task that is working or finished takes no more
  messages (UnsupportedOperation), so a follow-up goes to a new task in the same context.
- A task is input-required while its run waits for people (approvals, questions). A message
  to it is the reply (``interfaces.a2a.replies``): its decisions go to
  ``cosmos.services.interrupts.resolve`` and the same run goes on; the reply joins the task's
  history (kept in ``Run.metadata['a2a']['replies']``).
- A blocking SendMessage returns once the task is terminal or input-required.
- The ``messageId`` is the run's idempotency key (per caller and agent): a retried message
  returns the task it already started instead of starting another.

The functions named ``*_sync`` run ORM queries and are called through ``cosmos.db.db_call``;
the rest are async and used by the views.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.models import Interrupt, Run, RunEvent, RunStatus, Session
from cosmos.runtime.events import EventType
from cosmos.services.errors import Conflict, ServiceError
from cosmos.services.interrupts import INTERRUPT_EVENT, pending_interrupts, resolve
from cosmos.services.leases import next_seq
from cosmos.services.runs import cancel_run, start_run
from interfaces.a2a.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
    as_a2a_error,
    iso,
)
from interfaces.a2a.protocol import (
    CANCELED,
    COMPLETED,
    FAILED,
    INPUT_REQUIRED,
    ROLE_USER,
    SUBMITTED,
    WORKING,
    IncomingMessage,
    ListParams,
    SendParams,
    require_receiver_url,
    run_input,
)
from interfaces.a2a.replies import Pending, read_reply
from interfaces.a2a.translate import TaskProjection
from interfaces.edge.auth import KeyPrincipal, caller_of, principal_allows
from interfaces.edge.runs import wait_for_run
from interfaces.edge.targets import Target

# A blocking SendMessage waits at most this long, then answers with the task still working.
BLOCKING_TIMEOUT_SECONDS = 300.0
# CancelTask waits this long for a running task to reach TASK_STATE_CANCELED before answering.
CANCEL_WAIT_SECONDS = 10.0
LIST_EVENT_TYPES = (
    EventType.RUN_STARTED,
    EventType.RUN_FINISHED,
    EventType.RUN_ERROR,
    EventType.TEXT_MESSAGE_START,
    EventType.TEXT_MESSAGE_CONTENT,
    EventType.TEXT_MESSAGE_CHUNK,
    EventType.TEXT_MESSAGE_END,
    EventType.CUSTOM,  # a pause and its resumption
)
STATUS_EVENT_TYPES = (EventType.RUN_STARTED, EventType.RUN_FINISHED, EventType.RUN_ERROR, EventType.CUSTOM)
STATE_STATUSES = {
    SUBMITTED: RunStatus.QUEUED,
    WORKING: RunStatus.RUNNING,
    COMPLETED: RunStatus.SUCCEEDED,
    FAILED: RunStatus.FAILED,
    CANCELED: RunStatus.CANCELLED,
    INPUT_REQUIRED: RunStatus.INTERRUPTED,
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: their ``Run.caller`` and whether they may see every caller's tasks."""

    principal: Any
    name: str
    sees_all: bool

    @classmethod
    def of(cls, principal: Any) -> Caller:
        sees_all = not settings.ASTEROS.enable_auth or principal_allows(principal, "admin")
        return cls(principal, caller_of(principal), sees_all)

    @property
    def is_key(self) -> bool:
        return isinstance(self.principal, KeyPrincipal)


# --- reading tasks


def context_of(run: Run) -> str:
    return run.session_id or str(run.id)


def status_time(run: Run) -> datetime:
    return run.finished_at or run.started_at or run.created_at


def tasks_of(target: Target, caller: Caller) -> QuerySet[Run]:
    runs = Run.objects.filter(kind=target.kind, target=target.id, parent__isnull=True)
    if not caller.sees_all:
        runs = runs.filter(caller=caller.name)
    return runs


def find_run_sync(target: Target, caller: Caller, task_id: str) -> Run:
    try:
        run_id = uuid.UUID(task_id)
    except (ValueError, TypeError, AttributeError):
        raise TaskNotFoundError(f"No task with id {task_id!r}.", metadata={"taskId": task_id}) from None
    run = tasks_of(target, caller).filter(id=run_id).first()
    if run is None:
        raise TaskNotFoundError(f"No task with id {task_id!r}.", metadata={"taskId": task_id})
    return run


def user_message(run: Run) -> dict[str, Any]:
    """The message that started the task: as the A2A client sent it, or built from the input."""
    task_id, context_id = str(run.id), context_of(run)
    stored = (run.metadata or {}).get("a2a", {}).get("message") if isinstance(run.metadata, dict) else None
    if isinstance(stored, dict) and stored.get("parts"):
        return {**stored, "contextId": context_id, "taskId": task_id, "role": ROLE_USER}
    run_input_value = run.input.get("message") if isinstance(run.input, dict) else None
    if run_input_value is None and isinstance(run.input, dict) and isinstance(run.input.get("messages"), list):
        users = [m for m in run.input["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        run_input_value = users[-1].get("content") if users else ""
    part = {"text": run_input_value} if isinstance(run_input_value, str) else {"data": run_input_value}
    message_id = f"{task_id}-input"
    return {"messageId": message_id, "contextId": context_id, "taskId": task_id, "role": ROLE_USER, "parts": [part]}


def _stored_a2a(run: Run) -> dict[str, Any]:
    a2a = run.metadata.get("a2a") if isinstance(run.metadata, dict) else None
    return a2a if isinstance(a2a, dict) else {}


def _stored_replies(run: Run) -> list[dict[str, Any]]:
    stored = _stored_a2a(run).get("replies")
    if not isinstance(stored, list):
        return []
    return [r for r in stored if isinstance(r, dict) and isinstance(r.get("message"), dict)]


def replies_of(run: Run) -> list[tuple[int, dict[str, Any]]]:
    """The messages that answered the task's pauses (pause number, message as in its history)."""
    task_id, context_id = str(run.id), context_of(run)
    return [
        (int(r.get("pause") or 0), {**r["message"], "contextId": context_id, "taskId": task_id, "role": ROLE_USER})
        for r in _stored_replies(run)
    ]


def task_metadata(run: Run) -> dict[str, Any]:
    return {"asteros": {"runKind": run.kind, "target": run.target, "runStatus": run.status}}


def project(run: Run, events: Iterable[dict[str, Any]]) -> TaskProjection:
    projection = TaskProjection(str(run.id), context_of(run))
    for event in events:
        projection.apply(event, timestamp=iso(status_time(run)))
    projection.reconcile(run.status, run.error, iso(status_time(run)))
    if run.status == RunStatus.INTERRUPTED:
        # The log says what was asked; the rows say what has been answered since.
        rows = Interrupt.objects.filter(id__in=(run.checkpoint or {}).get("interrupts", ()))
        projection.refresh_pause({str(i): status for i, status in rows.values_list("id", "status")})
    return projection


def task_json(
    run: Run, events: Iterable[dict[str, Any]], *, history_length: int | None, include_artifacts: bool = True
) -> dict[str, Any]:
    return project(run, events).task(
        user_message=user_message(run),
        history_length=history_length,
        include_artifacts=include_artifacts,
        metadata=task_metadata(run),
        replies=replies_of(run),
    )


def load_task_sync(run_id: str, *, history_length: int | None = None) -> dict[str, Any]:
    run = Run.objects.get(id=run_id)
    events = RunEvent.objects.filter(run_id=run.id).order_by("seq").values_list("data", flat=True)
    return task_json(run, events, history_length=history_length)


def get_task_sync(target: Target, caller: Caller, task_id: str, history_length: int | None) -> dict[str, Any]:
    run = find_run_sync(target, caller, task_id)
    events = RunEvent.objects.filter(run_id=run.id).order_by("seq").values_list("data", flat=True)
    return task_json(run, events, history_length=history_length)


# --- listing


def _encode_token(when: datetime, run_id: Any) -> str:
    raw = json.dumps([when.isoformat(), str(run_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when_text, run_id = json.loads(raw)
        when = parse_datetime(when_text)
        if when is None:
            raise ValueError
        return when, uuid.UUID(run_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidParamsError(
            "'pageToken' is not a token this server handed out.", field_violations=[("pageToken", "unknown token")]
        ) from None


def list_tasks_sync(target: Target, caller: Caller, params: ListParams) -> dict[str, Any]:
    runs = tasks_of(target, caller).annotate(
        status_at=Coalesce("finished_at", "started_at", "created_at", output_field=DateTimeField())
    )
    if params.context_id:
        runs = runs.filter(session_id=params.context_id)
    if params.status:
        status = STATE_STATUSES.get(params.status)
        runs = runs.filter(status=status) if status else runs.none()
    if params.status_timestamp_after:
        after = parse_datetime(params.status_timestamp_after.replace("Z", "+00:00"))
        if after is None:
            raise InvalidParamsError(
                "'statusTimestampAfter' must be an ISO 8601 timestamp.",
                field_violations=[("statusTimestampAfter", "ISO 8601 timestamp")],
            )
        runs = runs.filter(status_at__gt=after)
    total = runs.count()
    if params.page_token:
        when, run_id = _decode_token(params.page_token)
        runs = runs.filter(Q(status_at__lt=when) | Q(status_at=when, id__lt=run_id))
    page = list(runs.order_by("-status_at", "-id")[: params.page_size + 1])
    more = len(page) > params.page_size
    page = page[: params.page_size]
    wants_events = params.include_artifacts or params.history_length != 0
    types = LIST_EVENT_TYPES if wants_events else STATUS_EVENT_TYPES
    events: dict[Any, list[dict[str, Any]]] = {run.id: [] for run in page}
    rows = RunEvent.objects.filter(run_id__in=list(events), type__in=types).order_by("run_id", "seq")
    for run_id, data in rows.values_list("run_id", "data"):
        events[run_id].append(data)
    tasks = [
        task_json(run, events[run.id], history_length=params.history_length, include_artifacts=params.include_artifacts)
        for run in page
    ]
    return {
        "tasks": tasks,
        "nextPageToken": _encode_token(page[-1].status_at, page[-1].id) if more and page else "",
        "pageSize": params.page_size,
        "totalSize": total,
    }


# --- sending


def _check_follow_up(target: Target, caller: Caller, message: IncomingMessage) -> str | None:
    """Validate ``taskId``/``contextId``; return the context to use (None: a new one)."""
    context_id = message.context_id
    if message.task_id:
        run = find_run_sync(target, caller, message.task_id)
        if context_id and context_id != context_of(run):
            raise InvalidParamsError(
                f"contextId {context_id!r} does not match task {message.task_id!r} (its contextId is "
                f"{context_of(run)!r}).",
                field_violations=[("message.contextId", "does not match the task's contextId")],
            )
        if run.is_terminal:
            raise UnsupportedOperationError(
                f"Task {run.id} is finished ({run.status}) and takes no more messages; send a new message with "
                f"contextId {context_of(run)!r} (and no taskId) to continue the conversation.",
                metadata={"taskId": str(run.id), "contextId": context_of(run)},
            )
        raise UnsupportedOperationError(
            f"Task {run.id} is still working and takes no messages while it runs; wait for it (GetTask or "
            "SubscribeToTask) or cancel it, then send a new message in the same context.",
            metadata={"taskId": str(run.id), "contextId": context_of(run)},
        )
    if context_id:
        session = Session.objects.filter(id=context_id).first()
        if session is not None and session.target and (session.kind, session.target) != (target.kind, target.id):
            raise InvalidParamsError(
                f"contextId {context_id!r} belongs to another agent; use a new context.",
                field_violations=[("message.contextId", "belongs to another agent")],
            )
    return context_id


def _idempotency_key(target: Target, message_id: str) -> str:
    """Per agent and message; long message ids are hashed to stay within the column."""
    if len(message_id) > 100:
        message_id = "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
    return f"a2a:{target.kind}:{target.id}:{message_id}"


def _reply_sync(run: Run, caller: Caller, message: IncomingMessage) -> Run:
    """The message answers the run's pending interrupts: resolve them, and remember the reply."""
    pending = [Pending(str(i.id), i.kind, i.request or {}) for i in pending_interrupts(run.id)]
    if not pending:
        raise _not_waiting(run, "already_resolved")
    # Which pause this answers (0 for the first): places the reply in the task's history.
    pause = (RunEvent.objects.filter(run_id=run.id, type=EventType.CUSTOM, data__name=INTERRUPT_EVENT).count() - 1) // 2
    for reply in read_reply(message, pending):
        try:
            resolve(
                reply.interrupt_id,
                reply.decision,
                arguments=reply.arguments,
                answer=reply.answer,
                message=reply.message,
                resolved_by=caller.name,
                run_id=run.id,
            )
        except Conflict as exc:
            raise _not_waiting(run, exc.code) from None
        except ServiceError as exc:
            raise as_a2a_error(exc) from None
    with transaction.atomic():
        row = Run.objects.select_for_update().get(id=run.id)
        metadata = row.metadata if isinstance(row.metadata, dict) else {}
        a2a = dict(metadata.get("a2a") or {})
        a2a["replies"] = [*(a2a.get("replies") or []), {"pause": pause, "message": message.stored()}]
        Run.objects.filter(id=run.id).update(metadata={**metadata, "a2a": a2a})
    return Run.objects.get(id=run.id)


def _not_waiting(run: Run, code: str) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"Task {run.id} is no longer waiting for input: its question was already answered (or withdrawn).",
        metadata={"taskId": str(run.id), "code": code},
    )


def _replied_already(run: Run, message_id: str) -> bool:
    """A retried reply (same messageId): it was applied once, the task is returned as it is."""
    return any(r["message"].get("messageId") == message_id for r in _stored_replies(run))


def _answer_task_sync(target: Target, caller: Caller, message: IncomingMessage) -> Run | None:
    """The task resumed by this message, or None when the message does not answer a paused task."""
    if not message.task_id:
        return None
    run = find_run_sync(target, caller, message.task_id)
    if message.context_id and message.context_id != context_of(run):
        return None  # _check_follow_up refuses it
    if _replied_already(run, message.message_id):
        return run
    if run.status == RunStatus.INTERRUPTED:
        return _reply_sync(run, caller, message)
    return None


# Called with (task, caller, params) once a SendMessage has started or resumed its task; push
# notifications (``interfaces.a2a.push``) register here to store ``taskPushNotificationConfig``.
SendHook = Callable[[Run, Caller, SendParams], None]
_send_hooks: list[SendHook] = []


def on_send(hook: SendHook) -> None:
    if hook not in _send_hooks:
        _send_hooks.append(hook)


def _after_send(run: Run, caller: Caller, params: SendParams) -> None:
    for hook in _send_hooks:
        hook(run, caller, params)


def send_sync(target: Target, caller: Caller, params: SendParams) -> tuple[Run, bool]:
    """Start a task, or resume the input-required task the message answers; True when this
    message started a new task (False: a resumed task, or a retried message's task)."""
    message = params.message
    if params.push_config is not None:  # refused before anything is written
        require_receiver_url(params.push_config, "configuration.taskPushNotificationConfig.url")
    resumed = _answer_task_sync(target, caller, message)
    if resumed is not None:
        _after_send(resumed, caller, params)
        return resumed, False
    raw_input = run_input(message)
    context_id = _check_follow_up(target, caller, message) or str(uuid.uuid4())
    a2a: dict[str, Any] = {"message": message.stored()}
    if params.metadata:
        a2a["metadata"] = params.metadata
    try:
        run, created = start_run(
            target.kind,
            target.id,
            raw_input,
            session_id=context_id,
            origin="a2a",
            caller=caller.name,
            idempotency_key=_idempotency_key(target, message.message_id),
            metadata={"a2a": a2a},
        )
    except ServiceError as exc:
        raise as_a2a_error(exc) from None
    _after_send(run, caller, params)
    return run, created


async def send_message(target: Target, caller: Caller, params: SendParams) -> dict[str, Any]:
    """SendMessage: start (or resume) the task and, unless ``returnImmediately``, wait until it
    is done or waits for input."""
    run, _ = await db_call(send_sync, target, caller, params)
    if not params.return_immediately:
        await _settle(str(run.id), BLOCKING_TIMEOUT_SECONDS)
    task = await db_call(load_task_sync, str(run.id), history_length=params.history_length)
    return {"task": task}


async def _settle(run_id: str, timeout: float) -> None:
    """Wait until the task is terminal or input-required (a paused run's log stays open)."""
    stream = await _subscription(run_id)
    try:
        async with asyncio.timeout(timeout):
            async for _payload in stream:
                pass
    except TimeoutError:
        pass
    finally:
        await stream.aclose()


async def send_streaming_message(target: Target, caller: Caller, params: SendParams) -> AsyncIterator[dict[str, Any]]:
    """SendStreamingMessage: the new task first, then its updates until a terminal or
    input-required state. A reply to an input-required task streams the resumed task from where
    it is (``_subscription``), not from its first event.

    The task is started (or resumed) before this returns, so errors (bad context, unknown task,
    a bad decision) are raised here rather than inside the stream.
    """
    run, created = await db_call(send_sync, target, caller, params)
    if created:
        # A new task's stream starts at its beginning: the task as submitted, then every update
        # (working, the artifacts, the end), however far the run got before the stream is read
        # (on the fast path its engine has claimed it already: it is shown as it was submitted).
        submitted = copy.copy(run)
        submitted.status = RunStatus.QUEUED
        projection = project(submitted, [])
        first = projection.task(
            user_message=user_message(run), history_length=params.history_length, metadata=task_metadata(run)
        )
        return _stream(run, first, after=0, projection=projection)
    return await _subscription(str(run.id), history_length=params.history_length)


async def subscribe(target: Target, caller: Caller, task_id: str) -> AsyncIterator[dict[str, Any]]:
    """SubscribeToTask: the task as it is now, then its updates until a terminal state."""
    run = await db_call(find_run_sync, target, caller, task_id)
    if run.is_terminal:
        raise UnsupportedOperationError(
            f"Task {run.id} is finished ({run.status}); there is nothing to subscribe to. Use GetTask.",
            metadata={"taskId": str(run.id)},
        )
    return await _subscription(str(run.id))


async def _subscription(run_id: str, *, history_length: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """The task as of its latest event, then the translation of every later event."""
    run, last, projection = await db_call(_snapshot_sync, run_id)
    first = projection.task(
        user_message=user_message(run),
        history_length=history_length,
        metadata=task_metadata(run),
        replies=replies_of(run),
    )
    return _stream(run, first, after=last, projection=projection)


def _snapshot_sync(run_id: str) -> tuple[Run, int, TaskProjection]:
    last = next_seq(run_id)
    run = Run.objects.get(id=run_id)
    events = list(RunEvent.objects.filter(run_id=run_id, seq__lte=last).order_by("seq").values_list("data", flat=True))
    return run, last, project(run, events)


async def _stream(
    run: Run, first: dict[str, Any], *, after: int, projection: TaskProjection
) -> AsyncIterator[dict[str, Any]]:
    yield {"task": first}
    if projection.final:
        return
    async for _seq, event in follow(str(run.id), after=after):
        for payload in projection.apply(event):
            yield payload
        if projection.final:
            return


# --- cancelling


def _cancel_sync(target: Target, caller: Caller, task_id: str) -> str:
    run = find_run_sync(target, caller, task_id)
    try:
        cancel_run(run.id)
    except Conflict as exc:
        if exc.code == "not_cancelable":
            run.refresh_from_db(fields=["status"])  # it may have ended since it was read above
            raise TaskNotCancelableError(
                f"Task {run.id} is already {run.status} and cannot be canceled.",
                metadata={"taskId": str(run.id), "runStatus": run.status},
            ) from None
        raise as_a2a_error(exc) from None
    return str(run.id)


async def cancel_task(target: Target, caller: Caller, task_id: str, history_length: int | None = None) -> dict:
    run_id = await db_call(_cancel_sync, target, caller, task_id)
    await wait_for_run(run_id, CANCEL_WAIT_SECONDS)
    return await db_call(load_task_sync, run_id, history_length=history_length)


async def get_task(target: Target, caller: Caller, task_id: str, history_length: int | None) -> dict[str, Any]:
    return await db_call(get_task_sync, target, caller, task_id, history_length)


async def list_tasks(target: Target, caller: Caller, params: ListParams) -> dict[str, Any]:
    return await db_call(list_tasks_sync, target, caller, params)
