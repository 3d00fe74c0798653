"""The leader's ``delegate(member, instruction)`` tool, built for one star run.

Each call is a child run of that worker (parent = the star run); several calls in one model turn
run in parallel, since the agent loop runs one turn's tool calls concurrently. A failure, a
timeout, an unknown member or the delegation limit comes back as an error tool result, so the
leader can carry on.
"""

from __future__ import annotations

from typing import Any

from cosmos.runtime.tools import Tool

from .collaboration import StarRun
from .team import Member

TOOL_NAME = "delegate"
# The engine's member_timeout ends a delegation; the tool's own deadline only guards against a hang.
TOOL_TIMEOUT_MARGIN = 60.0


class DelegationError(Exception):
    """Shown to the leader as the tool's error result."""


def describe_team(workers: tuple[Member, ...]) -> str:
    lines = []
    for member in workers:
        about = member.description.strip() or "no description"
        extra = f"; leads the star {member.leads_star!r}" if member.leads_star else ""
        lines.append(f"- {member.name}: {about}{extra}")
    return "\n".join(lines)


def delegate_tool(star: StarRun) -> Tool:
    workers = star.team.workers
    names = [member.name for member in workers]
    description = (
        "Give a piece of work to one member of your team and get their answer back. "
        "Call it several times in the same turn to have members work in parallel. "
        f"At most {star.limits.max_delegations} delegations in this run; "
        f"each member has {star.limits.member_timeout:g}s to answer.\n"
        f"Your team:\n{describe_team(workers)}"
    )
    parameters = {
        "type": "object",
        "properties": {
            "member": {"type": "string", "enum": names, "description": "The member's name."},
            "instruction": {
                "type": "string",
                "description": "What the member should do, with everything they need to know: they see only this.",
            },
        },
        "required": ["member", "instruction"],
    }

    async def delegate(member: str = "", instruction: str = "", **unexpected: Any) -> str:
        return await run_delegation(star, member, instruction, unexpected)

    return Tool(TOOL_NAME, description, parameters, delegate, timeout=star.limits.member_timeout + TOOL_TIMEOUT_MARGIN)


async def run_delegation(star: StarRun, name: str, instruction: str, unexpected: dict[str, Any]) -> str:
    team = star.team
    if unexpected:
        raise DelegationError(
            f"Unexpected argument(s) {', '.join(sorted(unexpected))}; pass 'member' and 'instruction'."
        )
    member = team.worker(name) if isinstance(name, str) else None
    if member is None:
        known = ", ".join(m.name for m in team.workers)
        if isinstance(name, str) and name in (team.leader.name, team.leader.agent_id):
            raise DelegationError(f"{name!r} is you, the leader; delegate to a worker: {known}.")
        raise DelegationError(f"Unknown member {name!r}; your team: {known}.")
    if not isinstance(instruction, str) or not instruction.strip():
        raise DelegationError("The instruction is empty; say what the member should do.")
    star.delegations += 1
    if star.delegations > star.limits.max_delegations:
        raise DelegationError(
            f"Delegation limit reached: star {team.star_id!r} allows {star.limits.max_delegations} delegation(s) "
            "per run (max_delegations). Write the final answer with what you have."
        )
    result = await star.run_member(
        member, {"message": instruction}, instruction=instruction, sender=team.leader.name, reply_to=team.leader.name
    )
    if not result.ok:
        raise DelegationError(f"{result.error_text}. You can delegate to another member or answer without it.")
    return result.output
