"""Health checks: the database, the broker, live events (the bus) and recently seen workers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from cosmos.embedded import embedded_worker_started
from cosmos.models import WorkerHeartbeat
from interfaces.schedules.services import scheduler_status

VERSION = "0.1.0"


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2), **(detail or {})}
    except Exception as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}


# The database check answers within this time whatever the database does (a pool waiting for a
# connection that cannot be made would otherwise hold the answer for the pool's timeout).
DATABASE_CHECK_SECONDS = 3.0
_database_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="asteros-health")


def _query_database() -> str:
    # On a thread of its own: its connection is checked and given back like a request's.
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return connection.vendor
    finally:
        close_old_connections()


def _database() -> dict:
    """A query that really reaches the database, on a fresh or checked connection, bounded in time."""
    future = _database_checks.submit(_query_database)
    try:
        return {"engine": future.result(timeout=DATABASE_CHECK_SECONDS)}
    except FutureTimeout:
        future.cancel()
        raise TimeoutError(f"no answer within {DATABASE_CHECK_SECONDS:g}s") from None


def _broker() -> dict:
    """A new connection to Celery's broker, the one runs are dispatched on (no retry: fail fast)."""
    if not settings.ASTEROS.redis_url:
        return {"url": "memory://"}
    from celery import current_app

    with current_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=0)  # kombu's Redis channel PINGs as it opens
    return {"url": "redis"}


def _live_events() -> dict:
    """What carries live run events to followers: the bus (a PING on its own connection)."""
    if not settings.ASTEROS.redis_url:
        return {"bus": "embedded"}
    from cosmos.bus import get_bus

    get_bus().ping()
    return {"bus": "redis"}


def _workers() -> dict:
    recent = WorkerHeartbeat.objects.filter(
        seen_at__gte=timezone.now() - timedelta(seconds=max(30, settings.ASTEROS.lease_seconds * 2))
    )
    count = recent.count()
    if not settings.ASTEROS.distributed and embedded_worker_started():
        count = max(count, 1)
    if count == 0:
        raise RuntimeError("no worker seen recently")
    return {"seen": count}


def health_report() -> tuple[dict, int]:
    database = _timed(_database)
    checks = {
        "database": database,
        "broker": _timed(_broker),
        "live_events": _timed(_live_events),
        # Workers are seen through the database: when it is unreachable, asking again would only
        # make the answer wait for a connection a second time (up to the pool's timeout).
        "workers": _timed(_workers) if database["ok"] else {"ok": False, "error": "unknown: the database is down"},
    }
    failing = [name for name, check in checks.items() if not check["ok"]]
    # Without a database nothing works; the rest only degrades the service.
    status = "ok" if not failing else ("down" if "database" in failing else "degraded")
    body = {
        "status": status,
        "name": settings.ASTEROS.name,
        "version": VERSION,
        "mode": settings.ASTEROS.mode,
        # The protocol doors this process serves (ASTEROS_ENABLE_A2A, _AGUI, _MCP).
        "interfaces": {
            "a2a": settings.ASTEROS.enable_a2a,
            "agui": settings.ASTEROS.enable_agui,
            "mcp": settings.ASTEROS.enable_mcp,
        },
        "failing": failing,
        "checks": checks,
        # Reported, never a reason to fail: schedules are not what a load balancer probes.
        "scheduler": scheduler_status(read_database=database["ok"]),
    }
    return body, 200 if status == "ok" else 503
