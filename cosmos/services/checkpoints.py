"""Step-level checkpoints: the child runs a parent already made, found again by what they were.

A star or workflow run makes a child run per member call or step, and stores in the child's
metadata a call key: what the call is (the member, the step and its attempt) and what it was
given. When the parent runs its steps again, after a pause for a person or on a retry after its
worker was lost, each call first asks for the child run an earlier pass made with the same key.
On a retry only children that succeeded are given back: their output is reused, nothing of
them runs again; every other call starts a new child. Calls with the same key are given their
runs in the order they were made, each at most once.

An agent run retried after its worker was lost likewise gets back the results its tools stored
(``tool_journal``): a tool call with the same tool and arguments is answered from the
log, and the tool does not run again.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.core.exceptions import ValidationError

from ..models import Run, RunEvent, RunStatus
from ..runtime.events import EventType
from ..runtime.loop import ToolJournal


def call_key(*parts: Any) -> str:
    """A child call's identity: what it is and what it was given, as one short hash."""
    text = json.dumps(list(parts), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


SUPERSEDES = "supersedes"  # a child run's metadata: the lost attempt's child run it replaces


class EarlierChildren:
    """The child runs of a parent made before this pass, by call key, oldest first: those to
    reuse, and (on a retry) those the lost attempt left unfinished, which new runs replace."""

    def __init__(
        self, by_key: dict[str, deque[str]] | None = None, unfinished: dict[str, deque[str]] | None = None
    ) -> None:
        self._by_key = by_key or {}
        self._unfinished = unfinished or {}

    @classmethod
    def load(cls, parent_id: str, key_field: str, *, succeeded_only: bool) -> EarlierChildren:
        """The children of ``parent_id`` whose metadata has ``key_field``; with
        ``succeeded_only`` (a retry), only those that succeeded are reused."""
        reusable: dict[str, deque[str]] = {}
        unfinished: dict[str, deque[str]] = {}
        children = Run.objects.filter(parent_id=parent_id).order_by("created_at")
        for child_id, status, metadata in children.values_list("id", "status", "metadata"):
            key = metadata.get(key_field) if isinstance(metadata, dict) else None
            if key:
                found = unfinished if succeeded_only and status != RunStatus.SUCCEEDED else reusable
                found.setdefault(key, deque()).append(str(child_id))
        return cls(reusable, unfinished)

    def take(self, key: str) -> str | None:
        """The oldest run not yet taken for this call, if any."""
        found = self._by_key.get(key)
        return found.popleft() if found else None

    def replaced(self, key: str) -> dict[str, str]:
        """For a new child run of this call: metadata naming the unfinished run it replaces (the
        new run reuses what that one finished: its own children, its stored tool results)."""
        found = self._unfinished.get(key)
        return {SUPERSEDES: found.popleft()} if found else {}


def superseded_run(run: Run) -> str | None:
    """The lost attempt's child run this child run replaces, if it names a real one: a sibling
    (same parent, kind and target) that did not succeed. Metadata comes from callers too: a
    name that is not such a sibling is ignored."""
    named = (run.metadata or {}).get(SUPERSEDES)
    if run.parent_id is None or not isinstance(named, str):
        return None
    sibling = Run.objects.filter(id=named, parent_id=run.parent_id, kind=run.kind, target=run.target)
    try:
        return named if sibling.exclude(status=RunStatus.SUCCEEDED).exists() else None
    except (ValueError, ValidationError):
        return None


def tool_journal(
    run_id: str, durable: Callable[[], Awaitable[None]] | None = None, exclude: Iterable[str] = ()
) -> ToolJournal:
    """The tool calls a lost attempt of this run made, with the results it stored, from its log
    (but for the tools in ``exclude``)."""
    types = (EventType.TOOL_CALL_START, EventType.TOOL_CALL_ARGS, EventType.TOOL_CALL_RESULT)
    stored = RunEvent.objects.filter(run_id=run_id, type__in=types).order_by("seq").values_list("data", flat=True)
    return ToolJournal.from_events(stored, durable, exclude)
