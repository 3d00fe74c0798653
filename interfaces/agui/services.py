"""Starting a run from a RunAgentInput, and its AG-UI event stream. Used by the SSE view and the
websocket consumer alike: one pipeline, two transports.

- ``threadId`` is the ``Session`` (created on first use); ``runId`` is the ``Run``: a UUID
  ``runId`` is the run's id, any other string is kept in ``metadata["agui"]``. Posting the same
  ``runId`` again attaches to that run instead of starting another (idempotency key
  ``agui:<runId>`` per caller), so a client that lost its stream can read it again.
- The thread's state: the input's ``state`` when sent (and neither null nor ``{}``, which is
  what a client with no state yet sends) is the truth and is saved on the session; otherwise
  the session's saved state is used, so a reloaded page gets its thread's state back. It opens the stream as
  ``STATE_SNAPSHOT``; whatever the run's own ``STATE_SNAPSHOT`` / ``STATE_DELTA`` make of it
  is saved on the session when the run ends.
- Interrupts: a run that stops for people ends its AG-UI run with the interrupt outcome
  (``translate``). The next input on the thread answers them in ``resume``
  (``resume_agui_run``): each entry is resolved through ``cosmos.services.interrupts.resolve``
  and the new AG-UI run streams what the same stored run does after its pause. While a run of
  the thread waits, an input without ``resume`` is refused (409 ``interrupt_pending``): the
  spec does not let a client move past an interrupt it has not answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.models import Interrupt, InterruptStatus, Run, RunStatus, Session
from cosmos.runtime.interrupts import ANSWER, APPROVAL, APPROVE, DECISIONS, REJECT
from cosmos.services import costs, interrupts
from cosmos.services.errors import Conflict, Invalid, NotFound
from cosmos.services.leases import next_seq
from cosmos.services.runs import start_run
from interfaces.agui.input import RunAgentInput, to_internal_messages
from interfaces.agui.translate import AGUITranslator, ends_stream
from interfaces.edge.params import canonical_uuid

ORIGIN = "agui"


@dataclass(frozen=True)
class AGUIRun:
    """A started (or re-attached) run and what its AG-UI stream needs to know."""

    run_id: str  # the AsterOS run (a UUID)
    thread_id: str
    agui_run_id: str  # the client's runId
    parent_run_id: str | None
    state: Any  # the thread state the stream opens with
    created: bool
    # A resume: the stored run's events up to this seq belong to the AG-UI run it paused.
    resumed_after: int = 0
    usage_before: list[dict] | None = None  # the stored run's usage when it was resumed


def saved_state(thread_id: str) -> Any:
    state = Session.objects.filter(id=thread_id).values_list("state", flat=True).first()
    return {} if state is None else state


def save_state(thread_id: str, state: Any) -> None:
    Session.objects.filter(id=thread_id).update(state=state)


def workflow_state(state: Any) -> Any:
    """A workflow reads ``input["state"]`` as its own state. A client that sends back the
    document the workflow published (``{"input", "state", "steps"}``) means its ``state`` part."""
    if isinstance(state, dict) and {"state", "steps"} <= state.keys() and isinstance(state["state"], dict):
        return state["state"]
    return state


def start_agui_run(kind: str, target: str, parsed: RunAgentInput, *, caller: str) -> AGUIRun:
    """Create the run (or find the one this ``runId`` already started), or resume the thread's
    interrupted run when the input carries ``resume``. Raises ServiceError."""
    if parsed.resume:
        return resume_agui_run(kind, target, parsed, caller=caller)
    refuse_while_waiting(parsed)
    state = parsed.state if parsed.has_state else saved_state(parsed.thread_id)
    raw_input: dict[str, Any] = {
        "messages": to_internal_messages(parsed, state),
        "tools": parsed.tools,
        "state": workflow_state(state) if kind == "workflow" else state,
    }
    agui: dict[str, Any] = {"threadId": parsed.thread_id, "runId": parsed.run_id}
    if parsed.parent_run_id:
        agui["parentRunId"] = parsed.parent_run_id
    if parsed.context:
        agui["context"] = parsed.context
    if parsed.forwarded_props not in (None, {}):
        agui["forwardedProps"] = parsed.forwarded_props
    run, created = start_run(
        kind,
        target,
        raw_input,
        session_id=parsed.thread_id,
        origin=ORIGIN,
        caller=caller,
        run_id=canonical_uuid(parsed.run_id),
        idempotency_key=f"agui:{parsed.run_id}",
        metadata={"agui": agui},
    )
    if not created:
        return attach(run, parsed, kind, target)
    if parsed.has_state:
        save_state(parsed.thread_id, state)
    return AGUIRun(str(run.id), parsed.thread_id, parsed.run_id, parsed.parent_run_id, state, True)


def attach(run: Run, parsed: RunAgentInput, kind: str, target: str) -> AGUIRun:
    """The same ``runId`` again: its stream, if it is the same thread's run of the same target."""
    agui = (run.metadata or {}).get("agui") or {}
    if run.origin != ORIGIN or agui.get("threadId") != parsed.thread_id or (run.kind, run.target) != (kind, target):
        raise Conflict(
            f"runId {parsed.run_id!r} already names another run; send a new runId for a new run.",
            code="run_id_in_use",
        )
    state = (run.input or {}).get("state", {})
    return AGUIRun(str(run.id), parsed.thread_id, parsed.run_id, agui.get("parentRunId"), state, False)


