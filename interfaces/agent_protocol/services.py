"""The Agent Protocol's assistants, threads and runs, on the run kinds, sessions, the run service,
interrupts and the event log. Every function here runs ORM queries: call it through ``db_call``.

- An assistant is a definition of a run kind (``cosmos.kinds``): ``assistant_id`` is
  ``<kind>:<id>`` (``agent:chat-agent``), or the bare id when one kind alone has it;
  ``graph_id`` is the kind.
- A thread is a ``cosmos.Session``; its metadata is kept beside it (``ThreadMetadata``).
- A run is a ``cosmos.Run`` started through ``cosmos.services.runs.start_run`` (origin
  ``agent_protocol``); the door's own facts about it live in ``metadata["agent_protocol"]``.
- ``multitask_strategy`` sets the session's policy (enqueue, reject, interrupt; rollback is
  interrupt, then the cancelled runs are deleted).
- ``command={"resume": ...}`` answers the interrupts of the thread's waiting run through
  ``cosmos.services.interrupts.resolve``; the run goes on as the same run (same ``run_id``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model

from cosmos.kinds import RunKind, all_kinds, find_kind, resolve_reference
from cosmos.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Interrupt, Run, RunStatus, Session, SessionPolicy
from cosmos.runtime.interrupts import ANSWER, APPROVAL, APPROVE, DECISIONS, EDIT, REJECT
from cosmos.services import interrupts, revisions
from cosmos.services.errors import Conflict, Invalid, NotFound, NotImplementedYet, ServiceError
from cosmos.services.leases import next_seq
from cosmos.services.runs import cancel_run, get_run, request_cancel, start_run
from interfaces.agent_protocol.models import ThreadMetadata
from interfaces.agent_protocol.translate import (
    PROTOCOL_STATUSES,
    STREAM_MODES,
    InvalidMessage,
    from_langchain,
    interrupt_value,
    messages_to_langchain,
    our_statuses,
    protocol_status,
)
from interfaces.edge.auth import may_use, require_use
from interfaces.edge.params import canonical_uuid

ORIGIN = "agent_protocol"
KEY = "agent_protocol"  # the door's key in a run's metadata
MAX_PAGE = 1000
STRATEGIES = ("reject", "interrupt", "rollback", "enqueue")
# Run fields the door takes and ignores: they tune LangGraph's own engine (docs/agent-protocol.md).
IGNORED_RUN_FIELDS = (
    "config",
    "context",
    "stream_subgraphs",
    "stream_resumable",
    "feedback_keys",
    "durability",
    "checkpoint_during",
    "on_disconnect",
    "on_completion",
    "langsmith_tracer",
    "strict_resume",
    "webhook",
)
UNSUPPORTED_RUN_FIELDS = ("interrupt_before", "interrupt_after", "checkpoint", "checkpoint_id", "after_seconds")
KNOWN_RUN_FIELDS = (
    "assistant_id",
    "input",
    "command",
    "metadata",
    "stream_mode",
    "multitask_strategy",
    "if_not_exists",
    *IGNORED_RUN_FIELDS,
    *UNSUPPORTED_RUN_FIELDS,
)


class Unprocessable(ServiceError):
    """A request the protocol's schema refuses (a field of the wrong type or value): 422."""

    status = 422
    code = "invalid_request"


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def as_object(body: Any, what: str = "The body") -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Unprocessable(f"{what} must be a JSON object.")
    return body


def page_of(body: dict, *, default: int = 10) -> tuple[int, int]:
    limit, offset = body.get("limit", default), body.get("offset", 0)
    for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise Unprocessable(f"{name} must be a whole number of at least {low}.")
    return min(limit, MAX_PAGE), offset


def sort_of(body: dict, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    sort_by = body.get("sort_by") or default
    order = body.get("sort_order") or "desc"
    if sort_by not in allowed:
        raise Unprocessable(f"sort_by must be one of {', '.join(allowed)}.")
    if order not in ("asc", "desc"):
        raise Unprocessable("sort_order must be asc or desc.")
    return sort_by, order == "desc"


def _metadata_filter(body: dict) -> dict:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Unprocessable("metadata must be a JSON object.")
    return metadata


def _matches(metadata: dict, wanted: dict) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())


# --- access


def check_assistant_access(principal: Any, kind: RunKind, object_id: str) -> None:
    """A key limited to some resources may run only those (403 otherwise)."""
    require_use(principal, kind.collection, object_id)


# --- assistants


def assistant_id_of(kind: str, object_id: str) -> str:
    return f"{kind}:{object_id}"


