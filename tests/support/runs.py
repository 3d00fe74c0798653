"""Waiting for runs and reading their events, for tests that execute runs through a worker.

They poll the database, so they work whichever process executes the run (the embedded worker
thread, or a ``celery worker`` subprocess in distributed mode).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from cosmos.models import TERMINAL_STATUSES, Run, RunEvent, RunStatus


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


def wait_for_runs(
    run_ids: Iterable, timeout: float = 60, statuses: Iterable[str] = TERMINAL_STATUSES, poll: float = 0.1
) -> list[Run]:
    """The runs once every one's status is in ``statuses`` (terminal by default); AssertionError
    naming the stragglers after ``timeout``."""
    ids = list(run_ids)
    wanted = {str(s) for s in statuses}
    deadline = time.monotonic() + timeout
    while True:
        runs = list(Run.objects.filter(id__in=ids))
        pending = {str(r.id): r.status for r in runs if r.status not in wanted}
        if not pending and len(runs) == len(set(ids)):
            return runs
        if time.monotonic() >= deadline:
            sample = dict(list(pending.items())[:10])
            raise AssertionError(
                f"{len(pending)} of {len(ids)} run(s) not in {sorted(wanted)} after {timeout:g}s, e.g. {sample}"
            )
        time.sleep(poll)


def dispatch_to_broker(run_ids: Iterable, broker_url: str) -> None:
    """Send runs created with ``dispatch=False`` to another broker than this process's own: the
    private Redis of a test's worker processes. As ``dispatch_run`` does, it marks them dispatched."""
    from django.utils import timezone

    from asteros_site.celery import app
    from cosmos.tasks import execute_run

    ids = [str(run_id) for run_id in run_ids]
    with app.connection_for_write(broker_url) as connection:
        for run_id in ids:
            execute_run.apply_async(args=[run_id], connection=connection)
    Run.objects.filter(id__in=ids).update(dispatched_at=timezone.now())


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


def wait_for_child(parent_id, timeout: float = 20, statuses: Iterable[str] = (RunStatus.RUNNING,), **metadata) -> Run:
    """The parent's oldest child run whose metadata has these values, once it is in ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        children = Run.objects.filter(parent_id=parent_id, **{f"metadata__{k}": v for k, v in metadata.items()})
        child = children.order_by("created_at").first()
        if child is not None:
            return wait_for_run(child.id, timeout=max(0.0, deadline - time.monotonic()), statuses=statuses)
        if time.monotonic() >= deadline:
            raise AssertionError(f"run {parent_id} has no child with {metadata} after {timeout:g}s")
        time.sleep(0.02)


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


def run_links(run_id: str, api: str = "http://testserver/api") -> dict[str, str]:
    """The ``links`` a run carries in REST answers (the test client's host, the API prefix)."""
    base = f"{api}/runs/{run_id}"
    return {
        "self": base,
        "events": f"{base}/events",
        "stream": f"{base}/events?format=sse",
        "websocket": f"ws://testserver/ws/runs/{run_id}/",
        "cancel": f"{base}/cancel",
    }


def run_tree(root_id) -> list[str]:
    """The run and every run below it."""
    tree, frontier = [str(root_id)], [str(root_id)]
    while frontier:
        frontier = [str(i) for i in Run.objects.filter(parent_id__in=frontier).values_list("id", flat=True)]
        tree += frontier
    return tree


def lose_the_worker(root_id, timeout: float = 10) -> None:
    """What a killed worker leaves, made in this process (embedded mode): the engine here stops
    every run of the tree without its final write, and their leases are expired, so the next
    reaper pass takes them over as it would from a dead worker."""
    from cosmos.engine import running_engine

    engine = running_engine()
    assert engine is not None, "no engine runs in this process"
    engine.stop_runs()
    deadline = time.monotonic() + timeout
    while set(run_tree(root_id)) & set(engine.local):
        assert time.monotonic() < deadline, "the engine did not let go of the runs"
        time.sleep(0.02)
    Run.objects.filter(id__in=run_tree(root_id), status=RunStatus.RUNNING).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
