"""Connections the process holds between uses are checked before use: a connection PostgreSQL
dropped while it sat idle (a restart, a network blip; here ``pg_terminate_backend``) is
replaced, and the call that comes next succeeds. Here ``cosmos.db``'s threads (run execution,
event following, ``?wait``); the request threads' pooled connections are covered, with real
processes and a network cut, by tests/reliability/test_database_blip.py."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.db import connection, connections

from cosmos import db as cosmos_db
from cosmos.db import db_call
from cosmos.models import Agent
from tests.factories import make_agent

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _terminate(pids: set[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_db_call_threads_replace_a_connection_dropped_while_idle(settings):
    from django.conf import settings as django_settings

    threads = django_settings.ASTEROS.db_threads
    make_agent()

    async def pids_of_every_thread() -> set[int]:
        barrier = threading.Barrier(threads)

        def pid() -> int:
            barrier.wait(timeout=10)  # one call per thread: each thread reports its own connection
            Agent.objects.count()
            return connections["default"].connection.info.backend_pid

        return set(await asyncio.gather(*(db_call(pid) for _ in range(threads))))

    async def every_thread_counts() -> list[int]:
        barrier = threading.Barrier(threads)

        def count() -> int:
            barrier.wait(timeout=10)
            return Agent.objects.count()

        return await asyncio.gather(*(db_call(count) for _ in range(threads)))

    pids = asyncio.run(pids_of_every_thread())
    assert len(pids) == threads
    _terminate(pids)
    time.sleep(getattr(cosmos_db, "IDLE_CHECK_SECONDS", 1.0) + 0.2)
    assert asyncio.run(every_thread_counts()) == [Agent.objects.count()] * threads