def resolve_assistant(assistant_id: Any) -> tuple[RunKind, Model]:
    """The kind and enabled definition an ``assistant_id`` names; NotFound (404) for none."""
    if not isinstance(assistant_id, str) or not assistant_id.strip():
        raise Unprocessable("assistant_id must be a non-empty string, e.g. agent:chat-agent.")
    try:
        kind, object_id = resolve_reference(assistant_id.strip())
    except Invalid as exc:
        if exc.code == "unknown_kind":
            raise NotFound(f"No assistant {assistant_id!r}.") from None
        raise Conflict(exc.message, code=exc.code, details=exc.details) from None
    except NotFound:
        raise NotFound(f"No assistant {assistant_id!r}.") from None
    model = kind.target_model
    row = model._default_manager.filter(pk=object_id).first() if model is not None else None
    if row is None or not getattr(row, "enabled", True):
        raise NotFound(f"No assistant {assistant_id!r}.")
    return kind, row


def latest_version(kind: str, object_id: str) -> int:
    """The assistant's version: its definition's latest revision number (1 for a kind that
    keeps none, or a definition saved before revisions were kept)."""
    if not revisions.keeps_revisions(kind):
        return 1
    return revisions.latest_number(kind, object_id) or 1


def assistant_json(kind: RunKind, row: Model) -> dict:
    pk = str(row.pk)
    return {
        "assistant_id": assistant_id_of(kind.name, pk),
        "graph_id": kind.name,
        "name": getattr(row, "name", "") or pk,
        "description": getattr(row, "description", "") or None,
        "config": {},
        "context": {},
        "metadata": {"kind": kind.name, "id": pk, "collection": kind.collection},
        "version": latest_version(kind.name, pk),
        "created_at": iso(getattr(row, "created_at", None)),
        "updated_at": iso(getattr(row, "updated_at", None)),
    }


def get_assistant(assistant_id: Any, principal: Any) -> dict:
    kind, row = resolve_assistant(assistant_id)
    check_assistant_access(principal, kind, str(row.pk))
    return assistant_json(kind, row)


def _assistants(body: dict, principal: Any) -> list[dict]:
    graph_id = body.get("graph_id")
    if graph_id is not None and not isinstance(graph_id, str):
        raise Unprocessable("graph_id must be a string (a run kind: agent, star, workflow).")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise Unprocessable("name must be a string.")
    wanted = _metadata_filter(body)
    found = []
    for kind in all_kinds():
        if kind.target_model is None or (graph_id and graph_id != kind.name):
            continue
        for row in kind.target_model._default_manager.filter(enabled=True).order_by("pk")[:MAX_PAGE]:
            if not may_use(principal, kind.collection, str(row.pk)):
                continue
            shown = assistant_json(kind, row)
            if name and name.lower() not in shown["name"].lower():
                continue
            if _matches(shown["metadata"], wanted):
                found.append(shown)
    return found


def search_assistants(body: Any, principal: Any) -> list[dict]:
    body = as_object(body)
    limit, offset = page_of(body)
    sort_by, reverse = sort_of(body, ("assistant_id", "graph_id", "name", "created_at", "updated_at"), "created_at")
    found = sorted(_assistants(body, principal), key=lambda a: str(a.get(sort_by) or ""), reverse=reverse)
    return found[offset : offset + limit]


def count_assistants(body: Any, principal: Any) -> int:
    return len(_assistants(as_object(body), principal))


def assistant_graph(assistant_id: Any, principal: Any) -> dict:
    """A minimal graph: start, the kind's one node, end."""
    kind = get_assistant(assistant_id, principal)["graph_id"]
    return {
        "nodes": [
            {"id": "__start__", "type": "schema", "data": "__start__"},
            {"id": kind, "type": "runnable", "data": {"id": ["asteros", kind], "name": kind}},
            {"id": "__end__", "type": "schema", "data": "__end__"},
        ],
        "edges": [{"source": "__start__", "target": kind}, {"source": kind, "target": "__end__"}],
    }


MESSAGES_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
    "required": ["messages"],
}


def assistant_schemas(assistant_id: Any, principal: Any) -> dict:
    shown = get_assistant(assistant_id, principal)
    return {
        "graph_id": shown["graph_id"],
        "input_schema": MESSAGES_SCHEMA,
        "output_schema": MESSAGES_SCHEMA,
        "state_schema": MESSAGES_SCHEMA,
        "config_schema": {"type": "object", "properties": {}},
        "context_schema": {"type": "object", "properties": {}},
    }


