"""Celery broker transports (``CELERY_BROKER_TRANSPORT``): kombu's own, each with one change.

**Redis (distributed mode): a worker survives a Redis restart.** When a worker loses Redis
while tasks run, Celery drops the broken connection, but the channel still has work that needs
Redis: pushing the unacked messages of running tasks back at close (``acks_late``), and acking
each task that finishes later. kombu then builds a Redis client from
a connection that is gone and fails with ``AttributeError``, which Celery treats as an
"Unrecoverable error": the worker shuts down for good (Celery and kombu 5.7). Here that case
raises Redis's own ``ConnectionError`` instead, which Celery expects from a broker that is down:
it logs it, and the worker reconnects once Redis is back. Nothing is lost: those messages went
down with Redis, the database is the truth, and the reaper resends runs that lost their message.

**memory:// (embedded mode): a run starts when it is sent, not at the next poll.** kombu's
in-memory transport is polled: an empty queue sleeps ``polling_interval`` before it looks again,
so a run waited up to that interval (10 ms here; 1 s by default) before the embedded worker took
it, and an idle server woke up 100 times a second. Here a put wakes the waiting worker at once.
"""

from __future__ import annotations

import threading
from queue import Empty
from time import monotonic

from kombu.transport import memory, redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the connection to the broker was closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(redis.Transport):
    Channel = Channel


# Every put into any in-memory queue of this process bumps the count and wakes the waiters.
_arrivals = 0
_arrived = threading.Condition()


def _notify_arrival() -> None:
    global _arrivals
    with _arrived:
        _arrivals += 1
        _arrived.notify_all()


class MemoryChannel(memory.Channel):
    def _put(self, queue, message, **kwargs):
        super()._put(queue, message, **kwargs)
        _notify_arrival()

    def _put_fanout(self, exchange, message, routing_key=None, **kwargs):
        super()._put_fanout(exchange, message, routing_key, **kwargs)
        _notify_arrival()


class MemoryTransport(memory.Transport):
    Channel = MemoryChannel

    def drain_events(self, connection, timeout=None):
        """kombu's loop, except that an empty poll waits for the next put instead of sleeping."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            with _arrived:
                seen = _arrivals  # taken before looking, so a put in between is not missed
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                remaining = None if deadline is None else deadline - monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError() from None
                with _arrived:
                    if _arrivals == seen:
                        _arrived.wait(1.0 if remaining is None else min(remaining, 1.0))
