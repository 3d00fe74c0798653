"""Shared in-process measurement, standard library only: imported by our side and by the peer
(``bench/peer/agno_peer.py`` in its own virtual environment), so both are measured by the same code.

- ``time_us``: ``rounds`` batches of ``inner`` calls; per-call mean of each batch, then the median
  over batches (and min/max as the spread).
- ``memory_kib``: Agno's ``PerformanceEval`` method: ``gc.collect()``, ``tracemalloc.start()``,
  one call, the traced peak, ``tracemalloc.stop()``; minus the mean peak of an empty function over
  3 samples (the baseline); median over ``runs`` samples.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

KIB = 1024


def _empty() -> None:
    return None


def _peak_bytes(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def memory_kib(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    baseline = statistics.mean(_peak_bytes(_empty) for _ in range(3))
    samples = [max(0.0, _peak_bytes(fn) - baseline) / KIB for _ in range(runs)]
    return {"kib": statistics.median(samples), "kib_min": min(samples), "kib_max": max(samples)}


def _summary(per_op: list[float]) -> dict[str, float]:
    return {"us": statistics.median(per_op), "us_min": min(per_op), "us_max": max(per_op), "rounds": len(per_op)}


def time_us(fn: Callable[[], Any], rounds: int, inner: int) -> dict[str, float]:
    per_op = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        per_op.append((time.perf_counter_ns() - start) / inner / 1000)
    return _summary(per_op)


async def async_time_us(fn: Callable[[], Awaitable[Any]], rounds: int, inner: int) -> dict[str, float]:
    for _ in range(max(1, inner // 5)):  # warm-up: connection pool, caches
        await fn()
    per_op = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(inner):
            await fn()
        per_op.append((time.perf_counter_ns() - start) / inner / 1000)
    return _summary(per_op)
