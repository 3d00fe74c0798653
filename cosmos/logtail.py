"""Embedded mode: what another process wrote to the event log, published on this process's bus.

In embedded mode the bus is in-process (``LocalBus``), so a run executed by another process on
the same database (``asteros run`` in a terminal while ``make run`` serves) is never published
here: this process's followers would find its events only when their wait times out, and the
dashboard's lifecycle feed would not see it at all. The tail closes that: every
``TAIL_SECONDS`` it reads the event rows added since its last read (one query on the primary
key, which finds nothing when nothing ran) and publishes the ones this process did not publish
itself, on the run's channel, and for a run that started, paused, resumed or ended, a lifecycle
message (one more query, for those runs only).

Why reading the log by id is complete in embedded mode: SQLite has one writer at a time, and an
``AUTOINCREMENT`` key is handed out inside the writing transaction, so rows become visible in id
order and a row with a smaller id never appears after a larger one was read. (PostgreSQL's
sequences give no such order, and distributed mode needs none of this: Redis carries every
process's events to every other; the tail runs in embedded mode only.)

Why no event reaches a client twice: the tail skips the runs this process's engine is executing
and every seq this process's bus has already carried (a tap on the bus notes the last seq
published per run). In the moment between another writer of this process committing and
publishing (a decision's "resumed" event), the tail may publish one of its events first; the
bus then carries it twice, and ``follow()`` drops the second as it drops any seq it has already
yielded, so each reader still gets each event once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db.models import Max

from .bus import LIFECYCLE_CHANNEL, Bus, run_channel
from .models import Run, RunEvent
from .runtime.events import TERMINAL_EVENT_TYPES, EventType
from .services.interrupts import INTERRUPT_EVENT
from .services.leases import lifecycle_message

logger = logging.getLogger(__name__)

TAIL_SECONDS = 0.5  # the engine's periodic tick; a CLI run shows on the dashboard within it
TAIL_PAGE = 2000  # rows per read; a busier tick reads the rest at the next
# How long the tail remembers what this process published: far longer than a row takes from
# its commit to the tail's next read.
REMEMBER_SECONDS = 120.0


def _is_boundary(event: dict) -> bool:
    """An event that goes with a change of its run's status (the dashboard's row changes)."""
    kind = event.get("type")
    return (
        kind == EventType.RUN_STARTED
        or kind in TERMINAL_EVENT_TYPES
        or (kind == EventType.CUSTOM and event.get("name") == INTERRUPT_EVENT)
    )


class LogTail:
    """Reads the event log after ``cursor`` and republishes what another process wrote."""

    def __init__(self, bus: Bus, local_runs: Any = None) -> None:
        self.bus = bus
        self.local_runs = local_runs  # () -> the ids of the runs this process executes now
        self.cursor: int | None = None
        self._lock = threading.Lock()
        self._published: dict[str, tuple[int, float]] = {}  # run id -> (last seq carried, when)
        self._pruned_at = time.monotonic()
        bus.add_tap(self.note)

    def note(self, channel: str, message: Any) -> None:
        """The bus's tap: remember the last seq of each run this process publishes."""
        if not channel.startswith("asteros:run:") or not isinstance(message, dict):
            return
        seqs = [item[0] for item in message.get("events", ()) if isinstance(item, list | tuple) and item]
        if not seqs:
            return
        run_id = channel.removeprefix("asteros:run:")
        with self._lock:
            known = self._published.get(run_id, (0, 0.0))[0]
            self._published[run_id] = (max(known, max(seqs)), time.monotonic())

    def tick(self) -> int:
        """One read of the log; returns the number of events published. Blocking (ORM)."""
        if self.cursor is None:
            # From now on: what was written before this process started is in the database,
            # where followers replay it from.
            self.cursor = RunEvent.objects.aggregate(last=Max("id"))["last"] or 0
            return 0
        rows = list(
            RunEvent.objects.filter(id__gt=self.cursor)
            .order_by("id")
            .values_list("id", "run_id", "seq", "data")[:TAIL_PAGE]
        )
        if not rows:
            self._prune()
            return 0
        self.cursor = rows[-1][0]
        executing = set(self.local_runs()) if self.local_runs is not None else set()
        with self._lock:
            carried = {run_id: seq for run_id, (seq, _) in self._published.items()}
        by_run: dict[str, list[list[Any]]] = {}
        changed: list[str] = []
        for _id, run_uuid, seq, event in rows:
            run_id = str(run_uuid)
            if run_id in executing or seq <= carried.get(run_id, 0):
                continue  # this process wrote it, and published it (or is about to)
            by_run.setdefault(run_id, []).append([seq, event])
            if _is_boundary(event) and run_id not in changed:
                changed.append(run_id)
        items: list[tuple[str, Any]] = [(run_channel(run_id), {"events": events}) for run_id, events in by_run.items()]
        if changed:
            runs = {str(run.id): run for run in Run.objects.filter(id__in=changed)}
            items += [(LIFECYCLE_CHANNEL, lifecycle_message(runs[i])) for i in changed if i in runs]
        if items:
            self.bus.publish_many(items)
        self._prune()
        return sum(len(events) for events in by_run.values())

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < REMEMBER_SECONDS / 4:
            return
        self._pruned_at = now
        with self._lock:
            self._published = {k: v for k, v in self._published.items() if now - v[1] < REMEMBER_SECONDS}


_tail: LogTail | None = None
_tail_lock = threading.Lock()


def start_log_tail() -> LogTail:
    """Have this process's engine tail the event log (embedded mode; once per process)."""
    global _tail
    from .bus import get_bus
    from .engine import register_periodic, running_engine

    def executing() -> list[str]:
        engine = running_engine()
        return list(engine.local.copy()) if engine is not None else []

    with _tail_lock:
        if _tail is None:
            _tail = LogTail(get_bus(), executing)
            register_periodic("asteros.log_tail", _tail.tick, TAIL_SECONDS)
        return _tail
