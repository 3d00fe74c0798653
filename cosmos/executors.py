"""The agent run executor: load the definition and session, run the loop, save the session."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from . import tracing
from .db import db_call
from .kinds import ExecutionResult
from .models import Run, Session
from .runtime.agent import RuntimeAgent, build_agent
from .runtime.interrupts import RunInterrupted
from .runtime.loop import ToolJournal, model_name, run_agent
from .runtime.tools import Tool
from .services import checkpoints
from .services.agents import spec_for_run, with_credentials

if TYPE_CHECKING:
    from .engine import RunContext


def conversation_for(run: Run) -> list[dict]:
    """The messages the model sees: a full ``messages`` list, or the session's history plus input."""
    run_input = run.input
    if isinstance(run_input.get("messages"), list):
        return list(run_input["messages"])
    history = list(run.session.messages) if run.session_id and run.session else []
    message = run_input.get("message")
    content = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    return [*history, {"role": "user", "content": content}]


def _load(run: Run, extra_tools: tuple[Tool, ...]) -> tuple[RuntimeAgent, list[dict]]:
    if run.session_id:
        run.session = Session.objects.get(id=run.session_id)
    # Built here, on a database thread: a tool may come from a resolver that reads the database
    # (remote agents declared in the admin). The API key is read here, in the process that calls the model.
    agent = build_agent(with_credentials(spec_for_run(run)), extra_tools=extra_tools)
    return agent, conversation_for(run)


async def execute_agent(context: RunContext) -> ExecutionResult:
    run = context.run
    extra_tools = tuple(context.state.get("extra_tools", ()))
    agent, messages = await db_call(_load, run, extra_tools)
    # Its worker was lost (or the child run it replaces was): the tool calls the lost attempt
    # finished are answered from its log. Not the run's own extra tools (a star leader's
    # delegate): the star reuses its members' runs itself, and shows it.
    durable = context.writer.stored
    if context.reuse_from:
        own = [extra.name for extra in extra_tools]
        journal = await db_call(checkpoints.tool_journal, context.reuse_from, durable, own)
    else:
        journal = ToolJournal(durable=durable)
    if tracing.enabled:
        tracing.annotate_agent(tracing.current_span(), agent.spec.provider, model_name(agent))
    try:
        outcome = await run_agent(
            agent,
            messages,
            context.emit,
            client_tools=run.input.get("tools") or (),
            context_metadata=run.metadata,
            run_id=context.run_id,
            resume=context.resume,
            journal=journal,
        )
    except RunInterrupted as paused:
        # The pause records the usage so far: say what it is priced by.
        paused.checkpoint.update(provider=agent.spec.provider, model=model_name(agent))
        raise
    session_id = run.session_id

    def save_session() -> None:
        if session_id:
            Session.objects.filter(id=session_id).update(messages=[*messages, *outcome.new_messages])

    return ExecutionResult(
        output=outcome.text,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cache_read_tokens=outcome.cache_read_tokens,
        cache_write_tokens=outcome.cache_write_tokens,
        provider=agent.spec.provider,
        model=outcome.model,
        finalize=save_session,
        outcome="interrupt" if outcome.stop_reason == "client_tool" else None,
    )