def assistant_versions(assistant_id: Any, body: Any, principal: Any) -> list[dict]:
    """The assistant's versions, newest first: one per revision of its definition (with the
    name and description that revision had); the current one alone for a kind keeping none."""
    kind, row = resolve_assistant(assistant_id)
    check_assistant_access(principal, kind, str(row.pk))
    body = as_object(body)
    limit, offset = page_of(body)
    current = assistant_json(kind, row)
    if not revisions.keeps_revisions(kind.name):
        return [current][offset : offset + limit]
    shown = []
    for revision in revisions.list_revisions(kind.name, str(row.pk))[offset : offset + limit]:
        definition = revision.definition or {}
        shown.append(
            {
                **current,
                "version": revision.number,
                "name": definition.get("name") or current["name"],
                "description": definition.get("description") or current["description"],
                "metadata": {**current["metadata"], "author": revision.author, "note": revision.note},
                "created_at": iso(revision.created_at),
            }
        )
    return shown or [current][offset : offset + limit]


def set_latest_version(assistant_id: Any, body: Any, *, caller: str, principal: Any) -> dict:
    """``POST /assistants/{id}/latest``: restore revision ``version`` as the current definition
    (a new revision records it)."""
    kind, row = resolve_assistant(assistant_id)
    check_assistant_access(principal, kind, str(row.pk))
    body = as_object(body)
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise Unprocessable("version must be a whole number from 1.")
    if not revisions.keeps_revisions(kind.name):
        raise NotImplementedYet(f"{kind.label} keep no revisions; there is no version to restore.")
    revisions.restore(kind.name, str(row.pk), version, author=caller)
    row.refresh_from_db()
    return assistant_json(kind, row)


# --- threads


def session_of(thread_id: Any) -> Session:
    if not isinstance(thread_id, str) or not 0 < len(thread_id) <= 128:
        raise NotFound(f"No thread {thread_id!r}.")
    session = Session.objects.filter(id=thread_id).first()
    if session is None:
        raise NotFound(f"No thread {thread_id!r}.")
    return session


def _thread_metadata(session: Session) -> dict:
    row = ThreadMetadata.objects.filter(session_id=session.id).values_list("metadata", flat=True).first()
    return row or {}


def thread_status(session_id: str) -> str:
    """idle, busy (a run queued or running), interrupted (a run waits for people) or error
    (the last run failed)."""
    runs = Run.objects.filter(session_id=session_id, parent__isnull=True)
    if runs.filter(status=RunStatus.INTERRUPTED).exists():
        return "interrupted"
    if runs.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).exists():
        return "busy"
    last = runs.order_by("-created_at").values_list("status", flat=True).first()
    return "error" if last == RunStatus.FAILED else "idle"


def thread_values(session: Session) -> dict:
    """The thread's messages: the session's conversation (agents keep it); for a thread whose
    runs keep none (stars, workflows), each finished run's input and reply, oldest first."""
    if session.messages:
        return {"messages": messages_to_langchain(session.messages, session.id)}
    runs = Run.objects.filter(session_id=session.id, parent__isnull=True, status=RunStatus.SUCCEEDED)
    messages: list[dict] = []
    for run in runs.order_by("created_at")[:MAX_PAGE]:
        messages += _run_messages(run)
    return {"messages": messages}


def _pending_of_thread(session_id: str) -> tuple[Run | None, list[Interrupt]]:
    run = (
        Run.objects.filter(session_id=session_id, parent__isnull=True, status=RunStatus.INTERRUPTED)
        .order_by("-created_at")
        .first()
    )
    return run, (interrupts.pending_interrupts(run.id) if run is not None else [])


def thread_json(session: Session, *, metadata: dict | None = None) -> dict:
    status = thread_status(session.id)
    run, pending = _pending_of_thread(session.id) if status == "interrupted" else (None, [])
    shown = [interrupt_value(interrupts.describe(i)) for i in pending]
    return {
        "thread_id": session.id,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "state_updated_at": iso(session.updated_at),
        "metadata": _thread_metadata(session) if metadata is None else metadata,
        "status": status,
        "values": thread_values(session),
        "interrupts": {str(run.id): shown} if run is not None and shown else {},
        "config": {},
    }


def create_thread(body: Any) -> dict:
    body = as_object(body)
    thread_id = body.get("thread_id") or str(uuid.uuid4())
    if not isinstance(thread_id, str) or not 0 < len(thread_id) <= 128:
        raise Unprocessable("thread_id must be a string of 1 to 128 characters.")
    metadata = _metadata_filter(body)
    if_exists = body.get("if_exists") or "raise"
    if if_exists not in ("raise", "do_nothing"):
        raise Unprocessable("if_exists must be raise or do_nothing.")
    if body.get("supersteps"):
        raise NotImplementedYet("Creating a thread with supersteps is not supported by this server.")
    with transaction.atomic():
        session, created = Session.objects.get_or_create(id=thread_id)
        if not created:
            if if_exists == "raise":
                raise Conflict(f"Thread {thread_id!r} already exists.", code="already_exists")
            return thread_json(session)
        ThreadMetadata.objects.create(session=session, metadata=metadata)
    return thread_json(session, metadata=metadata)


