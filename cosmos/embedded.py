"""Embedded mode's worker: a real Celery worker (memory:// broker) on a thread of the server.

Started only by the serving commands (runserver's serving child, ``asteros serve``), never by
``migrate`` or other management commands, and at most once per process.
"""

from __future__ import annotations

import logging
import socket
import threading

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker = None


def start_embedded_worker(concurrency: int | None = None):
    """Start the in-process worker once; a no-op in distributed mode. Returns the worker."""
    global _worker
    if settings.ASTEROS.distributed:
        return None
    with _lock:
        if _worker is not None:
            return _worker
        # The project's Celery app (asteros_site/celery.py), current once settings are loaded.
        _worker = current_app.WorkController(
            hostname=f"embedded@{socket.gethostname()}",
            pool="threads",
            concurrency=concurrency or settings.ASTEROS.worker_concurrency,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        threading.Thread(target=_worker.start, name="asteros-embedded-worker", daemon=True).start()
        # Python joins the worker pool's threads before it runs atexit handlers, and a pool thread
        # waits for its run to end: an exiting server (SIGTERM, Ctrl-C) would wait for its runs,
        # minutes for a long one. Stop them first; concurrent.futures uses this hook for its pools.
        threading._register_atexit(_stop_runs_at_exit)
        # The run engine (and its reaper timer) starts with the worker, not at the first task:
        # runs interrupted by a restart end with no new traffic. (Celery's worker_ready, which
        # starts it in a `celery worker` process, is not sent by an embedded WorkController.)
        from .engine import get_engine
        from .logtail import start_log_tail

        # The bus is this process's own: runs other processes execute on the same database
        # (the terminal's `asteros run`) reach its followers and dashboard through the log.
        start_log_tail()
        # The runs this process accepts run on its engine's loop with no broker hop
        # (cosmos.dispatch); the Celery worker takes the rest when the engine is full.
        get_engine().accept_local_runs()
        logger.info("embedded worker started")
        return _worker


def _stop_runs_at_exit() -> None:
    from .engine import get_engine

    get_engine().stop_runs()


def embedded_worker_started() -> bool:
    return _worker is not None
