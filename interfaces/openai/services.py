"""The OpenAI-compatible door's services: the models a key may see, starting a run from a
Chat Completions or Responses request, and reading a run as their replies. Everything starts
through ``cosmos.services.runs.start_run`` and reads ``cosmos.eventlog.follow``: no second
pipeline.

- A model is a definition of a run kind in the catalogue (``cosmos.kinds``): ``kind:id``
  (``agent:chat-agent``), or the bare id when exactly one kind has a definition with that id.
- A session (``user``, or the ``X-Session-Id`` header) is the run's ``Session``: its policy
  orders the runs, and an agent's run saves the conversation in it. The request's messages are
  the conversation the model sees, as in OpenAI's API (the session's saved history is not added).
- A response id is ``resp_<run id as hex>``; ``previous_response_id`` continues that run's
  session: its saved conversation comes first, then the new input.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.kinds import RunKind, all_kinds, find_kind
from cosmos.models import ACTIVE_STATUSES, Run, RunStatus, Session
from cosmos.services import costs
from cosmos.services.errors import Conflict, NotFound
from cosmos.services.interrupts import is_pause_event
from cosmos.services.runs import cancel_run, start_run
from interfaces.edge.auth import may_use, principal_sees_everything, require_use
from interfaces.openai.translate import InvalidBody, Reading, ResponsesTranslator, last_user_text

ORIGIN = "openai"
MAX_MODELS = 1_000


class ModelNotFound(NotFound):
    code = "model_not_found"


@dataclass(frozen=True)
class Model:
    kind: RunKind
    id: str
    created: int

    @property
    def name(self) -> str:
        return f"{self.kind.name}:{self.id}"


def _created(kind: RunKind) -> str:
    """The column a model's ``created`` comes from: ``created_at`` where the definition has one."""
    names = {f.name for f in kind.target_model._meta.get_fields()}  # type: ignore[union-attr]
    return "created_at" if "created_at" in names else "pk"


def _seconds(value: Any) -> int:
    return int(value.timestamp()) if hasattr(value, "timestamp") else 0


def _may_see(principal: Any, kind: RunKind, object_id: str) -> bool:
    return may_use(principal, kind.collection, object_id)


def list_models(principal: Any) -> list[dict]:
    """Every enabled definition of every kind the caller may see, as OpenAI model objects."""
    found: list[Model] = []
    for kind in all_kinds():
        if kind.target_model is None:
            continue
        rows = kind.target_model._default_manager.filter(enabled=True).order_by("pk")
        for pk, created in rows.values_list("pk", _created(kind))[:MAX_MODELS]:
            if _may_see(principal, kind, pk):
                found.append(Model(kind, pk, _seconds(created)))
    counts: dict[str, int] = {}
    for model in found:
        counts[model.id] = counts.get(model.id, 0) + 1
    out = []
    for model in found:
        out.append(model_object(model.name, model))
        if counts[model.id] == 1:
            out.append(model_object(model.id, model))
    return out


def model_object(name: str, model: Model) -> dict:
    return {
        "id": name,
        "object": "model",
        "created": model.created,
        "owned_by": "asteros",
        "asteros": {"kind": model.kind.name, "id": model.id},
    }


def find_model(name: str, principal: Any) -> Model:
    """The definition behind a model id; ``ModelNotFound`` (404) for none the caller may see."""
    missing = ModelNotFound(f"The model {name!r} does not exist (GET /v1/models lists them).")
    prefix, colon, object_id = name.partition(":")
    candidates = [find_kind(prefix)] if colon else list(all_kinds())
    if not colon:
        object_id = name
    matches = []
    for kind in candidates:
        if kind is None or kind.target_model is None or not object_id:
            continue
        rows = kind.target_model._default_manager.filter(pk=object_id, enabled=True)
        row = rows.values_list("pk", _created(kind)).first()
        if row is not None and _may_see(principal, kind, object_id):
            matches.append(Model(kind, object_id, _seconds(row[1])))
    if not matches:
        raise missing
    if len(matches) > 1:
        choices = ", ".join(m.name for m in matches)
        raise InvalidBody(
            f"{name!r} names more than one definition; use one of: {choices}.", "model", "ambiguous_model"
        )
    return matches[0]