def get_thread(thread_id: Any) -> dict:
    return thread_json(session_of(thread_id))


def update_thread(thread_id: Any, body: Any) -> dict:
    body = as_object(body)
    session = session_of(thread_id)
    metadata = _metadata_filter(body)
    with transaction.atomic():
        row, _ = ThreadMetadata.objects.select_for_update().get_or_create(session=session)
        row.metadata = {**(row.metadata or {}), **metadata}
        row.save(update_fields=["metadata", "updated_at"])
    Session.objects.filter(id=session.id).update(updated_at=row.updated_at)
    session.refresh_from_db()
    return thread_json(session, metadata=row.metadata)


def delete_thread(thread_id: Any) -> None:
    """Cancel the thread's active runs and delete it; its runs stay, with no session."""
    session = session_of(thread_id)
    for run_id in Run.objects.filter(session=session, status__in=ACTIVE_STATUSES).values_list("id", flat=True):
        request_cancel(run_id, cascade=True)
    session.delete()


def copy_thread(thread_id: Any) -> dict:
    """A new thread with the same messages, state, policy and metadata (no runs)."""
    session = session_of(thread_id)
    metadata = _thread_metadata(session)
    with transaction.atomic():
        copy = Session.objects.create(
            id=str(uuid.uuid4()),
            kind=session.kind,
            target=session.target,
            messages=session.messages,
            state=session.state,
            policy=session.policy,
        )
        ThreadMetadata.objects.create(session=copy, metadata=metadata)
    return thread_json(copy, metadata=metadata)


THREAD_STATUSES = ("idle", "busy", "interrupted", "error")


def _threads(body: dict) -> list[Session]:
    wanted = _metadata_filter(body)
    status = body.get("status")
    if status is not None and status not in THREAD_STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(THREAD_STATUSES)}.")
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise Unprocessable("ids must be a list of thread ids.")
    values = body.get("values")
    if values not in (None, {}):
        raise NotImplementedYet("Searching threads by values is not supported by this server.")
    sessions = Session.objects.order_by("-updated_at")
    if ids is not None:
        sessions = sessions.filter(id__in=ids)
    metadata = dict(ThreadMetadata.objects.values_list("session_id", "metadata"))
    found = []
    for session in sessions[:10_000]:
        if wanted and not _matches(metadata.get(session.id) or {}, wanted):
            continue
        if status and thread_status(session.id) != status:
            continue
        found.append(session)
    return found


def search_threads(body: Any) -> list[dict]:
    body = as_object(body)
    limit, offset = page_of(body)
    sort_by, reverse = sort_of(body, ("thread_id", "status", "created_at", "updated_at"), "updated_at")
    found = _threads(body)
    if sort_by == "status":
        found.sort(key=lambda session: thread_status(session.id), reverse=reverse)
    else:
        field = "id" if sort_by == "thread_id" else sort_by
        found.sort(key=lambda session: getattr(session, field), reverse=reverse)
    return [thread_json(session) for session in found[offset : offset + limit]]


def count_threads(body: Any) -> int:
    return len(_threads(as_object(body)))


def _checkpoint(thread_id: str, checkpoint_id: str | None) -> dict:
    return {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id, "checkpoint_map": None}


def _finished_runs(session_id: str):
    return Run.objects.filter(
        session_id=session_id, parent__isnull=True, status__in=(*TERMINAL_STATUSES, RunStatus.INTERRUPTED)
    ).order_by("-created_at")


def thread_state(thread_id: Any) -> dict:
    session = session_of(thread_id)
    run, pending = _pending_of_thread(session.id)
    shown = [interrupt_value(interrupts.describe(i)) for i in pending]
    runs = list(_finished_runs(session.id).values_list("id", flat=True)[:2])
    tasks = []
    if run is not None:
        tasks.append(
            {
                "id": str(run.id),
                "name": run.kind,
                "path": [run.kind],
                "error": None,
                "interrupts": shown,
                "checkpoint": None,
                "state": None,
                "result": None,
            }
        )
    checkpoint_id = str(runs[0]) if runs else None
    return {
        "values": thread_values(session),
        "next": [run.kind] if run is not None else [],
        "tasks": tasks,
        "interrupts": shown,
        "metadata": {"source": "loop", "step": len(runs), "run_id": checkpoint_id},
        "created_at": iso(session.updated_at),
        "checkpoint": _checkpoint(session.id, checkpoint_id),
        "parent_checkpoint": _checkpoint(session.id, str(runs[1])) if len(runs) > 1 else None,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": str(runs[1]) if len(runs) > 1 else None,
    }


