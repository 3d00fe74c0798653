"""The three ways a star works. Each returns the final answer's text.

- ``delegate``: the leader gets the task and a ``delegate`` tool; the workers it picks work as
  child runs, their answers come back as tool results, the leader writes the answer.
- ``broadcast``: every worker gets the task at once; the leader synthesizes their answers.
- ``round_robin``: the members speak in turn for N rounds over a shared transcript; the leader
  concludes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from cosmos.runtime.errors import RunFailed
from cosmos.runtime.interrupts import RunInterrupted

from .collaboration import MemberResult, StarRun
from .delegation import delegate_tool
from .models import StarMode
from .services import EVERYONE, USER

Mode = Callable[[StarRun, "Task"], Awaitable[str]]


class Task:
    """The star run's task: its text, and the leader's input (a message or a conversation)."""

    def __init__(self, text: str, leader_input: dict[str, Any]) -> None:
        self.text = text
        self.leader_input = leader_input


def leader_failed(star: StarRun, result: MemberResult) -> RunFailed:
    return RunFailed(
        "leader_failed",
        f"The leader of star {star.star_id!r} ({result.member.name}) failed: "
        f"{result.error.get('message', 'no reason given')} [{result.error.get('code', 'failed')}]",
        details={"run_id": result.run_id, "error": result.error},
    )


async def delegate(star: StarRun, task: Task) -> str:
    leader = star.team.leader
    state = {"extra_tools": [delegate_tool(star)]} if star.team.workers else None
    # The leader's turn spans its workers' work, so only the star's own cancel or timeout stops it.
    result = await star.run_member(
        leader, task.leader_input, instruction=task.text, sender=USER, timeout=None, state=state
    )
    if not result.ok:
        raise leader_failed(star, result)
    return result.output


async def broadcast(star: StarRun, task: Task) -> str:
    team = star.team
    await star.say(USER, EVERYONE, task.text)
    results = await all_members(
        star.run_member(worker, {"message": task.text}, instruction=task.text, reply_to=team.leader.name)
        for worker in team.workers
    )
    answers = "\n\n".join(
        f"[{r.member.name}] {r.output}" if r.ok else f"[{r.member.name}] (no answer: {r.error_text})" for r in results
    )
    prompt = (
        f"Task: {task.text}\n\n"
        f"Your team's answers:\n\n{answers}\n\n"
        "You lead this team. Write the final answer to the task from their answers."
    )
    final = await star.run_member(team.leader, {"message": prompt}, instruction=prompt)
    if not final.ok:
        raise leader_failed(star, final)
    return final.output


async def round_robin(star: StarRun, task: Task) -> str:
    team = star.team
    rounds = star.limits.rounds
    await star.say(USER, EVERYONE, task.text)
    transcript: list[str] = []
    for round_number in range(1, rounds + 1):
        for member in team.members:
            prompt = turn_prompt(task.text, transcript, member.name, member.description, round_number, rounds)
            result = await star.run_member(member, {"message": prompt}, instruction=prompt)
            if result.ok:
                transcript.append(f"[{member.name}] {result.output}")
                await star.say(member.name, EVERYONE, result.output)
            else:
                transcript.append(f"[{member.name}] (no answer: {result.error_text})")
    conclusion = conclude_prompt(task.text, transcript, team.leader.name)
    final = await star.run_member(team.leader, {"message": conclusion}, instruction=conclusion)
    if not final.ok:
        raise leader_failed(star, final)
    return final.output


async def all_members(calls: Iterable[Awaitable[MemberResult]]) -> list[MemberResult]:
    """Members working at once. If some wait for a person, the star pauses once they all have
    stopped (none is left running behind the pause), waiting for every one that paused."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    paused = [o for o in outcomes if isinstance(o, RunInterrupted)]
    if paused:
        raise RunInterrupted([], {}, children=[child for p in paused for child in p.children])
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes  # type: ignore[return-value]  # no exception left: all MemberResult


def turn_prompt(task: str, transcript: list[str], name: str, about: str, round_number: int, rounds: int) -> str:
    so_far = "\n".join(transcript) if transcript else "(nobody has spoken yet)"
    you = f"You are {name}" + (f" ({about.strip()})" if about.strip() else "")
    return (
        f"Task: {task}\n\nThe discussion so far:\n{so_far}\n\n"
        f"{you}. Round {round_number} of {rounds}: add your contribution, briefly."
    )


def conclude_prompt(task: str, transcript: list[str], leader: str) -> str:
    return (
        f"Task: {task}\n\nThe discussion:\n" + "\n".join(transcript) + f"\n\nYou are {leader}, the team's leader. "
        "Conclude: write the final answer to the task."
    )


MODES: dict[str, Mode] = {
    StarMode.DELEGATE: delegate,
    StarMode.BROADCAST: broadcast,
    StarMode.ROUND_ROBIN: round_robin,
}