def model_object_for(name: str, principal: Any) -> dict:
    return model_object(name, find_model(name, principal))


def may_run(principal: Any, model: Model) -> None:
    """A key limited to some resources runs only those (403, as on every door)."""
    require_use(principal, model.kind.collection, model.id, what=model.name)


def session_name(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 128 or not value.isprintable():
        raise InvalidBody("A session name is a printable string of at most 128 characters.", param)
    return value


def run_input(model: Model, messages: list[dict], tools: list[dict]) -> dict:
    """An agent takes the whole conversation and the client's tools; a star or a workflow the
    last user message."""
    if model.kind.name == "agent":
        return {"messages": messages, "tools": tools}
    return {"message": last_user_text(messages)}


def start(
    model: Model,
    messages: list[dict],
    tools: list[dict],
    *,
    caller: str,
    session_id: str | None,
    api: str,
    metadata: dict | None = None,
) -> Run:
    run, _ = start_run(
        model.kind.name,
        model.id,
        run_input(model, messages, tools),
        session_id=session_id,
        origin=ORIGIN,
        caller=caller,
        metadata={"openai": {"api": api, "model": model_label(model), **(metadata or {})}},
    )
    return run


def model_label(model: Model) -> str:
    return model.name


# --- reading a run


def usage_of(run_id: str) -> dict | None:
    """Prompt (uncached and cached parts), completion and cached tokens of the run and its
    children; None when no model call reported any."""
    run = Run.objects.filter(id=run_id).first()
    if run is None:
        return None
    totals = costs.tree_usage([run])[str(run.pk)]
    prompt = totals["input_tokens"] + totals["cache_read_tokens"] + totals["cache_write_tokens"]
    return {"prompt": prompt, "completion": totals["output_tokens"], "cached": totals["cache_read_tokens"]}


def run_row(run_id: str) -> Run:
    return Run.objects.get(id=run_id)


def output_text(run: Run) -> str:
    output = run.output
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return json.dumps(output, ensure_ascii=False)


async def run_events(run_id: str, after: int = 0) -> AsyncIterator[tuple[int, dict]]:
    """The run's events after ``after``, live, until it ends or pauses for people."""
    events = follow(run_id, after=after)
    try:
        async for seq, event in events:
            yield seq, event
            if is_pause_event(event):
                break
    finally:
        await events.aclose()


def client_names(run: Run) -> frozenset[str]:
    tools = (run.input or {}).get("tools") or []
    return frozenset(t.get("name") for t in tools if isinstance(t, dict) and t.get("name"))


# --- responses


def response_id(run_id: Any) -> str:
    return f"resp_{uuid.UUID(str(run_id)).hex}"


def run_id_of(response: str) -> str:
    try:
        if not response.startswith("resp_"):
            raise ValueError
        return str(uuid.UUID(hex=response[5:]))
    except ValueError:
        raise NotFound(f"No response with id {response!r}.", code="response_not_found") from None


def find_response(response: str, principal: Any, caller: str) -> Run:
    """The run behind a response id, if this caller started it (a key with the ``admin`` scope
    and no resource limit may read any); 404 otherwise, which tells nothing of other callers'
    responses."""
    run = Run.objects.filter(id=run_id_of(response), origin=ORIGIN, parent__isnull=True).first()
    if run is None or ((run.metadata or {}).get("openai") or {}).get("api") != "responses":
        raise NotFound(f"No response with id {response!r}.", code="response_not_found")
    if settings.ASTEROS.enable_auth and run.caller != caller and not principal_sees_everything(principal, "admin"):
        raise NotFound(f"No response with id {response!r}.", code="response_not_found")
    return run


def continue_from(previous: Run) -> tuple[str, list[dict]]:
    """The session of the previous response and the conversation saved in it."""
    if previous.status in ACTIVE_STATUSES and previous.status != RunStatus.INTERRUPTED:
        raise Conflict(
            f"Response {response_id(previous.id)} is still {previous.status}; continue from it once it is done.",
            code="previous_response_in_progress",
        )
    if previous.status == RunStatus.INTERRUPTED:
        raise Conflict("The previous response waits for people; answer it first.", code="previous_response_paused")
    session_id = previous.session_id or f"resp_{uuid.UUID(str(previous.id)).hex}"
    history = []
    if previous.session_id:
        history = list(Session.objects.filter(id=previous.session_id).values_list("messages", flat=True).first() or [])
    return session_id, history


RESPONSE_STATUS = {
    RunStatus.QUEUED: "queued",
    RunStatus.RUNNING: "in_progress",
    RunStatus.INTERRUPTED: "in_progress",
    RunStatus.SUCCEEDED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


def response_base(run: Run) -> dict:
    meta = (run.metadata or {}).get("openai") or {}
    return {
        "id": response_id(run.id),
        "object": "response",
        "created_at": int(run.created_at.timestamp()),
        "model": meta.get("model", f"{run.kind}:{run.target}"),
        "instructions": meta.get("instructions"),
        "previous_response_id": meta.get("previous_response_id"),
        "background": bool(meta.get("background")),
        "metadata": meta.get("metadata") or {},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [
            {"type": "function", "name": t["name"], "description": t["description"], "parameters": t["parameters"]}
            for t in (run.input or {}).get("tools") or []
        ],
        "temperature": None,
        "top_p": None,
        "incomplete_details": None,
        "asteros": {"run_id": str(run.id), "session_id": run.session_id},
    }


def ending(reading: Reading, run: Run) -> tuple[str, dict | None]:
    """The response's final status and error from how the run ended."""
    if reading.ended == "cancelled" or run.status == RunStatus.CANCELLED:
        return "cancelled", None
    if run.status == RunStatus.INTERRUPTED:  # waiting for a person: answered through another door
        return "incomplete", None
    if reading.ended == "error" or run.status == RunStatus.FAILED:
        error = reading.error or {"code": "run_failed", "message": "The run failed."}
        return "failed", {"code": error["code"], "message": error["message"]}
    return "completed", None


async def response_events(run: Run, starting_after: int = -1) -> AsyncIterator[dict]:
    """The Responses stream of a run: every wire event numbered from 0, those after
    ``starting_after`` yielded. The run's events are read from the first one every time, so
    the numbering is the same on every read."""
    translator = ResponsesTranslator(Reading(client_names(run)), response_base(run))
    for item in translator.open():
        if item["sequence_number"] > starting_after:
            yield item
    run_id = str(run.id)
    async for _seq, event in run_events(run_id):
        for item in translator.translate(event):
            if item["sequence_number"] > starting_after:
                yield item
    fresh = await db_call(run_row, run_id)
    status, error = ending(translator.reading, fresh)
    usage = await db_call(usage_of, run_id)
    fallback = "" if translator.reading.text else output_text(fresh)
    for item in translator.close(status, usage, error, fallback):
        if item["sequence_number"] > starting_after:
            yield item


async def final_response(run: Run) -> dict:
    """The whole response of an ended run (or the one waited for), as one object."""
    last: dict | None = None
    async for item in response_events(run):
        last = item
    assert last is not None
    return last["response"]


async def response_snapshot(run: Run) -> dict:
    """``GET /v1/responses/{id}``: the run as a response now; its output once it has ended."""
    if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED):
        return await final_response(run)
    translator = ResponsesTranslator(Reading(client_names(run)), response_base(run))
    return translator.snapshot(RESPONSE_STATUS[run.status])


def cancel(run: Run) -> Run:
    cancel_run(run.id)
    return Run.objects.get(id=run.id)