def _run_messages(run: Run) -> list[dict]:
    """A run's own messages: its input, and its reply."""
    out: list[dict] = []
    run_input = run.input or {}
    if isinstance(run_input.get("message"), str):
        out.append({"role": "user", "content": run_input["message"]})
    elif isinstance(run_input.get("messages"), list) and run_input["messages"]:
        out.append(run_input["messages"][-1])
    if run.output not in (None, ""):
        reply = run.output if isinstance(run.output, str) else json.dumps(run.output, ensure_ascii=False)
        out.append({"role": "assistant", "content": reply})
    return messages_to_langchain(out, str(run.id))


def thread_history(thread_id: Any, body: Any) -> list[dict]:
    """One checkpoint per finished run of the thread, newest first. The newest holds the
    thread's values; each older one holds its own run's messages (its input and its reply)."""
    session = session_of(thread_id)
    body = as_object(body)
    limit, _ = page_of(body, default=10)
    if body.get("before") or body.get("checkpoint"):
        raise NotImplementedYet("Reading history before a checkpoint is not supported by this server.")
    runs = list(_finished_runs(session.id)[: limit + 1])
    states = []
    for index, run in enumerate(runs[:limit]):
        parent = str(runs[index + 1].id) if index + 1 < len(runs) else None
        values = thread_values(session) if index == 0 else {"messages": _run_messages(run)}
        states.append(
            {
                "values": values,
                "next": [run.kind] if run.status == RunStatus.INTERRUPTED else [],
                "tasks": [],
                "interrupts": [],
                "metadata": {"source": "loop", "run_id": str(run.id), "status": protocol_status(run.status, run.error)},
                "created_at": iso(run.finished_at or run.updated_at),
                "checkpoint": _checkpoint(session.id, str(run.id)),
                "parent_checkpoint": _checkpoint(session.id, parent) if parent else None,
                "checkpoint_id": str(run.id),
                "parent_checkpoint_id": parent,
            }
        )
    return states


def update_thread_state(thread_id: Any, body: Any) -> dict:
    """Add messages to the thread (``values.messages``), as LangGraph's messages reducer appends."""
    session = session_of(thread_id)
    body = as_object(body)
    if body.get("checkpoint") or body.get("checkpoint_id"):
        raise NotImplementedYet("Updating the state at a checkpoint is not supported by this server.")
    values = body.get("values")
    if isinstance(values, list):
        values = values[0] if len(values) == 1 else None
    if not isinstance(values, dict) or set(values) - {"messages"}:
        raise Unprocessable('values must be an object with "messages" (the only state key of this server).')
    messages = values.get("messages") or []
    if not isinstance(messages, list):
        messages = [messages]
    added = _internal_messages(messages)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(id=session.id)
        if Run.objects.filter(session=locked, status__in=ACTIVE_STATUSES).exists():
            raise Conflict("The thread has an active run; update its state once the run is over.", code="thread_busy")
        locked.messages = [*(locked.messages or []), *added]
        locked.save(update_fields=["messages", "updated_at"])
    return {"checkpoint": _checkpoint(session.id, None)}


# --- runs


def _internal_messages(messages: list) -> list[dict]:
    try:
        return [from_langchain(m) for m in messages]
    except InvalidMessage as exc:
        raise Unprocessable(str(exc)) from None


def parse_modes(raw: Any) -> tuple[str, ...]:
    """``stream_mode``: one mode or a list; ``values`` when absent."""
    if raw is None:
        return ("values",)
    modes = [raw] if isinstance(raw, str) else raw
    if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
        raise Unprocessable("stream_mode must be a stream mode or a list of them.")
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise Unprocessable(
            f"Unknown stream_mode {unknown[0]!r}; use {', '.join(STREAM_MODES)}.",
            details={"allowed": list(STREAM_MODES)},
        )
    return tuple(dict.fromkeys(modes))


@dataclass
class Started:
    """A run the door started (or resumed), and what its stream needs."""

    run_id: str
    thread_id: str | None
    kind: str
    modes: tuple[str, ...]
    before: list[dict] = field(default_factory=list)  # the values' messages when the stream opens
    after: int = 0  # a resume: the stored run's events up to this seq are the run it continues


