"""Database access from asyncio code, on a small bounded pool of threads.

Every process holds at most ``ASTEROS_DB_THREADS`` database connections for run execution and
event following, whatever the number of runs in flight: the run engine and the streaming
readers all go through ``db_call``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from . import tracing

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def db_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.ASTEROS.db_threads, thread_name_prefix="asteros-db")
    return _executor


# A thread's connection unused for longer than this is checked before its next call.
IDLE_CHECK_SECONDS = 1.0
_last_use = threading.local()


def _check_if_idle() -> None:
    """Before a call: a connection left idle a while may have been broken meanwhile (a database
    restart, a network blip). With PostgreSQL it goes back to the pool, which checks it as it
    hands it out again (``CONN_HEALTH_CHECKS``), so a broken one is replaced instead of failing
    the call. A busy thread (calls less than ``IDLE_CHECK_SECONDS`` apart) pays nothing; SQLite
    (a local file) keeps its connection."""
    now = time.monotonic()
    idle_since = getattr(_last_use, "at", None)
    _last_use.at = now
    if (
        idle_since is not None
        and now - idle_since > IDLE_CHECK_SECONDS
        and connection.vendor == "postgresql"
        and connection.connection is not None
        and not connection.in_atomic_block
    ):
        connection.close()


def _with_reconnect(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    # Not close_old_connections() on every call: with health checks on it costs a round trip
    # per call, and pool threads keep their connection. An idle one is checked (above), and
    # one that breaks anyway is dropped below.
    _check_if_idle()
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        # A connection broken by a database restart is dropped; the next call reconnects.
        if connection.in_atomic_block:
            raise
        connection.close()
        raise


class ProcessExiting(RuntimeError):
    """The pool is shut down (the interpreter is exiting): no database call can run any more."""


async def db_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    loop = asyncio.get_running_loop()
    executor = db_executor()
    call = functools.partial(_with_reconnect, fn, *args, **kwargs)
    if tracing.enabled:
        # The caller's current span goes with the call: a run created there (a star member's,
        # a workflow step's) stores it as its parent context (``start_run``).
        call = functools.partial(contextvars.copy_context().run, call)
    try:
        return await loop.run_in_executor(executor, call)
    except RuntimeError as exc:
        # concurrent.futures refuses new work with a bare RuntimeError once the executor or the
        # interpreter shuts down; say which, so that periodic work can stop quietly.
        if getattr(executor, "_shutdown", False) or getattr(concurrent.futures.thread, "_shutdown", False):
            raise ProcessExiting(str(exc)) from None
        raise


def close_pool_connections() -> None:
    """Close every connection of this process (tests drop their database after): those of the
    pool threads, each closed by its own thread, then PostgreSQL's connection pools."""
    from django.db import connections

    if _executor is not None:
        workers = settings.ASTEROS.db_threads
        barrier = threading.Barrier(workers)

        def close_here() -> None:
            # Each task holds its thread until all have arrived, so every thread closes its own.
            barrier.wait(timeout=10)
            connections.close_all()

        for future in [_executor.submit(close_here) for _ in range(workers)]:
            future.result(timeout=15)
    # With PostgreSQL's pool, a closed connection goes back to the pool: close the pools too.
    for each in connections.all():
        close_pool = getattr(each, "close_pool", None)
        if close_pool is not None:
            close_pool()
