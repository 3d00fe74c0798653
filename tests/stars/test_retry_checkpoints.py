"""A star run retried after its worker was lost keeps the members' runs that succeeded.

The worker's loss is made in this process (``lose_the_worker``), so these run in embedded mode;
the kill -9 of a real worker process is ``tests/reliability/test_steps_checkpointed.py``.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from cosmos.models import RunStatus
from cosmos.runtime.events import closing_events
from cosmos.services import leases
from cosmos.services import runs as run_services
from tests.stars.helpers import child_of, conversation, custom_events, delegating_leader, make_team, worker
from tests.support.runs import assert_gapless, events, lose_the_worker, run_tree, wait_for_child, wait_for_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("embedded_worker"),
    pytest.mark.skipif(
        settings.ASTEROS.distributed, reason="the worker's loss is made in this process's engine (embedded)"
    ),
]


def team():
    leader = delegating_leader(("research", "Find three facts"), ("write", "Draft the intro"))
    return make_team(leader, {"research": worker("FACTS: sun, moon"), "write": worker("INTRO", ttft_ms=1500)})


def start(star):
    return run_services.start_run("star", star.id, {"message": "Plan the launch"})[0]


def test_a_retried_star_reuses_the_members_runs_that_succeeded():
    star = team()
    uninterrupted = wait_for_run(start(star).id, timeout=30)
    assert uninterrupted.status == RunStatus.SUCCEEDED, uninterrupted.error

    run = start(star)
    wait_for_child(run.id, star_member="write")
    (research,) = child_of(run.id, "research")
    assert wait_for_run(research.id, timeout=20).status == RunStatus.SUCCEEDED
    lose_the_worker(run.id)
    leases.reap_expired_runs()
    run = wait_for_run(run.id, timeout=30)

    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2), run.error
    assert run.output == uninterrupted.output
    # The research member ran once, in the lost attempt; the writer and the leader ran again.
    assert [c.id for c in child_of(run.id, "research")] == [research.id]
    assert (len(child_of(run.id, "write")), len(child_of(run.id, "lead"))) == (2, 2)
    logged = events(run.id)
    reused = [e for e in logged if e["type"].startswith("SUBAGENT_") and e.get("reused")]
    assert [(e["type"], e["runId"]) for e in reused] == [
        ("SUBAGENT_STARTED", str(research.id)),
        ("SUBAGENT_FINISHED", str(research.id)),
    ]
    # One star.started per attempt, marked; one star.finished, counting the member runs once each.
    assert [value["attempt"] for value in custom_events(run.id, "star.started")] == [1, 2]
    (summary,) = custom_events(run.id, "star.finished")
    assert summary["runs"] == len(run_tree(run.id)) - 1
    assert summary["delegations"] == custom_events(uninterrupted.id, "star.finished")[0]["delegations"]
    # The retry recorded no message a second time: the same conversation as without the loss
    # (the two delegations run in parallel: their messages may come in either order).
    assert sorted(conversation(star.id, run.id)) == sorted(conversation(star.id, uninterrupted.id))
    assert closing_events(logged) == []  # the lost attempt's open subagents were closed
    for each in run_tree(run.id):
        assert_gapless(each)