def _agui_run_ids(run: Run) -> set[str]:
    """The AG-UI runs one stored run has been: the one that started it, and each resume."""
    agui = (run.metadata or {}).get("agui") or {}
    return {agui.get("runId"), *(agui.get("resumes") or {})} - {None}


def refuse_while_waiting(parsed: RunAgentInput) -> None:
    """A thread whose run waits for people takes the answers (``resume``) and nothing else; the
    AG-UI run that started it can still be read again (same ``runId``)."""
    for run in Run.objects.filter(session_id=parsed.thread_id, status=RunStatus.INTERRUPTED).only("id", "metadata"):
        if parsed.run_id == ((run.metadata or {}).get("agui") or {}).get("runId"):
            continue
        waiting = [str(i.id) for i in interrupts.pending_interrupts(run.id)]
        raise Conflict(
            "This thread's run is waiting for answers: send them in resume (one entry per interrupt).",
            code="interrupt_pending",
            details={"runId": str(run.id), "interruptIds": waiting},
        )


def _thread_interrupt(interrupt_id: str, parsed: RunAgentInput, kind: str, target: str) -> Interrupt:
    """The interrupt, if it belongs to a run of this thread on this endpoint (else 404: an id
    from another thread tells nothing about that thread)."""
    interrupt = interrupts.get_interrupt(interrupt_id)
    run = Run.objects.filter(id=interrupt.root_run_id).only("session_id", "kind", "target").first()
    if run is None or run.session_id != parsed.thread_id or (run.kind, run.target) != (kind, target):
        raise NotFound(f"Thread {parsed.thread_id!r} has no interrupt {interrupt_id!r}.")
    return interrupt


def decision_of(interrupt: Interrupt, entry: dict) -> tuple[str, dict[str, Any]]:
    """A resume entry as a decision and ``resolve``'s options.

    ``status: "cancelled"`` rejects. Otherwise the payload says: ``{"decision": ..., "arguments"?,
    "message"?}`` (any kind), ``{"answer": ...}`` (a question), ``true``/``false`` (an approval);
    any other payload of a question is the answer itself."""
    payload = entry.get("payload")
    message = payload.get("message") if isinstance(payload, dict) else None
    options: dict[str, Any] = {"message": message if isinstance(message, str) else ""}
    if entry["status"] == "cancelled":
        return REJECT, options
    if isinstance(payload, dict) and "decision" in payload:
        decision = payload["decision"]
        if not isinstance(decision, str):
            raise Invalid("payload.decision must be text.", code="invalid_decision")
        return decision, {**options, "arguments": payload.get("arguments"), "answer": payload.get("answer")}
    if interrupt.kind == APPROVAL:
        if isinstance(payload, bool):
            return (APPROVE if payload else REJECT), options
        allowed = "|".join(DECISIONS[APPROVAL])
        raise Invalid(
            f'An approval is answered with payload {{"decision": "{allowed}"}} (edit adds "arguments").',
            code="invalid_decision",
            details={"interruptId": str(interrupt.id), "allowed": list(DECISIONS[APPROVAL])},
        )
    if payload is None:
        raise Invalid('A question is answered with payload {"answer": ...}.', code="invalid_answer")
    answer = payload["answer"] if isinstance(payload, dict) and "answer" in payload else payload
    return ANSWER, {**options, "answer": answer}


