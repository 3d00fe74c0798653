"""Process hooks: a reaper pass when a Celery worker starts."""

import logging
import os

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

logger = logging.getLogger(__name__)


@worker_ready.connect
def reap_on_worker_start(**_kwargs) -> None:
    from .services.runs import reap_expired_runs

    try:
        reap_expired_runs()
    except Exception as exc:  # the engine's periodic reaper tries again
        logger.warning("start-up reap failed: %s", exc.__class__.__name__)


@worker_shutdown.connect
@worker_process_shutdown.connect
def forget_metrics_of_this_process(**_kwargs) -> None:
    """In multiprocess mode, drop this process's live gauges (active runs) from the scrape."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
