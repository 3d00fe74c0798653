"""The "star" run kind: load the team, run the mode, stream and store the final answer.

``StarsConfig.ready()`` registers the kind with cosmos (``cosmos.kinds``), so
``start_run("star", star_id, task)`` (and ``POST /api/stars/{id}/run``) works.

A star run's stream: ``CUSTOM star.started``, then per member ``SUBAGENT_STARTED`` /
``SUBAGENT_FINISHED`` / ``SUBAGENT_ERROR`` (with the child run id) and ``CUSTOM star.message``
for each message between members, then the answer as ``TEXT_MESSAGE_START/CONTENT/END`` and
``CUSTOM star.finished`` with the team's usage.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cosmos.db import db_call
from cosmos.kinds import ExecutionResult
from cosmos.models import Run, Session
from cosmos.runtime.errors import RunFailed
from cosmos.services.errors import NotFound, ServiceError

from .collaboration import Replay, StarRun, descendant_usage
from .models import STAR_KIND, StarMessage
from .modes import MODES, Task
from .services import USER, record_message
from .team import Team, load_team

if TYPE_CHECKING:
    from cosmos.engine import RunContext


def run_option(run: Run, key: str) -> Any:
    """A per-run option (``mode``, ``rounds``): from the run's input, else its metadata."""
    value = run.input.get(key) if isinstance(run.input, dict) else None
    if value is None and isinstance(run.metadata, dict):
        value = run.metadata.get(key)
    return value


def nesting(run: Run) -> tuple[int, tuple[str, ...]]:
    """How deep this star run is nested (1 at the top) and the star ids down to it.

    Only a star's own child runs carry a depth: one set by a caller in its metadata is ignored.
    """
    metadata = run.metadata if isinstance(run.metadata, dict) else {}
    depth = metadata.get("star_depth")
    path = metadata.get("star_path")
    if run.origin == STAR_KIND and isinstance(depth, int) and depth >= 1 and isinstance(path, list):
        return depth, tuple(str(p) for p in path)
    return 1, (run.target,)


def load_task(run: Run) -> Task:
    """The task; the leader's input continues the run's session, if it has one."""
    run_input = run.input
    history: list[dict] = []
    if run.session_id:
        history = list(Session.objects.filter(id=run.session_id).values_list("messages", flat=True).first() or [])
    if isinstance(run_input.get("messages"), list):
        conversation = list(run_input["messages"])
        text = next((_text(m.get("content")) for m in reversed(conversation) if m.get("role") == "user"), "")
        return Task(text, {"messages": conversation})
    text = _text(run_input.get("message"))
    if history:
        return Task(text, {"messages": [*history, {"role": "user", "content": text}]})
    return Task(text, {"message": text})


def load_run(run: Run, mode: str | None) -> tuple[Team, Task]:
    """The team (or why it cannot run) and the task, in one trip to the database."""
    return load_team(run.target, mode, run.revision), load_task(run)


def close_run(star: StarRun, answer: str) -> tuple[StarMessage, dict[str, int]]:
    """The answer as the leader's message to the user, and the team's usage."""
    message = record_message(star.star_id, star.team.leader.name, USER, answer, star.context.run_id)
    return message, descendant_usage(star.context.run_id)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def announce_start(star: StarRun) -> None:
    team, limits = star.team, star.limits
    await star.custom(
        "started",
        {
            "starId": team.star_id,
            "mode": team.mode,
            "leader": team.leader.name,
            "workers": [w.name for w in team.workers],
            "depth": star.depth,
            "attempt": star.run.attempts,  # once per attempt: a retry after a lost worker starts again
            "limits": {
                "maxDelegations": limits.max_delegations,
                "maxDepth": limits.max_depth,
                "memberTimeout": limits.member_timeout,
                "rounds": limits.rounds,
            },
        },
    )


async def execute_star(context: RunContext) -> ExecutionResult:
    run = context.run
    mode = run_option(run, "mode")
    if mode is not None and not isinstance(mode, str):
        raise RunFailed("invalid_mode", f"'mode' must be one of {', '.join(MODES)}, not {mode!r}.")
    try:
        team, task = await db_call(load_run, run, mode)
        limits = team.limits(rounds=run_option(run, "rounds"))
    except NotFound:
        raise  # the star was deleted: the engine fails the run with definition_deleted
    except ServiceError as exc:
        raise RunFailed(exc.code, exc.message) from None
    except ValueError as exc:
        raise RunFailed("invalid_config", f"Star {run.target!r}: {exc}") from None
    depth, path = nesting(run)
    star = StarRun(context, team, limits, depth, path)
    if context.resume is not None:
        # Back from a pause: replay the mode over what the run already did.
        star.replay = await db_call(Replay.load, context.run_id)
    else:
        if context.reuse_from:
            # Its worker was lost: the mode runs again, reusing the members' runs that succeeded.
            star.replay = await db_call(Replay.load, context.reuse_from, retry=True, own=context.run_id)
        await announce_start(star)
    answer = await MODES[team.mode](star, task)
    message, usage = await db_call(close_run, star, answer)
    await star.show(message)
    await star.emit_answer(answer)
    await star.custom("finished", {"starId": team.star_id, "mode": team.mode, "delegations": star.delegations, **usage})

    session_id = run.session_id
    conversation = task.leader_input.get("messages") or [{"role": "user", "content": task.text}]

    def save_session() -> None:
        if session_id:
            Session.objects.filter(id=session_id).update(
                messages=[*conversation, {"role": "assistant", "content": answer}]
            )

    return ExecutionResult(output=answer, finalize=save_session)
