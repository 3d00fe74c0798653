"""What the infrastructure fault tests share: agents with 1-3 s of scripted latency, the checks
every run must pass whatever broke, and the figures each test reports for RELIABILITY.md.

The fault tests run real processes (``celery worker``, ``manage.py asteros serve``) on a private
Redis (``redis_server`` fixture) and pytest-django's test database, so they are ``services``
tests, and ``transaction=True``: the subprocesses only see committed rows.
"""

from __future__ import annotations

import pytest

from cosmos.models import Run
from tests.factories import make_agent
from tests.support.runs import assert_gapless
from tests.support.streams import Followed

# Every fault test module: ``pytestmark = FAULT_TEST_MARKS``.
FAULT_TEST_MARKS = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Time to first token per agent: runs take 1 to 3 s, then stream a short reply.
LATENCIES_MS = (1000, 1500, 2000, 2500, 3000)
REPLY_TOKENS = 8
TOKENS_PER_SECOND = 40
LONGEST_RUN_SECONDS = max(LATENCIES_MS) / 1000 + REPLY_TOKENS / TOKENS_PER_SECOND


def latency_agents(**parameters) -> list:
    """One scripted agent per latency; give run ``i`` the agent ``agents[i % len(agents)]``."""
    return [
        make_agent(
            parameters={"ttft_ms": ms, "reply_tokens": REPLY_TOKENS, "tokens_per_second": TOKENS_PER_SECOND}
            | parameters
        )
        for ms in LATENCIES_MS
    ]


def stored(run_id) -> list[tuple[int, dict]]:
    from cosmos.models import RunEvent

    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "data"))


def assert_clean_run(run: Run) -> int:
    """Seqs 1..N, RUN_STARTED first, exactly one final event and it is last, and the row agrees
    with it (no lease left). Returns N."""
    assert_gapless(run.id)
    events = stored(run.id)
    final = events[-1][1]["type"]
    assert final == ("RUN_FINISHED" if run.status in ("succeeded", "cancelled") else "RUN_ERROR"), (run.status, final)
    assert run.lease_expires_at is None and run.finished_at is not None, run
    return len(events)


def assert_followed_everything(followed: Followed, run_id) -> None:
    """What a client received is exactly the stored log: no event lost, none repeated."""
    received = [seq for seq, _ in followed.events]
    expected = stored(run_id)
    assert received == [seq for seq, _ in expected], f"run {run_id}: received {received}, stored {len(expected)}"
    assert followed.events == expected


def report(record_property, title: str, **figures) -> None:
    """Print the figures (``pytest -rA`` shows them) and attach them to the JUnit report."""
    for name, value in figures.items():
        record_property(name, value)
    print(f"\n[reliability] {title}: " + ", ".join(f"{name}={value}" for name, value in figures.items()))
