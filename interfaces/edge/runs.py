"""What every door asks of a run: is its kind installed, and wait until it is over."""

from __future__ import annotations

import asyncio

from cosmos.db import db_call
from cosmos.eventlog import follow
from cosmos.kinds import kind_names
from cosmos.models import TERMINAL_STATUSES, Run
from cosmos.services.errors import NotImplementedYet
from cosmos.services.leases import next_seq


def require_kind(kind: str, what: str) -> None:
    """501 until the engine of ``kind`` has registered itself (checked on every request)."""
    if kind not in kind_names():
        raise NotImplementedYet(
            f"{what} are not available yet: no engine is installed for run kind {kind!r}.",
            details={"kind": kind, "available_kinds": kind_names()},
        )


async def wait_for_run(run_id: str, timeout: float) -> bool:
    """Wait until the run is over (its terminal event); True if it ended within ``timeout``."""
    after = await db_call(next_seq, run_id)
    status = await db_call(lambda: Run.objects.filter(id=run_id).values_list("status", flat=True).first())
    if status is None or status in TERMINAL_STATUSES:
        return True
    try:
        async with asyncio.timeout(timeout):
            async for _seq, _event in follow(run_id, after=after):
                pass
    except TimeoutError:
        return False
    return True
