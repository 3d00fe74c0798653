"""Process hooks: a worker starts its run engine (and so the periodic reaper) at once."""

import logging
import os

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown

logger = logging.getLogger(__name__)


@worker_ready.connect
def start_engine(**_kwargs) -> None:
    """A worker with no task yet must still reap: the runs of a killed worker are ``running``,
    not queued, so no task would ever start this process's engine. The engine reaps as it starts
    and then on its timer. The runs this process queues again (the reaper's, a session's next
    turn) run here with no broker hop (cosmos.dispatch)."""
    from .engine import get_engine

    get_engine().accept_local_runs()


@worker_shutdown.connect
@worker_process_shutdown.connect
def forget_metrics_of_this_process(**_kwargs) -> None:
    """In multiprocess mode, drop this process's live gauges (active runs) from the scrape."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