def run_input_of(value: Any, history: list) -> Any:
    """The protocol's ``input`` as the run service's: ``{"message"}`` when it is one user turn
    (the session adds its history), else the whole conversation as ``{"messages"}``."""
    if value is None:
        raise Unprocessable("input is required (or command, to resume).")
    if isinstance(value, str):
        return {"message": value}
    if not isinstance(value, dict):
        raise Unprocessable('input must be an object, e.g. {"messages": [{"role": "user", "content": "hi"}]}.')
    if "messages" not in value:
        return {"message": value}
    messages = value["messages"]
    if not isinstance(messages, list):
        messages = [messages]
    added = _internal_messages(messages)
    if not added:
        raise Unprocessable("input.messages must hold at least one message.")
    if len(added) == 1 and added[0]["role"] == "user" and added[0]["content"].strip():
        return {"message": added[0]["content"]}
    return {"messages": [*history, *added]}


def _check_fields(body: dict) -> None:
    for name in UNSUPPORTED_RUN_FIELDS:
        if body.get(name) not in (None, [], ""):
            raise NotImplementedYet(f"{name} is not supported by this server (docs/agent-protocol.md).")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise Unprocessable("metadata must be a JSON object.")


def _strategy(body: dict) -> str | None:
    strategy = body.get("multitask_strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise Unprocessable(f"multitask_strategy must be one of {', '.join(STRATEGIES)}.")
    return strategy


def _thread_for_run(thread_id: str, body: dict) -> Session:
    if_not_exists = body.get("if_not_exists") or "reject"
    if if_not_exists not in ("reject", "create"):
        raise Unprocessable("if_not_exists must be reject or create.")
    if not 0 < len(thread_id) <= 128:
        raise NotFound(f"No thread {thread_id!r}.")
    session = Session.objects.filter(id=thread_id).first()
    if session is not None:
        return session
    if if_not_exists == "reject":
        raise NotFound(f"No thread {thread_id!r}; create it first, or send if_not_exists=create.")
    with transaction.atomic():
        session, created = Session.objects.get_or_create(id=thread_id)
        if created:
            ThreadMetadata.objects.create(session=session)
    return session


def _apply_strategy(session: Session, strategy: str | None) -> list[str]:
    """Set the session's policy from the run's strategy; rollback: the runs it cancels."""
    if strategy is None:
        return []
    policy = {
        "reject": SessionPolicy.REJECT,
        "interrupt": SessionPolicy.INTERRUPT,
        "rollback": SessionPolicy.INTERRUPT,
        "enqueue": SessionPolicy.ENQUEUE,
    }[strategy]
    if session.policy != policy:
        Session.objects.filter(id=session.id).update(policy=policy)
    if strategy != "rollback":
        return []
    return [
        str(i)
        for i in Run.objects.filter(session=session, parent__isnull=True, status__in=ACTIVE_STATUSES).values_list(
            "id", flat=True
        )
    ]


def create_run(thread_id: str | None, body: Any, *, caller: str, principal: Any) -> Started:
    """Start a run of an assistant, on a thread or stateless (no session); or, with
    ``command.resume``, resume the thread's waiting run."""
    body = as_object(body)
    _check_fields(body)
    modes = parse_modes(body.get("stream_mode"))
    strategy = _strategy(body)
    command = body.get("command")
    kind, row = resolve_assistant(body.get("assistant_id"))
    check_assistant_access(principal, kind, str(row.pk))
    if command is not None:
        return _resume(thread_id, kind, str(row.pk), command, modes, caller=caller)
    session = _thread_for_run(thread_id, body) if thread_id is not None else None
    history = list(session.messages or []) if session is not None else []
    raw_input = run_input_of(body.get("input"), history)
    rollback = _apply_strategy(session, strategy) if session is not None else []
    door = {
        "assistant_id": assistant_id_of(kind.name, str(row.pk)),
        "stream_mode": list(modes),
        "metadata": body.get("metadata") or {},
        "multitask_strategy": strategy or (session.policy if session is not None else None),
    }
    run, _ = start_run(
        kind.name,
        str(row.pk),
        raw_input,
        session_id=session.id if session is not None else None,
        origin=ORIGIN,
        caller=caller,
        metadata={KEY: door},
    )
    if rollback:
        Run.objects.filter(id__in=rollback, status__in=TERMINAL_STATUSES).delete()
    new = (
        [{"role": "user", "content": raw_input["message"]}]
        if "message" in raw_input
        else raw_input["messages"][len(history) :]
    )
    before = messages_to_langchain([*history, *new], session.id if session is not None else str(run.id))
    return Started(str(run.id), session.id if session is not None else None, kind.name, modes, before)


def _decision(interrupt: Interrupt, value: Any) -> tuple[str, dict]:
    """A resume value as a decision and ``resolve``'s options.

    An approval takes ``true``/``false``, ``"approve"``/``"reject"``, ``{"decision": ...,
    "arguments"?, "message"?}`` or LangGraph's ``{"type": "accept" | "ignore" | "edit" |
    "response", "args"?}``; a question takes ``{"answer": ...}`` or the answer itself."""
    if isinstance(value, dict) and "type" in value and "decision" not in value:
        kind = value.get("type")
        args = value.get("args")
        if kind == "accept":
            value = {"decision": APPROVE}
        elif kind == "ignore":
            value = {"decision": REJECT}
        elif kind == "edit":
            arguments = args.get("args") if isinstance(args, dict) and isinstance(args.get("args"), dict) else args
            value = {"decision": EDIT, "arguments": arguments}
        elif kind == "response":
            value = {"decision": REJECT, "message": args if isinstance(args, str) else ""}
    message = value.get("message") if isinstance(value, dict) else None
    options: dict[str, Any] = {"message": message if isinstance(message, str) else ""}
    if isinstance(value, dict) and "decision" in value:
        decision = value["decision"]
        if not isinstance(decision, str):
            raise Unprocessable("decision must be text.")
        return decision, {**options, "arguments": value.get("arguments"), "answer": value.get("answer")}
    if interrupt.kind == APPROVAL:
        if isinstance(value, bool):
            return (APPROVE if value else REJECT), options
        if isinstance(value, str) and value in DECISIONS[APPROVAL]:
            return value, options
        raise Unprocessable(
            'An approval is resumed with true/false, "approve"/"reject" or {"decision": "approve|reject|edit"}.',
            details={"interrupt_id": str(interrupt.id)},
        )
    if value is None:
        raise Unprocessable('A question is resumed with its answer, or {"answer": ...}.')
    answer = value["answer"] if isinstance(value, dict) and "answer" in value else value
    return ANSWER, {**options, "answer": answer}


def _resume(
    thread_id: str | None, kind: RunKind, target: str, command: Any, modes: tuple[str, ...], *, caller: str
) -> Started:
    if not isinstance(command, dict):
        raise Unprocessable('command must be an object, e.g. {"resume": true}.')
    if command.get("goto") or command.get("update"):
        raise NotImplementedYet("command.goto and command.update are not supported by this server; use resume.")
    if "resume" not in command:
        raise Unprocessable("command needs resume.")
    if thread_id is None:
        raise Unprocessable("Resuming needs a thread: the run that waits belongs to it.")
    session = session_of(thread_id)
    run, pending = _pending_of_thread(session.id)
    if run is None or not pending:
        raise Conflict(f"Thread {thread_id!r} has no run waiting for an answer.", code="not_interrupted")
    if (run.kind, run.target) != (kind.name, target):
        raise Conflict(
            "The waiting run is another assistant's; resume it with its assistant_id.", code="wrong_assistant"
        )
    resume = command["resume"]
    ids = {str(i.id) for i in pending}
    if isinstance(resume, dict) and resume and set(resume) <= ids:
        answers = {str(i.id): resume.get(str(i.id)) for i in pending}
        missing = sorted(ids - set(resume))
        if missing:
            raise Unprocessable("resume must answer every interrupt the run waits for.", details={"missing": missing})
    else:
        answers = {str(i.id): resume for i in pending}
    decisions = []
    for interrupt in pending:
        decision, options = _decision(interrupt, answers[str(interrupt.id)])
        interrupts.check_decision(interrupt, decision, **options)
        decisions.append((interrupt, decision, options))
    paused_at = next_seq(str(run.id))
    for interrupt, decision, options in decisions:
        interrupts.resolve(interrupt.id, decision, resolved_by=caller, run_id=run.id, **options)
    before = messages_to_langchain(session.messages or [], session.id)
    return Started(str(run.id), session.id, run.kind, modes, before, after=paused_at)


def run_json(run: Run) -> dict:
    door = (run.metadata or {}).get(KEY) or {}
    return {
        "run_id": str(run.id),
        "thread_id": run.session_id,
        "assistant_id": door.get("assistant_id") or assistant_id_of(run.kind, run.target),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "status": protocol_status(run.status, run.error),
        "metadata": door.get("metadata") or {},
        "multitask_strategy": door.get("multitask_strategy") or "enqueue",
        "kwargs": {
            "input": run.input,
            "stream_mode": door.get("stream_mode") or ["values"],
            "assistant_version": run.revision,
        },
    }


def get_started_run(run_id: str) -> dict:
    return run_json(get_run(run_id))


def thread_run(thread_id: Any, run_id: Any) -> Run:
    """The run, if it is a top-level run of this thread (404 otherwise)."""
    session = session_of(thread_id)
    run = get_run(run_id)
    if run.session_id != session.id or run.parent_id is not None:
        raise NotFound(f"Thread {thread_id!r} has no run {run_id!r}.")
    return run


def stateless_run(run_id: Any) -> Run:
    run = get_run(run_id)
    if run.parent_id is not None or run.origin != ORIGIN:
        raise NotFound(f"No run {run_id!r}.")
    return run


def get_thread_run(thread_id: Any, run_id: Any) -> dict:
    return run_json(thread_run(thread_id, run_id))


def list_thread_runs(thread_id: Any, params: dict) -> list[dict]:
    session = session_of(thread_id)
    try:
        limit = int(params.get("limit", 10))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise Unprocessable("limit and offset must be whole numbers.") from None
    if limit < 1 or offset < 0:
        raise Unprocessable("limit must be at least 1 and offset at least 0.")
    runs = Run.objects.filter(session=session, parent__isnull=True).order_by("-created_at")
    status = params.get("status")
    if status:
        if status not in PROTOCOL_STATUSES:
            raise Unprocessable(f"status must be one of {', '.join(PROTOCOL_STATUSES)}.")
        runs = runs.filter(status__in=our_statuses(status))
    return [run_json(r) for r in runs[offset : offset + min(limit, MAX_PAGE)]]


def join_info(thread_id: Any, run_id: Any, modes: Any = None) -> Started:
    """What a reader joining a thread's run needs: its stream modes (the ones it was started
    with unless the reader names others) and the values its stream opens with."""
    run = thread_run(thread_id, run_id)
    door = (run.metadata or {}).get(KEY) or {}
    chosen = parse_modes(modes) if modes else tuple(door.get("stream_mode") or ("values",))
    session = Session.objects.filter(id=run.session_id).first()
    before = messages_to_langchain(session.messages or [], session.id) if session is not None else []
    return Started(str(run.id), run.session_id, run.kind, chosen, before)


def cancel_thread_run(thread_id: Any, run_id: Any, action: str) -> str:
    if action not in ("interrupt", "rollback"):
        raise Unprocessable("action must be interrupt or rollback.")
    run = thread_run(thread_id, run_id)
    cancel_run(run.id)
    return str(run.id)


def delete_ended_run(run_id: str) -> None:
    Run.objects.filter(id=run_id, status__in=TERMINAL_STATUSES).delete()


def delete_thread_run(thread_id: Any, run_id: Any) -> None:
    run = thread_run(thread_id, run_id)
    if run.status not in TERMINAL_STATUSES:
        raise Conflict(f"Run {run.id} is {protocol_status(run.status)}; cancel it first.", code="run_active")
    run.delete()


def cancel_runs(body: Any, action: str) -> int:
    """``POST /runs/cancel``: the runs named (``thread_id`` and ``run_ids``), the runs of a
    thread, or every run of this door with ``status`` (pending, running or all)."""
    body = as_object(body)
    if action not in ("interrupt", "rollback"):
        raise Unprocessable("action must be interrupt or rollback.")
    thread_id, run_ids, status = body.get("thread_id"), body.get("run_ids"), body.get("status")
    if run_ids is not None and (not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids)):
        raise Unprocessable("run_ids must be a list of run ids.")
    if thread_id is not None:
        session = session_of(thread_id)
        runs = Run.objects.filter(session=session, parent__isnull=True)
        if run_ids is not None:
            runs = runs.filter(id__in=[r for r in run_ids if canonical_uuid(r)])
    elif status is not None:
        if status not in ("pending", "running", "all"):
            raise Unprocessable("status must be pending, running or all.")
        runs = Run.objects.filter(origin=ORIGIN, parent__isnull=True)
        if status != "all":
            runs = runs.filter(status__in=our_statuses(status))
    else:
        raise Unprocessable("Name the runs: thread_id (and run_ids), or status.")
    ids = list(runs.filter(status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    for run_id in ids:
        request_cancel(run_id, cascade=True)
    return len(ids)


def thread_messages(thread_id: str | None) -> list[dict] | None:
    """The thread's messages as saved (after a run ended); None for a stateless run."""
    if thread_id is None:
        return None
    session = Session.objects.filter(id=thread_id).first()
    return thread_values(session)["messages"] if session is not None else None


def not_implemented(what: str) -> None:
    raise NotImplementedYet(f"{what} is not supported by this server (docs/agent-protocol.md lists what is).")


def kind_exists(name: str) -> bool:
    return find_kind(name) is not None
