"""Process hooks: a reaper pass when a Celery worker starts."""

import logging

from celery.signals import worker_ready

logger = logging.getLogger(__name__)


@worker_ready.connect
def reap_on_worker_start(**_kwargs) -> None:
    from .services.runs import reap_expired_runs

    try:
        reap_expired_runs()
    except Exception as exc:  # the engine's periodic reaper tries again
        logger.warning("start-up reap failed: %s", exc.__class__.__name__)
