"""``cosmos.db.db_call`` once its pool is shut down (the process exiting): a clear ``ProcessExiting``
that the engine's periodic work stops on quietly, instead of a bare RuntimeError logged at exit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cosmos import db


async def test_a_call_on_a_shut_down_pool_says_the_process_is_exiting(monkeypatch):
    closed = ThreadPoolExecutor(max_workers=1)
    closed.shutdown()
    monkeypatch.setattr(db, "_executor", closed)
    with pytest.raises(db.ProcessExiting):
        await db.db_call(lambda: 1)


async def test_other_runtime_errors_pass_through(monkeypatch):
    monkeypatch.setattr(db, "_executor", ThreadPoolExecutor(max_workers=1))

    def broken() -> None:
        raise RuntimeError("not about the pool")

    with pytest.raises(RuntimeError, match="not about the pool") as caught:
        await db.db_call(broken)
    assert not isinstance(caught.value, db.ProcessExiting)