def resume_agui_run(kind: str, target: str, parsed: RunAgentInput, *, caller: str) -> AGUIRun:
    """Answer the interrupts of the thread's waiting run, then stream its continuation.

    Everything is checked before anything is resolved: each interrupt is this thread's (404),
    still pending (409 ``already_resolved``), all of them are of one run and every pending one
    of that run is answered (400 ``invalid_resume``), and each decision is one its kind takes
    (400). Posting the same ``runId`` again reads that continuation again."""
    found = [(_thread_interrupt(e["interruptId"], parsed, kind, target), e) for e in parsed.resume]
    run_ids = {str(interrupt.root_run_id) for interrupt, _ in found}
    if len(run_ids) > 1:
        raise Invalid("resume answers the interrupts of one run; these are of several.", code="invalid_resume")
    run = Run.objects.get(id=run_ids.pop())
    agui = dict((run.metadata or {}).get("agui") or {})
    resumes = dict(agui.get("resumes") or {})
    state = parsed.state if parsed.has_state else saved_state(parsed.thread_id)
    if parsed.run_id in resumes:  # the same resume again: its stream, nothing resolved twice
        again = resumes[parsed.run_id]
        return AGUIRun(
            str(run.id),
            parsed.thread_id,
            parsed.run_id,
            parsed.parent_run_id,
            state,
            False,
            again["after"],
            again["usage"],
        )
    if (
        parsed.run_id in _agui_run_ids(run)
        or Run.objects.filter(caller=caller, idempotency_key=f"agui:{parsed.run_id}").exists()
    ):
        raise Conflict(
            f"runId {parsed.run_id!r} already names another run; send a new runId to resume.", code="run_id_in_use"
        )
    for interrupt, _ in found:
        if interrupt.status != InterruptStatus.PENDING:
            raise Conflict(f"Interrupt {interrupt.id} is already {interrupt.status}.", code="already_resolved")
    if run.status != RunStatus.INTERRUPTED:
        raise Conflict(f"Run {run.id} is not waiting for answers.", code="not_interrupted")
    answered = {str(interrupt.id) for interrupt, _ in found}
    missing = [str(i.id) for i in interrupts.pending_interrupts(run.id) if str(i.id) not in answered]
    if missing:
        raise Invalid(
            "resume must answer every interrupt the run waits for (status cancelled abandons one).",
            code="invalid_resume",
            details={"missing": missing},
        )
    decisions = []
    for interrupt, entry in found:
        decision, options = decision_of(interrupt, entry)
        interrupts.check_decision(interrupt, decision, **options)
        decisions.append((interrupt, decision, options))
    paused_at = next_seq(str(run.id))  # a waiting run writes nothing: its pause is the last event
    usage_before = run_usage(str(run.id))
    for interrupt, decision, options in decisions:
        interrupts.resolve(interrupt.id, decision, resolved_by=caller, run_id=run.id, **options)
    resumes[parsed.run_id] = {"after": paused_at, "usage": usage_before}
    # Only the door's own key of metadata changes; nothing else writes a run's metadata.
    Run.objects.filter(id=run.id).update(metadata={**(run.metadata or {}), "agui": {**agui, "resumes": resumes}})
    if parsed.has_state:
        save_state(parsed.thread_id, state)
    return AGUIRun(
        str(run.id), parsed.thread_id, parsed.run_id, parsed.parent_run_id, state, True, paused_at, usage_before
    )


def resumed_usage(total: list[dict], before: list[dict] | None) -> list[dict]:
    """What the run used since it was resumed: a resuming AG-UI run reports only its own calls."""
    if not before or not total:
        return total
    used = {key: total[0][key] - before[0][key] for key in ("inputTokens", "outputTokens")}
    if used["inputTokens"] <= 0 and used["outputTokens"] <= 0:
        return []
    return [{**used, "totalTokens": used["inputTokens"] + used["outputTokens"]}]


def run_usage(run_id: str) -> list[dict]:
    """Token usage of the run and its child runs (subagents' calls are the run's), 1.0 shape;
    input is the whole prompt: its uncached and cached parts."""
    run = Run.objects.filter(id=run_id).first()
    if run is None:
        return []
    totals = costs.tree_usage([run])[str(run.pk)]
    input_tokens = totals["input_tokens"] + totals["cache_read_tokens"] + totals["cache_write_tokens"]
    output_tokens = totals["output_tokens"]
    if not input_tokens and not output_tokens:
        return []  # no counts at all: say nothing rather than report zeros we do not know
    return [{"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}]


async def agui_events(started: AGUIRun, after: int = 0) -> AsyncIterator[tuple[int | None, dict]]:
    """``(seq, event)`` of the run's AG-UI stream, live until its terminal event or its pause.

    ``RUN_STARTED`` and ``STATE_SNAPSHOT`` go out at once, whether or not a worker has claimed
    the run yet. One stored event may become several wire events; only the last of them carries
    the stored ``seq`` (the others ``None``), so resuming after a ``seq`` repeats nothing and
    loses nothing. Events up to ``after`` are still translated (the translator needs them) but
    not yielded.
    """
    translator = AGUITranslator(
        started.thread_id, started.agui_run_id, state=started.state, parent_run_id=started.parent_run_id
    )
    if after <= started.resumed_after:
        for item in translator.open(started.run_id):
            yield None, item
    # A resume's AG-UI run is the stored run after its pause; the pause ended the one before.
    events = follow(started.run_id, after=started.resumed_after)
    try:
        async for seq, event in events:
            if ends_stream(event):
                usage = await db_call(run_usage, started.run_id)
                translator.usage = resumed_usage(usage, started.usage_before) or None
            wire = translator.translate(event)
            if seq > after:
                for index, item in enumerate(wire):
                    yield (seq if index == len(wire) - 1 else None), item
            if translator.closed:
                break  # a pause: the stored run goes on, this AG-UI run does not
    finally:
        await events.aclose()  # unsubscribes now, not whenever the generator is collected
    if translator.state_changed:
        await db_call(save_state, started.thread_id, translator.state)
