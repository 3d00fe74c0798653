"""Retrying a database call through a short outage (a dropped connection, a restart, a failover).

The writes of a run that must not be lost to a blip (its claim, its final write) go through
``db_call_retrying``: ``OperationalError`` and ``InterfaceError`` are retried with a backoff until
``within`` seconds have passed; ``db_call`` drops a broken connection, so each retry reconnects.
Any other error, and the last transient one, are raised as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError

from .db import db_call

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

TRANSIENT_ERRORS = (OperationalError, InterfaceError)
FIRST_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0


async def db_call_retrying(
    fn: Callable[P, T],
    *args: P.args,
    within: float,
    on_retry: Callable[[], None] | None = None,
    **kwargs: P.kwargs,
) -> T:
    """``db_call(fn, ...)``, retried on transient database errors for up to ``within`` seconds."""
    deadline = time.monotonic() + within
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return await db_call(fn, *args, **kwargs)
        except TRANSIENT_ERRORS as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.warning("database call failed (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
            if on_retry is not None:
                on_retry()
