"""Waiting for runs and reading their events, for tests that execute runs through a worker.

They poll the database, so they work whichever process executes the run (the embedded worker
thread, or a ``celery worker`` subprocess in distributed mode).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from cosmos.models import TERMINAL_STATUSES, Run, RunEvent


def wait_for_run(run_id, timeout: float = 60, statuses: Iterable[str] = TERMINAL_STATUSES, poll: float = 0.05) -> Run:
    """The run once its status is one of ``statuses`` (terminal by default); AssertionError after ``timeout``."""
    wanted = {str(s) for s in statuses}
    deadline = time.monotonic() + timeout
    while True:
        run = Run.objects.get(id=run_id)
        if run.status in wanted:
            return run
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"run {run_id} is still {run.status} after {timeout:g}s (waiting for {sorted(wanted)})\n"
                + describe_tree(run_id)
            )
        time.sleep(poll)


def describe_tree(run_id) -> str:
    """The run and its descendants, one line each: kind, target, status, last event."""
    lines: list[str] = []

    def walk(run: Run, depth: int) -> None:
        last = RunEvent.objects.filter(run=run).order_by("-seq").values_list("seq", "type").first()
        lines.append(f"{'  ' * depth}{run.kind}:{run.target} {run.id} {run.status} last event {last}")
        for child in Run.objects.filter(parent=run).order_by("created_at"):
            walk(child, depth + 1)

    walk(Run.objects.get(id=run_id), 0)
    return "\n".join(lines)


def wait_for_children(parent_id, count: int, timeout: float = 60, statuses: Iterable[str] | None = None) -> list[Run]:
    """The parent's child runs (oldest first) once there are ``count`` of them (in ``statuses``, if given)."""
    wanted = {str(s) for s in statuses} if statuses is not None else None
    deadline = time.monotonic() + timeout
    while True:
        children = list(Run.objects.filter(parent_id=parent_id).order_by("created_at"))
        matching = [c for c in children if wanted is None or c.status in wanted]
        if len(matching) >= count:
            return matching
        if time.monotonic() >= deadline:
            states = [c.status for c in children]
            raise AssertionError(f"run {parent_id} has children {states} after {timeout:g}s; wanted {count}")
        time.sleep(0.05)


def events(run_id) -> list[dict]:
    """The run's stored events, in seq order."""
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("data", flat=True))


def event_types(run_id) -> list[str]:
    return [event["type"] for event in events(run_id)]


def assert_gapless(run_id) -> None:
    """Seqs 1..N with no gap, RUN_STARTED first, exactly one terminal event and it is last."""
    rows = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "type"))
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), rows
    types = [t for _, t in rows]
    assert types[0] == "RUN_STARTED", types
    terminal = [t for t in types if t in ("RUN_FINISHED", "RUN_ERROR")]
    assert terminal == [types[-1]], types
