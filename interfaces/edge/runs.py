"""What every door asks of a run: is its kind installed, and wait until it is over."""

from __future__ import annotations

from cosmos.eventlog import wait_until_over
from cosmos.kinds import kind_names
from cosmos.services.errors import NotImplementedYet


def require_kind(kind: str, what: str) -> None:
    """501 until the engine of ``kind`` has registered itself (checked on every request)."""
    if kind not in kind_names():
        raise NotImplementedYet(
            f"{what} are not available yet: no engine is installed for run kind {kind!r}.",
            details={"kind": kind, "available_kinds": kind_names()},
        )


async def wait_for_run(run_id: str, timeout: float) -> bool:
    """Wait until the run is over; True if it ended within ``timeout``."""
    return await wait_until_over(run_id, timeout)
