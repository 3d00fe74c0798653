"""A star run executed by a ``celery worker`` process and followed from this one (distributed mode)."""

from __future__ import annotations

import asyncio
import os

import pytest

from cosmos.eventlog import follow
from cosmos.models import RunEvent, RunStatus
from cosmos.services import runs as run_services
from tests.stars.helpers import child_of, delegating_leader, make_team, worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


async def collect(run_id) -> list[tuple[int, dict]]:
    return [item async for item in follow(str(run_id))]


def stored(run_id) -> list[tuple[int, dict]]:
    return [(e.seq, e.data) for e in RunEvent.objects.filter(run_id=run_id).order_by("seq")]


def test_a_star_run_in_a_worker_process_is_followed_from_here(embedded_worker):
    leader = delegating_leader(("a", "part one"), ("b", "part two"))
    star = make_team(leader, {"a": worker("ONE", ttft_ms=300), "b": worker("TWO", ttft_ms=300)})
    run, _ = run_services.start_run("star", star.id, "split the work")

    seen = asyncio.run(collect(run.id))

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.worker_id.split(":")[1] != str(os.getpid())  # executed by another process
    assert seen == stored(run.id)  # nothing lost, nothing repeated, in order
    types = [event["type"] for _, event in seen]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    members = {event["member"] for _, event in seen if event["type"] == "SUBAGENT_FINISHED"}
    assert members == {"lead", "a", "b"}
    text = "".join(event["delta"] for _, event in seen if event["type"] == "TEXT_MESSAGE_CONTENT")
    assert "ONE" in text and "TWO" in text
    # A member's own stream, opened by the child run id from the star's events.
    child = child_of(run.id, "a")[0]
    assert [event["type"] for _, event in asyncio.run(collect(child.id))][-1] == "RUN_FINISHED"
