"""Step-level checkpoints: the child runs a parent already made, found again by what they were.

A star or workflow run makes a child run per member call or step, and stores in the child's
metadata a call key: what the call is (the member, the step and its attempt) and what it was
given. When the parent runs its steps again, after a pause for a person or on a retry after its
worker was lost, each call first asks for the child run an earlier pass made with the same key.
On a retry only children that succeeded are given back: their output is reused, nothing of
them runs again; every other call starts a new child. Calls with the same key are given their
runs in the order they were made, each at most once.

An agent run retried after its worker was lost likewise gets back the results its tools stored
(``stored_tool_results``): a tool call with the same tool and arguments is answered from the
log, and the tool does not run again.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any

from ..models import Run, RunEvent, RunStatus
from ..runtime.events import EventType
from ..runtime.loop import StoredToolResults


def call_key(*parts: Any) -> str:
    """A child call's identity: what it is and what it was given, as one short hash."""
    text = json.dumps(list(parts), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class EarlierChildren:
    """The child runs of a parent made before this pass, by call key, oldest first."""

    def __init__(self, by_key: dict[str, deque[str]] | None = None) -> None:
        self._by_key = by_key or {}

    @classmethod
    def load(cls, parent_id: str, key_field: str, *, succeeded_only: bool) -> EarlierChildren:
        """The children of ``parent_id`` whose metadata has ``key_field``; with
        ``succeeded_only`` (a retry), only those that succeeded."""
        children = Run.objects.filter(parent_id=parent_id)
        if succeeded_only:
            children = children.filter(status=RunStatus.SUCCEEDED)
        by_key: dict[str, deque[str]] = {}
        for child_id, metadata in children.order_by("created_at").values_list("id", "metadata"):
            key = (metadata or {}).get(key_field) if isinstance(metadata, dict) else None
            if key:
                by_key.setdefault(key, deque()).append(str(child_id))
        return cls(by_key)

    def take(self, key: str) -> str | None:
        """The oldest run not yet taken for this call, if any."""
        found = self._by_key.get(key)
        return found.popleft() if found else None

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._by_key.values())


def stored_tool_results(run_id: str) -> StoredToolResults:
    """The tool calls a lost attempt of this run finished, with their results, from its log."""
    types = (EventType.TOOL_CALL_START, EventType.TOOL_CALL_ARGS, EventType.TOOL_CALL_RESULT)
    stored = RunEvent.objects.filter(run_id=run_id, type__in=types).order_by("seq").values_list("data", flat=True)
    return StoredToolResults.from_events(stored)
