"""The issue's test: an every-second schedule fires one run a second, none twice and none
missing, with TWO real ``celery -A asteros_site beat`` processes and a real worker process on
PostgreSQL and Redis, one beat killed with SIGKILL half-way, then started again."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from cosmos.models import Run
from tests.factories import make_schedule
from tests.support.workers import BeatProcess

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = 10


def test_every_second_fires_once_a_second_with_two_beats_and_one_killed(embedded_worker):
    beats = [BeatProcess().start(), BeatProcess().start()]
    try:
        time.sleep(1)
        schedule = make_schedule("every-second", interval_seconds=1)
        began = timezone.now()
        time.sleep(SECONDS / 2)
        beats[0].kill()  # SIGKILL: no chance to finish a tick or tidy up
        killed_at = timezone.now()
        time.sleep(SECONDS / 2)
        beats.append(BeatProcess().start())  # the killed one, restarted: two beats again
        time.sleep(3)
        ended = timezone.now()
        for beat in beats[1:]:
            beat.stop()
        time.sleep(1.5)  # a wake-up sent just before the stop is still fired by the worker
    finally:
        for beat in beats:
            beat.close()
    runs = list(Run.objects.filter(caller=schedule.run_caller))
    ticks = sorted(datetime.fromisoformat(run.idempotency_key) for run in runs)
    seconds = [tick.replace(microsecond=0) for tick in ticks]
    figures = f"{len(ticks)} runs, {ticks[0]:%H:%M:%S}..{ticks[-1]:%H:%M:%S}; killed at {killed_at:%H:%M:%S.%f}"
    print(figures)
    # None twice: one run per tick (the unique key), one tick per second of the window.
    assert len(runs) == len(set(ticks)) == len(set(seconds)), figures
    # None missing: consecutive seconds from the first tick to the last, across the kill.
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(ticks)), figures
    assert ticks[0] <= killed_at <= ticks[-1], figures
    # The edges: beat sees a new row within its 2 s loop; the last tick is the stop's second or so.
    assert ticks[0] - began <= timedelta(seconds=3.5), figures
    assert ended - ticks[-1] <= timedelta(seconds=3), figures
    assert all(run.origin == "schedule" and run.metadata["tick"] == run.idempotency_key for run in runs)
